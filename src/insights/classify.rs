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
use crate::cascade::{Classifiers, Mode, RunResult, Session, Totals, local_confidence, needs_gemini};
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
/// The cascade runs in two passes: the local model over every picture first (the bytes of the
/// pictures it is sure of are deleted at once), then Gemini over the unsure ones, least sure
/// first across the whole account, so a budget that runs out is spent where it helps most.
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
    let account = owner.tracked_account_id;
    let local_model = classifiers.local.as_ref().map(|l| l.model().to_owned());
    let gemini_model = classifiers.gemini.as_ref().map(crate::clients::gemini::GeminiClient::model_version);
    let (first_pass, unsure_rules, without_local) = match (classifiers.mode, &local_model) {
        (Mode::Cascade, Some(model)) => (
            Classifiers { mode: Mode::Local, ..classifiers.clone() },
            Some(&classifiers.rules),
            Some(model.as_str()),
        ),
        _ => (classifiers.clone(), None, None),
    };
    // Pictures that already have this run's answer (bytes stored again by a later fetch of the
    // same picture) are not run, nor paid for, twice: their bytes are released instead.
    let answered_by = match classifiers.mode {
        Mode::Cascade => without_local,
        Mode::Local => local_model.as_deref(),
        Mode::Gemini => gemini_model.as_deref(),
    };
    if classifiers.mode != Mode::Cascade
        && let Some(model) = answered_by
    {
        release_answered(pool, account, model).await?;
    }
    // One pass in hash order. While a batch is classified, the one before it is stored and
    // the next one read, so the classifier does not wait for the database.
    let mut due = due_pictures(pool, account, answered_by, None).await?;
    let mut pending: Option<(Vec<Vec<u8>>, RunResult)> = None;
    while !due.is_empty() {
        let (hashes, bytes): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
            due.into_iter().map(|d| (d.content_sha256, d.bytes)).unzip();
        let after = hashes.last().cloned();
        let store_and_read = async {
            if let Some((done, run)) = pending.take() {
                settle(pool, owner, &done, run, unsure_rules, true, &mut report).await?;
                on_batch(report.clone()).await?;
            }
            due_pictures(pool, account, answered_by, after.as_deref()).await
        };
        let (run, next) = tokio::join!(first_pass.run(bytes, session), store_and_read);
        pending = Some((hashes, run));
        due = next?;
    }
    if let Some((done, run)) = pending {
        settle(pool, owner, &done, run, unsure_rules, true, &mut report).await?;
        on_batch(report.clone()).await?;
    }
    let Some(local_model) = without_local else {
        release_held(pool, account).await?;
        return Ok(report);
    };
    let waiting =
        unsure_pictures(pool, account, local_model, gemini_model.as_deref(), &classifiers.rules).await?;
    for round in waiting.chunks(BATCH as usize) {
        let wanted: Vec<Vec<u8>> = round.iter().map(|(h, _)| h.clone()).collect();
        let mut conn = pool.get().await.map_err(anyhow::Error::from)?;
        let mut blobs: std::collections::HashMap<Vec<u8>, Vec<u8>> = diesel::sql_query(
            "SELECT content_sha256, bytes FROM picture_blobs WHERE content_sha256 = ANY($1)",
        )
        .bind::<diesel::sql_types::Array<Bytea>, _>(&wanted)
        .load::<Due>(&mut conn)
        .await?
        .into_iter()
        .map(|d| (d.content_sha256, d.bytes))
        .collect();
        drop(conn);
        let (mut hashes, mut bytes, mut locals, mut gone) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (hash, local) in round {
            if let Some(b) = blobs.remove(hash) {
                hashes.push(hash.clone());
                bytes.push(b);
                locals.push(local.clone());
            } else {
                gone.push(hash.clone());
            }
        }
        let run = classifiers.run_with_local(bytes, locals, session).await;
        if let Err(e) = settle(pool, owner, &hashes, run, None, false, &mut report).await {
            // Gemini cannot go on: the pictures still waiting keep their local result, and
            // their bytes go unless another analysis still needs them.
            let rest: Vec<Vec<u8>> = waiting.iter().map(|(h, _)| h.clone()).collect();
            let mut conn = pool.get().await.map_err(anyhow::Error::from)?;
            release_bytes(&mut conn, &rest, account).await?;
            return Err(e);
        }
        // Bytes gone before their turn (erased, or released by another analysis): answered by
        // Gemini meanwhile, or left with the local result and counted as such, never silently.
        report.gemini.gemini_unavailable += unanswered(pool, &gone, gemini_model.as_deref()).await?;
        on_batch(report.clone()).await?;
    }
    release_held(pool, account).await?;
    Ok(report)
}

