//! The order of an analysis's stages and the job that runs each: starting an analysis, and
//! handing over to the next stage once one is done. Every hand-over is an enqueue with a
//! dedupe key per (analysis, stage), so a stage that runs twice still starts the next once.

use diesel::{OptionalExtension as _, QueryResult};
use diesel_async::{AsyncConnection, AsyncPgConnection};

use super::JobEnv;
use super::classify::{AggregateAudience, ClassifyPictures};
use super::fetch_pictures::FetchPictures;
use super::scrape::{ScrapeComments, ScrapePosts, ScrapeProfiles};
use crate::accounts::{self, TrackedAccount};
use crate::analyses::{self, Analysis};
use crate::config::Config;
use crate::queue::{self, Job, JobContext, JobError, NewJob};

/// How much scraping an account's analysis means, for routing it to the `_large` queue.
#[must_use]
pub fn scrape_size(account: &TrackedAccount) -> i64 {
    i64::from(account.max_posts) * i64::from(account.max_comments_per_post)
}

pub(super) fn stage_job<J: Job>(
    config: &Config,
    job: &J,
    analysis_id: i64,
    size: i64,
) -> serde_json::Result<NewJob> {
    Ok(NewJob::new(job, config.settings.queue.default_max_attempts)?
        .dedupe_key(format!("analysis:{analysis_id}:{}", J::KIND))
        .routed_by_size(size, config.settings.queue.large_job_threshold))
}

/// The analysis whose stage job `job` is (from the dedupe key [`stage_job`] gives it), if any.
pub async fn analysis_of_job(conn: &mut AsyncPgConnection, job: i64) -> QueryResult<Option<i64>> {
    use diesel::sql_types::{BigInt, Nullable};
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Of {
        #[diesel(sql_type = Nullable<BigInt>)]
        analysis_id: Option<i64>,
    }
    let of: Option<Of> = diesel::sql_query(
        "SELECT substring(dedupe_key FROM '^analysis:([0-9]+):')::bigint AS analysis_id FROM jobs WHERE id = $1",
    )
    .bind::<BigInt, _>(job)
    .get_result(conn)
    .await
    .optional()?;
    Ok(of.and_then(|o| o.analysis_id))
}

/// Creates an analysis of `account` and enqueues its first stage, in one transaction.
pub async fn start_analysis(
    conn: &mut AsyncPgConnection,
    config: &Config,
    account: &TrackedAccount,
    classifier: &str,
) -> QueryResult<Analysis> {
    start_with(conn, account, classifier, |analysis_id| {
        stage_job(config, &ScrapePosts { analysis_id }, analysis_id, scrape_size(account))
    })
    .await
}

/// Creates an analysis of `account` over data already stored (an import): it starts at the
/// picture stage.
pub async fn start_analysis_without_scraping(
    conn: &mut AsyncPgConnection,
    config: &Config,
    account: &TrackedAccount,
    classifier: &str,
) -> QueryResult<Analysis> {
    start_with(conn, account, classifier, |analysis_id| {
        stage_job(config, &FetchPictures { analysis_id }, analysis_id, scrape_size(account))
    })
    .await
}

async fn start_with(
    conn: &mut AsyncPgConnection,
    account: &TrackedAccount,
    classifier: &str,
    first: impl FnOnce(i64) -> serde_json::Result<NewJob> + Send,
) -> QueryResult<Analysis> {
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        let analysis = analyses::create_analysis(conn, account.id, classifier).await?;
        let job = first(analysis.id).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
        queue::enqueue_one(conn, job).await?;
        Ok(analysis)
    })
    .await
}

/// The stage job kinds, in order.
const STAGE_KINDS: [&str; 6] = [
    ScrapePosts::KIND,
    ScrapeComments::KIND,
    ScrapeProfiles::KIND,
    FetchPictures::KIND,
    ClassifyPictures::KIND,
    AggregateAudience::KIND,
];

