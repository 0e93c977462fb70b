//! The classify stage: every fetched picture of an account's commenters that has no result
//! from the current model yet is classified (identical pictures once, by content hash), the
//! result stored with its model version, and the picture's bytes deleted.

use std::sync::Arc;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bytea, Double, Integer, Jsonb, Nullable, Text};
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::StreamExt;
use serde::Serialize;

use crate::db::DbPool;
use crate::vision::{Classifier, Gender, PictureResult};

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct ClassifyReport {
    pub classified: usize,
    /// Pictures that could not be read after all (truncated, corrupt...).
    pub unreadable: usize,
}

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = Bytea)]
    content_sha256: Vec<u8>,
    #[diesel(sql_type = Bytea)]
    bytes: Vec<u8>,
}

const BATCH: i64 = 64;

/// Classifies what is due for `account_id`; `on_batch` gets the running totals.
///
/// # Errors
/// Database errors (a picture that cannot be read is recorded, not returned).
pub async fn classify_account_pictures<F, Fut>(
    pool: &DbPool,
    classifier: &Arc<Classifier>,
    account_id: i64,
    mut on_batch: F,
) -> anyhow::Result<ClassifyReport>
where
    F: FnMut(ClassifyReport) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let model = classifier.model().to_owned();
    let mut report = ClassifyReport::default();
    loop {
        let mut conn = pool.get().await?;
        let due: Vec<Due> = diesel::sql_query(
            "SELECT DISTINCT b.content_sha256, b.bytes FROM picture_blobs b
             JOIN profile_pictures pp ON pp.content_sha256 = b.content_sha256 AND pp.fetch_status = 'fetched'
             JOIN comments c ON c.ig_profile_id = pp.ig_profile_id
             JOIN tracked_account_posts tap ON tap.post_id = c.post_id AND tap.tracked_account_id = $1
             WHERE NOT EXISTS (SELECT 1 FROM classifications k WHERE k.content_sha256 = b.content_sha256 AND k.model_version = $2)
             LIMIT $3",
        )
        .bind::<BigInt, _>(account_id)
        .bind::<Text, _>(&model)
        .bind::<BigInt, _>(BATCH)
        .load(&mut conn)
        .await?;
        drop(conn);
        if due.is_empty() {
            return Ok(report);
        }
        let results: Vec<(Vec<u8>, Result<PictureResult, String>)> = futures_util::stream::iter(due)
            .map(|d| {
                let classifier = classifier.clone();
                async move {
                    (d.content_sha256, classifier.classify_async(d.bytes).await.map_err(|e| e.to_string()))
                }
            })
            .buffer_unordered(classifier.threads().max(1))
            .collect()
            .await;
        let mut conn = pool.get().await?;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            for (hash, result) in &results {
                match result {
                    Ok(r) => {
                        store_result(conn, hash, r).await?;
                        report.classified += 1;
                    }
                    Err(reason) => {
                        diesel::sql_query(
                            "UPDATE profile_pictures SET fetch_status = 'rejected', fetch_error = $2 WHERE content_sha256 = $1",
                        )
                        .bind::<Bytea, _>(hash)
                        .bind::<Text, _>(format!("unreadable picture: {reason}"))
                        .execute(conn)
                        .await?;
                        report.unreadable += 1;
                    }
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
        on_batch(report).await?;
    }
}

/// Stores one result (a repeated store of the same picture and model changes nothing).
pub async fn store_result(
    conn: &mut diesel_async::AsyncPgConnection,
    hash: &[u8],
    r: &PictureResult,
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
             p_age_65_plus, abstain_reason, details)
         VALUES ($1, $2, 'local', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
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
    .execute(conn)
    .await?;
    Ok(())
}
