//! `scrape_posts`, `scrape_comments`, `scrape_profiles`: the scrape stages of an analysis.
//! Each is idempotent and resumable (see `scraping::runs`) and hands over to the next stage.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::JobEnv;
use super::pipeline::{self, load_active, stage_failed};
use crate::analyses::{self, Stage};
use crate::queue::{Job, JobContext, JobError};
use crate::scraping::plan::Scraper;
use crate::scraping::runs::ScrapeError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScrapePosts {
    pub analysis_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScrapeComments {
    pub analysis_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScrapeProfiles {
    pub analysis_id: i64,
}

/// Apify runs can take a while; the job's lease is renewed meanwhile.
const SCRAPE_TIMEOUT: Duration = Duration::from_hours(3);

fn scraper(env: &JobEnv) -> Result<Scraper<'_>, ScrapeError> {
    Ok(Scraper {
        pool: &env.pool,
        apify: env.clients.apify()?,
        settings: &env.config.settings.apify,
        privacy: &env.privacy,
        cancel: CancellationToken::new(),
    })
}

async fn fail(env: &JobEnv, analysis_id: i64, job: &JobContext, e: ScrapeError) -> JobError {
    let permanent = e.is_permanent();
    stage_failed(env, analysis_id, job, e.into(), permanent).await
}

impl Job for ScrapePosts {
    const KIND: &'static str = "scrape_posts";
    const QUEUE: &'static str = "scrape";
    const MAX_ATTEMPTS: Option<i32> = Some(5);
    const TIMEOUT: Option<Duration> = Some(SCRAPE_TIMEOUT);
    type Context = JobEnv;

    async fn run(self, env: JobEnv, job: JobContext) -> Result<(), JobError> {
        let Some((_, account)) = load_active(&env, self.analysis_id).await? else { return Ok(()) };
        analyses::enter_stage(&mut *env.pool.get().await?, self.analysis_id, Stage::Scrape).await?;
        let result = match scraper(&env) {
            Ok(s) => s.scrape_posts(self.analysis_id, &account).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            return Err(fail(&env, self.analysis_id, &job, e).await);
        }
        let mut conn = env.pool.get().await?;
        pipeline::after_posts(&mut conn, &env.config, self.analysis_id, pipeline::scrape_size(&account))
            .await?;
        Ok(())
    }
}

impl Job for ScrapeComments {
    const KIND: &'static str = "scrape_comments";
    const QUEUE: &'static str = "scrape";
    const MAX_ATTEMPTS: Option<i32> = Some(5);
    const TIMEOUT: Option<Duration> = Some(SCRAPE_TIMEOUT);
    type Context = JobEnv;

    async fn run(self, env: JobEnv, job: JobContext) -> Result<(), JobError> {
        let Some((_, account)) = load_active(&env, self.analysis_id).await? else { return Ok(()) };
        let result = match scraper(&env) {
            Ok(s) => s.scrape_comments(self.analysis_id, &account).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            return Err(fail(&env, self.analysis_id, &job, e).await);
        }
        let mut conn = env.pool.get().await?;
        pipeline::after_comments(&mut conn, &env.config, self.analysis_id, pipeline::scrape_size(&account))
            .await?;
        Ok(())
    }
}

impl Job for ScrapeProfiles {
    const KIND: &'static str = "scrape_profiles";
    const QUEUE: &'static str = "scrape";
    const MAX_ATTEMPTS: Option<i32> = Some(5);
    const TIMEOUT: Option<Duration> = Some(SCRAPE_TIMEOUT);
    type Context = JobEnv;

    async fn run(self, env: JobEnv, job: JobContext) -> Result<(), JobError> {
        let Some((_, account)) = load_active(&env, self.analysis_id).await? else { return Ok(()) };
        let result = match scraper(&env) {
            Ok(s) => s.scrape_profiles(self.analysis_id, &account).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            return Err(fail(&env, self.analysis_id, &job, e).await);
        }
        let mut conn = env.pool.get().await?;
        pipeline::after_profiles(&mut conn, &env.config, self.analysis_id, pipeline::scrape_size(&account))
            .await?;
        Ok(())
    }
}