/// Marks failed the unfinished analyses (of `account`, or all) that no stage job carries on
/// any more: their last stage job ended without recording why (timed out, panicked, lost its
/// lease on its last attempt, was cancelled by an operator). Its last error becomes the
/// analysis's; a retry of the analysis resumes from that job. Those whose last stage job came
/// before classifying release the picture bytes held for them ([`release_failed`]). Returns
/// how many.
///
/// An unfinished analysis always has an unfinished stage job otherwise: the first is enqueued
/// in the transaction that creates the analysis, and each stage enqueues the next before its
/// own job is recorded as done.
pub async fn fail_orphaned(conn: &mut AsyncPgConnection, account: Option<i64>) -> QueryResult<usize> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text};
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Failed {
        #[diesel(sql_type = BigInt)]
        tracked_account_id: i64,
        /// Kind of its last stage job, if one is left.
        #[diesel(sql_type = Nullable<Text>)]
        last_kind: Option<String>,
    }
    let failed: Vec<Failed> = diesel::sql_query(
        "WITH orphaned AS (
            SELECT a.id, keys.k FROM analyses a
            CROSS JOIN LATERAL (SELECT ARRAY(SELECT 'analysis:' || a.id || ':' || kind FROM unnest($2::text[]) kind) AS k) keys
            WHERE a.status IN ('queued', 'running') AND ($1::bigint IS NULL OR a.tracked_account_id = $1)
              AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.dedupe_key = ANY(keys.k) AND j.status IN ('queued', 'running'))
         )
         UPDATE analyses a SET status = 'failed', finished_at = now(),
             error = coalesce((SELECT j.kind || ' job ' || j.status || coalesce(': ' || j.last_error, '')
                               FROM jobs j WHERE j.dedupe_key = ANY(o.k) ORDER BY j.id DESC LIMIT 1),
                              'no stage job is left to run it')
         FROM orphaned o WHERE a.id = o.id AND a.status IN ('queued', 'running')
         RETURNING a.tracked_account_id,
             (SELECT j.kind FROM jobs j WHERE j.dedupe_key = ANY(o.k) ORDER BY j.id DESC LIMIT 1) AS last_kind",
    )
    .bind::<Nullable<BigInt>, _>(account)
    .bind::<Array<Text>, _>(&STAGE_KINDS[..])
    .load(conn)
    .await?;
    for f in failed.iter().filter(|f| f.last_kind.as_deref().is_some_and(releases_on_failure)) {
        release_failed(conn, f.tracked_account_id).await;
    }
    Ok(failed.len())
}

/// Whether an analysis whose stage job of `kind` failed gives up the picture bytes fetched for
/// it. Before classifying, yes: a retry runs that job again, which fetches the pictures again.
/// A failed classify (or later) job keeps them, since its retry classifies exactly those (they
/// go with that retry or with retention). The job's kind decides, not the analysis's stage:
/// a classify job that failed before it started leaves the stage at fetching.
fn releases_on_failure(kind: &str) -> bool {
    [ScrapePosts::KIND, ScrapeComments::KIND, ScrapeProfiles::KIND, FetchPictures::KIND].contains(&kind)
}

/// Releases the picture bytes held for a failed analysis of `account` (kept for any other
/// analysis that still needs them; pictures nobody classified go back to pending, so a retry
/// fetches them again). A failure to release is logged: the retention purge deletes what is
/// left. It runs in a savepoint of its own, so a caller's transaction survives its failure.
async fn release_failed(conn: &mut AsyncPgConnection, account: i64) {
    let released = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            crate::insights::classify::release_account(conn, account).await
        })
        .await;
    if let Err(error) = released {
        tracing::warn!(account, error = %error, "releasing a failed analysis's picture bytes failed");
    }
}

