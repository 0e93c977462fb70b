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

/// The three scrape stages share everything but the scraper call and the hand-over.
#[derive(Debug, Clone, Copy)]
enum ScrapeStage {
    Posts,
    Comments,
    Profiles,
}

async fn run_stage(
    env: JobEnv,
    analysis_id: i64,
    job: JobContext,
    stage: ScrapeStage,
) -> Result<(), JobError> {
    let Some((_, account)) = load_active(&env, analysis_id).await? else { return Ok(()) };
    if !analyses::enter_stage(&mut *env.pool.get().await?, analysis_id, Stage::Scrape).await? {
        tracing::info!(analysis_id = %analysis_id, stage = "scrape", "analysis already past this stage: this run of its job does nothing");
        return Ok(());
    }
    let result = match scraper(&env) {
        Ok(s) => match stage {
            ScrapeStage::Posts => s.scrape_posts(analysis_id, &account).await.map(|_| ()),
            ScrapeStage::Comments => s.scrape_comments(analysis_id, &account).await.map(|_| ()),
            ScrapeStage::Profiles => s.scrape_profiles(analysis_id, &account).await.map(|_| ()),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        let permanent = e.is_permanent();
        return Err(stage_failed(&env, analysis_id, &job, e.into(), permanent).await);
    }
    let mut conn = env.pool.get().await?;
    let size = pipeline::scrape_size(&account);
    match stage {
        ScrapeStage::Posts => pipeline::after_posts(&mut conn, &env.config, analysis_id, size).await?,
        ScrapeStage::Comments => pipeline::after_comments(&mut conn, &env.config, analysis_id, size).await?,
        ScrapeStage::Profiles => pipeline::after_profiles(&mut conn, &env.config, analysis_id, size).await?,
    }
    Ok(())
}

macro_rules! scrape_job {
    ($job:ty, $kind:literal, $stage:expr) => {
        impl Job for $job {
            const KIND: &'static str = $kind;
            const QUEUE: &'static str = "scrape";
            const MAX_ATTEMPTS: Option<i32> = Some(5);
            const TIMEOUT: Option<Duration> = Some(SCRAPE_TIMEOUT);
            type Context = JobEnv;

            async fn run(self, env: JobEnv, job: JobContext) -> Result<(), JobError> {
                run_stage(env, self.analysis_id, job, $stage).await
            }
        }
    };
}

scrape_job!(ScrapePosts, "scrape_posts", ScrapeStage::Posts);
scrape_job!(ScrapeComments, "scrape_comments", ScrapeStage::Comments);
scrape_job!(ScrapeProfiles, "scrape_profiles", ScrapeStage::Profiles);
