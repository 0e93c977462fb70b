//! The classify stage: every fetched picture of an account's commenters whose bytes are still
//! held is classified under the analysis's classifier (local, gemini or cascade; identical
//! pictures once, by content hash), each result stored with its source and model version, the
//! Gemini requests recorded in the ledger, and the picture's bytes deleted in the same
//! transaction as its results.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bytea, Double, Integer, Jsonb, Nullable, Text};
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Serialize;

use crate::cascade::ledger::{self, Owner};
use crate::cascade::{Classifiers, Session, Totals};
use crate::clients::gemini::GeminiError;
use crate::db::DbPool;
use crate::vision::{Gender, PictureResult};

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ClassifyReport {
    pub classified: usize,
    /// Pictures that could not be read after all (truncated, corrupt...).
    pub unreadable: usize,
    /// What Gemini did (all zero with the local classifier).
    pub gemini: Totals,
}

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = Bytea)]
    content_sha256: Vec<u8>,
    #[diesel(sql_type = Bytea)]
    bytes: Vec<u8>,
}

const BATCH: i64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// Gemini cannot work for this run (key, project, model): nothing of the batch was stored.
    #[error(transparent)]
    Gemini(#[from] GeminiError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for ClassifyError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Other(e.into())
    }
}

/// Classifies what is due for the analysis's account; `on_batch` gets the running totals.
///
/// # Errors
/// Database errors, and fatal Gemini errors (a picture that cannot be read is recorded, not
/// returned).
pub async fn classify_account_pictures<F, Fut>(
    pool: &DbPool,
    classifiers: &Classifiers,
    session: &Session,
    owner: Owner,
    mut on_batch: F,
) -> Result<ClassifyReport, ClassifyError>
where
    F: FnMut(ClassifyReport) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut report = ClassifyReport::default();
    loop {
        let mut conn = pool.get().await.map_err(anyhow::Error::from)?;
        let due: Vec<Due> = diesel::sql_query(
            "SELECT DISTINCT b.content_sha256, b.bytes FROM picture_blobs b
             JOIN profile_pictures pp ON pp.content_sha256 = b.content_sha256 AND pp.fetch_status = 'fetched'
             JOIN comments c ON c.ig_profile_id = pp.ig_profile_id
             JOIN tracked_account_posts tap ON tap.post_id = c.post_id AND tap.tracked_account_id = $1
             LIMIT $2",
        )
        .bind::<BigInt, _>(owner.tracked_account_id)
        .bind::<BigInt, _>(BATCH)
        .load(&mut conn)
        .await?;
        drop(conn);
        if due.is_empty() {
            return Ok(report);
        }
        let (hashes, bytes): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
            due.into_iter().map(|d| (d.content_sha256, d.bytes)).unzip();
        let run = classifiers.run(bytes, session).await;
        let mut conn = pool.get().await.map_err(anyhow::Error::from)?;
        // What was paid is recorded even when the batch is not stored.
        ledger::record(&mut conn, owner, &run.requests).await?;
        if let Some(fatal) = run.fatal {
            return Err(fatal.into());
        }
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            for (hash, outcome) in hashes.iter().zip(&run.outcomes) {
                if let Some(local) = &outcome.local {
                    store_result(conn, hash, local, "local", 0).await?;
                }
                if let Some(gemini) = &outcome.gemini {
                    store_result(conn, hash, gemini, "gemini", outcome.cost_nano_usd / 1000).await?;
                }
                if outcome.best().is_some() {
                    report.classified += 1;
                } else {
                    let reason = outcome.error.as_deref().unwrap_or("no result");
                    diesel::sql_query(
                        "UPDATE profile_pictures SET fetch_status = 'rejected', fetch_error = $2 WHERE content_sha256 = $1",
                    )
                    .bind::<Bytea, _>(hash)
                    .bind::<Text, _>(format!("unreadable picture: {reason}"))
                    .execute(conn)
                    .await?;
                    report.unreadable += 1;
                }
                // Classified or unreadable: the bytes are not needed any more.
                diesel::sql_query("DELETE FROM picture_blobs WHERE content_sha256 = $1")
                    .bind::<Bytea, _>(hash)
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await?;
        report.gemini.add(&run.totals);
        report.gemini.pictures = 0;
        on_batch(report.clone()).await?;
    }
}

/// Stores one result (a repeated store of the same picture and model changes nothing).
pub async fn store_result(
    conn: &mut diesel_async::AsyncPgConnection,
    hash: &[u8],
    r: &PictureResult,
    source_model: &str,
    cost_micro_usd: i64,
) -> diesel::QueryResult<()> {
    // The label and the probability of that label.
    let gender = r.gender.as_ref().and_then(|g| {
        g.label.map(|l| (l.label(), if l == Gender::Male { g.p_male } else { 1.0 - g.p_male }))
    });
    let brackets = r.age.as_ref().map(|a| a.brackets.0);
    let p = |i: usize| brackets.map(|b| f64::from(b[i]));
    diesel::sql_query(
        "INSERT INTO classifications (content_sha256, model_version, source_model, profile_type, face_count, gender,
             gender_prob, age_estimate, p_age_13_17, p_age_18_24, p_age_25_34, p_age_35_44, p_age_45_54, p_age_55_64,
             p_age_65_plus, abstain_reason, details, no_person_kind, cost_micro_usd)
         VALUES ($1, $2, $17, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $18, $19)
         ON CONFLICT (content_sha256, model_version) DO NOTHING",
    )
    .bind::<Bytea, _>(hash)
    .bind::<Text, _>(&r.model)
    .bind::<Text, _>(r.profile_type.label())
    .bind::<Integer, _>(r.face_count as i32)
    .bind::<Nullable<Text>, _>(gender.map(|g| g.0))
    .bind::<Nullable<Double>, _>(gender.map(|g| f64::from(g.1)))
    .bind::<Nullable<Double>, _>(r.age.as_ref().map(|a| f64::from(a.years)))
    .bind::<Nullable<Double>, _>(p(0))
    .bind::<Nullable<Double>, _>(p(1))
    .bind::<Nullable<Double>, _>(p(2))
    .bind::<Nullable<Double>, _>(p(3))
    .bind::<Nullable<Double>, _>(p(4))
    .bind::<Nullable<Double>, _>(p(5))
    .bind::<Nullable<Double>, _>(p(6))
    .bind::<Nullable<Text>, _>(r.abstain.map(crate::vision::Abstain::label))
    .bind::<Jsonb, _>(serde_json::to_value(r).unwrap_or_default())
    .bind::<Text, _>(source_model)
    .bind::<Nullable<Text>, _>(r.no_person_kind.map(crate::vision::result::NoPersonKind::label))
    .bind::<BigInt, _>(cost_micro_usd)
    .execute(conn)
    .await?;
    Ok(())
}