/// How many of `hashes` have no result of `gemini_model`.
async fn unanswered(
    pool: &DbPool,
    hashes: &[Vec<u8>],
    gemini_model: Option<&str>,
) -> Result<usize, ClassifyError> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    if hashes.is_empty() {
        return Ok(0);
    }
    let mut conn = pool.get().await.map_err(anyhow::Error::from)?;
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM unnest($1::bytea[]) AS h(content_sha256)
         WHERE NOT EXISTS (SELECT 1 FROM classifications g
                           WHERE g.content_sha256 = h.content_sha256 AND g.model_version = $2)",
    )
    .bind::<diesel::sql_types::Array<Bytea>, _>(hashes)
    .bind::<Nullable<Text>, _>(gemini_model)
    .get_result(&mut conn)
    .await?;
    Ok(count.n as usize)
}

/// Deletes the bytes of `hashes` that no other account's analysis, not yet past classifying,
/// still needs (to classify a picture nobody has classified, or to send it to Gemini): pictures are shared by content across accounts, and one analysis
/// being done with a picture does not make another one done with it. Those kept go when that
/// analysis leaves its classify stage ([`release_held`]), or at the retention purge.
pub async fn release_bytes(
    conn: &mut diesel_async::AsyncPgConnection,
    hashes: &[Vec<u8>],
    account: i64,
) -> diesel::QueryResult<usize> {
    if hashes.is_empty() {
        return Ok(0);
    }
    diesel::sql_query(
        "DELETE FROM picture_blobs b WHERE b.content_sha256 = ANY($1)
           AND NOT EXISTS (
               SELECT 1 FROM profile_pictures pp
               JOIN comments c ON c.ig_profile_id = pp.ig_profile_id
               JOIN tracked_account_posts tap ON tap.post_id = c.post_id
               JOIN analyses an ON an.tracked_account_id = tap.tracked_account_id
               WHERE pp.content_sha256 = b.content_sha256 AND pp.fetch_status = 'fetched'
                 AND an.tracked_account_id <> $2 AND an.status IN ('queued', 'running')
                 AND an.stage IN ('scrape', 'fetch_pictures', 'classify')
                 AND (NOT EXISTS (SELECT 1 FROM classifications k WHERE k.content_sha256 = b.content_sha256)
                      OR (an.classifier <> 'local'
                          AND NOT EXISTS (SELECT 1 FROM classifications g
                                          WHERE g.content_sha256 = b.content_sha256 AND g.source_model = 'gemini'))))",
    )
    .bind::<diesel::sql_types::Array<Bytea>, _>(hashes)
    .bind::<BigInt, _>(account)
    .execute(conn)
    .await
}

/// Which of the account's held pictures to release.
#[derive(Clone, Copy)]
enum Held<'a> {
    /// Every one.
    All,
    /// Those somebody has classified.
    Classified,
    /// Those with a result of this model.
    AnsweredBy(&'a str),
}

/// Releases ([`release_bytes`]) the account's held pictures that `which` selects; returns the
/// hashes looked at and how many were deleted.
async fn release_of_account(
    conn: &mut diesel_async::AsyncPgConnection,
    account: i64,
    which: Held<'_>,
) -> diesel::QueryResult<(Vec<Vec<u8>>, usize)> {
    let (classified, model) = match which {
        Held::All => (false, None),
        Held::Classified => (true, None),
        Held::AnsweredBy(model) => (true, Some(model)),
    };
    let held: Vec<Hash> = diesel::sql_query(
        "SELECT DISTINCT b.content_sha256 FROM picture_blobs b
         JOIN profile_pictures pp ON pp.content_sha256 = b.content_sha256 AND pp.fetch_status = 'fetched'
         JOIN comments c ON c.ig_profile_id = pp.ig_profile_id
         JOIN tracked_account_posts tap ON tap.post_id = c.post_id AND tap.tracked_account_id = $1
         WHERE NOT $2 OR EXISTS (SELECT 1 FROM classifications k WHERE k.content_sha256 = b.content_sha256
                                 AND ($3::text IS NULL OR k.model_version = $3))",
    )
    .bind::<BigInt, _>(account)
    .bind::<diesel::sql_types::Bool, _>(classified)
    .bind::<Nullable<Text>, _>(model)
    .load(conn)
    .await?;
    let hashes: Vec<Vec<u8>> = held.into_iter().map(|h| h.content_sha256).collect();
    let released = release_bytes(conn, &hashes, account).await?;
    Ok((hashes, released))
}

/// Releases, when the account's classify stage ends, the bytes still held of its pictures that
/// have been classified: those it kept for another analysis meanwhile go if that one is done
/// with them too (the last one out deletes them). Pictures nobody has classified yet (fetched
/// for another analysis since) are left to it.
async fn release_held(pool: &DbPool, account: i64) -> Result<(), ClassifyError> {
    let mut conn = pool.get().await.map_err(anyhow::Error::from)?;
    release_of_account(&mut conn, account, Held::Classified).await?;
    Ok(())
}

