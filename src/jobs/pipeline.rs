//! The order of an analysis's stages and the job that runs each: starting an analysis, and
//! handing over to the next stage once one is done. Every hand-over is an enqueue with a
//! dedupe key per (analysis, stage), so a stage that runs twice still starts the next once.

use diesel::QueryResult;
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

fn stage_job<J: Job>(config: &Config, job: &J, analysis_id: i64, size: i64) -> serde_json::Result<NewJob> {
    Ok(NewJob::new(job, config.settings.queue.default_max_attempts)?
        .dedupe_key(format!("analysis:{analysis_id}:{}", J::KIND))
        .routed_by_size(size, config.settings.queue.large_job_threshold))
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
    }
    if permanent { JobError::Permanent(error) } else { JobError::Retryable(error) }
}