/// Locks the account's row until the transaction ends, so that two callers cannot both find
/// it idle and both start (and pay for) an analysis; returns its unfinished analysis, if any,
/// after failing one that nothing carries on ([`fail_orphaned`]). Call it inside the
/// transaction that starts or reopens the analysis.
pub async fn lock_for_start(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Option<Analysis>> {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    diesel::sql_query("SELECT id FROM tracked_accounts WHERE id = $1 FOR NO KEY UPDATE")
        .bind::<BigInt, _>(account_id)
        .execute(conn)
        .await?;
    fail_orphaned(conn, Some(account_id)).await?;
    analyses::active_analysis(conn, account_id).await
}

/// The analysis's stage jobs still queued or running.
///
/// # Errors
/// Database errors.
pub async fn unfinished_stage_jobs(conn: &mut AsyncPgConnection, analysis_id: i64) -> QueryResult<Vec<i64>> {
    use diesel::sql_types::{Array, BigInt, Text};
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let keys: Vec<String> = STAGE_KINDS.iter().map(|k| format!("analysis:{analysis_id}:{k}")).collect();
    let rows: Vec<Id> = diesel::sql_query(
        "SELECT id FROM jobs WHERE dedupe_key = ANY($1) AND status IN ('queued', 'running') ORDER BY id",
    )
    .bind::<Array<Text>, _>(&keys)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Where a new analysis begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Scrape posts and comments first.
    Scrape,
    /// Over data already stored (an import): from the picture stage.
    StoredData,
}

/// Starts an analysis of `account` unless one is still unfinished, checked and started under
/// the account's row lock ([`lock_for_start`]): two starters at once start one analysis.
/// `Err` carries the unfinished analysis.
pub async fn start_unless_running(
    conn: &mut AsyncPgConnection,
    config: &Config,
    account: &TrackedAccount,
    classifier: &str,
    begin: Begin,
) -> QueryResult<Result<Analysis, Analysis>> {
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        if let Some(running) = lock_for_start(conn, account.id).await? {
            return Ok(Err(running));
        }
        Ok(Ok(match begin {
            Begin::Scrape => start_analysis(conn, config, account, classifier).await?,
            Begin::StoredData => start_analysis_without_scraping(conn, config, account, classifier).await?,
        }))
    })
    .await
}