/// Releases the bytes still held of every picture of the account (its analysis was cancelled:
/// nothing will classify them for it), unless another analysis needs them. A picture released
/// before anyone classified it goes back to `pending`, so a later analysis fetches it again
/// instead of finding it fetched with nothing to classify.
pub async fn release_account(
    conn: &mut diesel_async::AsyncPgConnection,
    account: i64,
) -> diesel::QueryResult<usize> {
    let (hashes, released) = release_of_account(conn, account, Held::All).await?;
    diesel::sql_query(
        "UPDATE profile_pictures pp SET fetch_status = 'pending', content_sha256 = NULL, fetch_attempts = 0,
                fetched_at = NULL
         WHERE pp.content_sha256 = ANY($1) AND pp.fetch_status = 'fetched'
           AND NOT EXISTS (SELECT 1 FROM picture_blobs b WHERE b.content_sha256 = pp.content_sha256)
           AND NOT EXISTS (SELECT 1 FROM classifications k WHERE k.content_sha256 = pp.content_sha256)",
    )
    .bind::<diesel::sql_types::Array<Bytea>, _>(&hashes)
    .execute(conn)
    .await?;
    Ok(released)
}

/// Releases the held bytes of the account's pictures that already have a result of `model`.
async fn release_answered(pool: &DbPool, account: i64, model: &str) -> Result<(), ClassifyError> {
    let mut conn = pool.get().await.map_err(anyhow::Error::from)?;
    release_of_account(&mut conn, account, Held::AnsweredBy(model)).await?;
    Ok(())
}

/// Up to a batch of the account's fetched pictures whose bytes are held, in hash order after
/// `after` (so a run goes through each picture once, even one whose bytes stay held for another
/// analysis); with `answered_by`, only those without a result of that model yet.
async fn due_pictures(
    pool: &DbPool,
    account: i64,
    answered_by: Option<&str>,
    after: Option<&[u8]>,
) -> Result<Vec<Due>, ClassifyError> {
    let mut conn = pool.get().await.map_err(anyhow::Error::from)?;
    Ok(diesel::sql_query(
        "SELECT b.content_sha256, b.bytes FROM picture_blobs b
         WHERE b.content_sha256 IN (
             SELECT DISTINCT pp.content_sha256 FROM profile_pictures pp
             JOIN picture_blobs held ON held.content_sha256 = pp.content_sha256
             JOIN comments c ON c.ig_profile_id = pp.ig_profile_id
             JOIN tracked_account_posts tap ON tap.post_id = c.post_id AND tap.tracked_account_id = $1
             WHERE pp.fetch_status = 'fetched'
               AND ($4::bytea IS NULL OR pp.content_sha256 > $4)
               AND ($3::text IS NULL OR NOT EXISTS (
                   SELECT 1 FROM classifications k WHERE k.content_sha256 = pp.content_sha256 AND k.model_version = $3))
             ORDER BY pp.content_sha256
             LIMIT $2)
         ORDER BY b.content_sha256",
    )
    .bind::<BigInt, _>(account)
    .bind::<BigInt, _>(BATCH)
    .bind::<Nullable<Text>, _>(answered_by)
    .bind::<Nullable<Bytea>, _>(after)
    .load(&mut conn)
    .await?)
}

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = Bytea)]
    content_sha256: Vec<u8>,
    #[diesel(sql_type = Jsonb)]
    details: serde_json::Value,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    answered: bool,
}

/// The account's pictures the local model was unsure of and whose bytes are still held, least
/// sure first. Pictures the rules no longer send (changed settings) lose their bytes here.
async fn unsure_pictures(
    pool: &DbPool,
    account: i64,
    local_model: &str,
    gemini_model: Option<&str>,
    rules: &crate::config::CascadeSettings,
) -> Result<Vec<(Vec<u8>, PictureResult)>, ClassifyError> {
    let mut conn = pool.get().await.map_err(anyhow::Error::from)?;
    let rows: Vec<Waiting> = diesel::sql_query(
        "SELECT DISTINCT b.content_sha256, k.details,
                EXISTS (SELECT 1 FROM classifications g
                        WHERE g.content_sha256 = b.content_sha256 AND g.model_version = $3) AS answered
         FROM picture_blobs b
         JOIN profile_pictures pp ON pp.content_sha256 = b.content_sha256 AND pp.fetch_status = 'fetched'
         JOIN comments c ON c.ig_profile_id = pp.ig_profile_id
         JOIN tracked_account_posts tap ON tap.post_id = c.post_id AND tap.tracked_account_id = $1
         JOIN classifications k ON k.content_sha256 = b.content_sha256 AND k.model_version = $2
         WHERE k.details IS NOT NULL",
    )
    .bind::<BigInt, _>(account)
    .bind::<Text, _>(local_model)
    .bind::<Nullable<Text>, _>(gemini_model)
    .load(&mut conn)
    .await?;
    let (mut waiting, mut done) = (Vec::new(), Vec::new());
    for row in rows {
        match serde_json::from_value::<PictureResult>(row.details) {
            // Already answered by this Gemini model and prompt (an earlier attempt): not paid twice.
            Ok(local) if !row.answered && needs_gemini(&local, rules).is_some() => {
                waiting.push((row.content_sha256, local));
            }
            _ => done.push(row.content_sha256),
        }
    }
    release_bytes(&mut conn, &done, account).await?;
    waiting.sort_by(|a, b| local_confidence(&a.1).total_cmp(&local_confidence(&b.1)));
    Ok(waiting)
}

/// Records a run: its requests in the ledger, then in one transaction each picture's results
/// and the release of its bytes (kept, with `keep_unsure`, for pictures the cascade will send
/// to Gemini). A picture whose every holder was erased while it ran gets no result and loses
/// its bytes. `count`: the run's pictures are new to the report.
async fn settle(
    pool: &DbPool,
    owner: Owner,
    hashes: &[Vec<u8>],
    run: RunResult,
    keep_unsure: Option<&crate::config::CascadeSettings>,
    count: bool,
    report: &mut ClassifyReport,
) -> Result<(), ClassifyError> {
    let mut conn = pool.get().await.map_err(anyhow::Error::from)?;
    ledger::record(&mut conn, owner, &run.requests).await?;
    let (mut classified, mut unreadable) = (0, 0);
    let account = owner.tracked_account_id;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        crate::privacy::hold_off_erasure(conn).await?;
        let held = still_held(conn, hashes).await?;
        // Bytes this analysis is done with, and bytes of pictures erased meanwhile.
        let (mut done, mut erased) = (Vec::new(), Vec::new());
        for (hash, outcome) in hashes.iter().zip(&run.outcomes) {
            if !held.contains(hash) {
                erased.push(hash.clone());
                continue;
            }
            if let Some(local) = &outcome.local {
                store_result(conn, hash, local, "local", 0).await?;
            }
            if let Some(gemini) = &outcome.gemini {
                store_result(conn, hash, gemini, "gemini", outcome.cost_nano_usd / 1000).await?;
            }
            if outcome.best().is_some() {
                classified += 1;
            } else {
                let reason = outcome.error.as_deref().unwrap_or("no result");
                diesel::sql_query(
                    "UPDATE profile_pictures SET fetch_status = 'rejected', fetch_error = $2 WHERE content_sha256 = $1",
                )
                .bind::<Bytea, _>(hash)
                .bind::<Text, _>(format!("unreadable picture: {reason}"))
                .execute(conn)
                .await?;
                unreadable += 1;
            }
            let for_gemini = keep_unsure
                .is_some_and(|rules| outcome.local.as_ref().is_some_and(|l| needs_gemini(l, rules).is_some()));
            if !for_gemini {
                // Classified or unreadable: this analysis does not need the bytes any more.
                done.push(hash.clone());
            }
        }
        release_bytes(conn, &done, account).await?;
        diesel::sql_query("DELETE FROM picture_blobs WHERE content_sha256 = ANY($1)")
            .bind::<diesel::sql_types::Array<Bytea>, _>(&erased)
            .execute(conn)
            .await?;
        Ok(())
    })
    .await?;
    if count {
        report.classified += classified;
        report.unreadable += unreadable;
    }
    report.gemini.add(&run.totals);
    report.gemini.pictures = 0;
    // A fatal Gemini error stops the stage, after what the run did have is stored.
    run.fatal.map_or(Ok(()), |fatal| Err(fatal.into()))
}

/// Which of `hashes` some profile still has as its picture (the others were erased).
async fn still_held(
    conn: &mut diesel_async::AsyncPgConnection,
    hashes: &[Vec<u8>],
) -> diesel::QueryResult<std::collections::HashSet<Vec<u8>>> {
    let rows: Vec<Hash> = diesel::sql_query(
        "SELECT DISTINCT content_sha256 FROM profile_pictures WHERE content_sha256 = ANY($1)",
    )
    .bind::<diesel::sql_types::Array<Bytea>, _>(hashes)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.content_sha256).collect())
}

#[derive(QueryableByName)]
struct Hash {
    #[diesel(sql_type = Bytea)]
    content_sha256: Vec<u8>,
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