/// Held by the one attempt running an analysis's stage that spends money per picture: another
/// attempt of the same stage (a stalled worker's job handed on while the first still runs)
/// does not send the same pictures to Gemini beside it. The lock lives on a connection taken
/// out of the pool and closed with this value, so it never outlives the attempt.
pub struct StageLock(#[allow(dead_code)] AsyncPgConnection);

/// Takes the analysis's stage lock, or `None` while another attempt holds it.
pub async fn lock_stage(pool: &crate::db::DbPool, analysis_id: i64) -> anyhow::Result<Option<StageLock>> {
    use diesel::sql_types::{BigInt, Bool};
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Got {
        #[diesel(sql_type = Bool)]
        locked: bool,
    }
    let mut conn = diesel_async::pooled_connection::deadpool::Object::take(pool.get().await?);
    let got: Got = diesel::sql_query(
        "SELECT pg_try_advisory_lock(hashtextextended('audiencelens analysis stage ' || $1, 0)) AS locked",
    )
    .bind::<BigInt, _>(analysis_id)
    .get_result(&mut conn)
    .await?;
    Ok(got.locked.then_some(StageLock(conn)))
}

/// The stage after scraping posts.
pub async fn after_posts(
    conn: &mut AsyncPgConnection,
    config: &Config,
    analysis_id: i64,
    size: i64,
) -> anyhow::Result<()> {
    queue::enqueue_one(conn, stage_job(config, &ScrapeComments { analysis_id }, analysis_id, size)?).await?;
    Ok(())
}

/// The stage after scraping comments: commenter profiles when enabled, else pictures.
pub async fn after_comments(
    conn: &mut AsyncPgConnection,
    config: &Config,
    analysis_id: i64,
    size: i64,
) -> anyhow::Result<()> {
    if config.settings.apify.refresh_profiles {
        queue::enqueue_one(conn, stage_job(config, &ScrapeProfiles { analysis_id }, analysis_id, size)?)
            .await?;
    } else {
        after_profiles(conn, config, analysis_id, size).await?;
    }
    Ok(())
}

/// The stage after scraping profiles: fetching pictures while their links are valid.
pub async fn after_profiles(
    conn: &mut AsyncPgConnection,
    config: &Config,
    analysis_id: i64,
    size: i64,
) -> anyhow::Result<()> {
    queue::enqueue_one(conn, stage_job(config, &FetchPictures { analysis_id }, analysis_id, size)?).await?;
    Ok(())
}

/// The stage after fetching pictures: classifying them.
pub async fn after_fetch(
    conn: &mut AsyncPgConnection,
    config: &Config,
    analysis_id: i64,
) -> anyhow::Result<()> {
    queue::enqueue_one(conn, stage_job(config, &ClassifyPictures { analysis_id }, analysis_id, 0)?).await?;
    Ok(())
}

/// The stage after classifying: the audience snapshot.
pub async fn after_classify(
    conn: &mut AsyncPgConnection,
    config: &Config,
    analysis_id: i64,
) -> anyhow::Result<()> {
    queue::enqueue_one(conn, stage_job(config, &AggregateAudience { analysis_id }, analysis_id, 0)?).await?;
    Ok(())
}

/// The analysis and its account, or `None` when the analysis is no longer going (cancelled,
/// failed, finished): a stage job for it then ends without doing anything.
pub async fn load_active(
    env: &JobEnv,
    analysis_id: i64,
) -> Result<Option<(Analysis, TrackedAccount)>, JobError> {
    let mut conn = env.pool.get().await?;
    let analysis = match analyses::get_analysis(&mut conn, analysis_id).await {
        Ok(a) => a,
        Err(diesel::result::Error::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !matches!(analysis.status.as_str(), "queued" | "running") {
        tracing::info!(analysis_id, status = %analysis.status, "analysis no longer running; stage skipped");
        return Ok(None);
    }
    let account = accounts::get_account(&mut conn, analysis.tracked_account_id).await?;
    Ok(Some((analysis, account)))
}

/// Turns a stage's error into the job's: the analysis is marked failed, with the reason,
/// when the error is final or this was the job's last attempt (a later retry of the job by an
/// operator resumes it).
pub async fn stage_failed(
    env: &JobEnv,
    analysis_id: i64,
    job: &JobContext,
    error: anyhow::Error,
    permanent: bool,
) -> JobError {
    if (permanent || job.attempt >= job.max_attempts)
        && let Ok(mut conn) = env.pool.get().await
    {
        let _ = analyses::fail_analysis(&mut conn, analysis_id, &format!("{}: {error:#}", job.kind)).await;
        if releases_on_failure(&job.kind)
            && let Ok(analysis) = analyses::get_analysis(&mut conn, analysis_id).await
            && analysis.status == "failed"
        {
            release_failed(&mut conn, analysis.tracked_account_id).await;
        }
    }
    if permanent { JobError::Permanent(error) } else { JobError::Retryable(error) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_kind_runs_on_a_queue_the_configuration_knows() {
        use super::super::{probe, prune, purge, reanalyze};
        let queues = [
            probe::QueueProbe::QUEUE,
            prune::PruneJobs::QUEUE,
            purge::PurgeRetention::QUEUE,
            reanalyze::ReanalyzeDue::QUEUE,
            ScrapePosts::QUEUE,
            ScrapeComments::QUEUE,
            ScrapeProfiles::QUEUE,
            FetchPictures::QUEUE,
            ClassifyPictures::QUEUE,
            AggregateAudience::QUEUE,
        ];
        for queue in queues {
            assert!(crate::config::QUEUES.contains(&queue), "{queue} is missing from config::QUEUES");
        }
        for queue in crate::config::QUEUES {
            assert!(queues.contains(&queue), "config::QUEUES names {queue}, which no job kind uses");
        }
    }

    #[test]
    fn every_queue_a_stage_can_be_routed_to_is_worked_by_default() {
        let config = Config::load_from(None, &[]).expect("defaults");
        let large = config.settings.queue.large_job_threshold;
        assert!(large > 0, "routing is on by default");
        let id = 1;
        let jobs = [
            stage_job(&config, &ScrapePosts { analysis_id: id }, id, large),
            stage_job(&config, &ScrapeComments { analysis_id: id }, id, large),
            stage_job(&config, &ScrapeProfiles { analysis_id: id }, id, large),
            stage_job(&config, &FetchPictures { analysis_id: id }, id, large),
            stage_job(&config, &ClassifyPictures { analysis_id: id }, id, 0),
            stage_job(&config, &AggregateAudience { analysis_id: id }, id, 0),
        ];
        for job in jobs {
            let job = job.expect("payload");
            let workers = config.settings.queue.concurrency.get(&job.queue).copied().unwrap_or(0);
            assert!(workers > 0, "{} goes to queue {}, which no default worker works", job.kind, job.queue);
        }
    }
}
