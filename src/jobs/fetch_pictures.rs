//! `fetch_pictures`: downloads the commenters' pictures of an analysis's account right after
//! scraping, while the CDN links are valid, with progress counts on the analysis.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::JobEnv;
use super::pipeline::{load_active, stage_failed};
use crate::analyses::{self, Stage};
use crate::profiles::fetch::{self, FetchStageError};
use crate::queue::{Job, JobContext, JobError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchPictures {
    pub analysis_id: i64,
}

impl Job for FetchPictures {
    const KIND: &'static str = "fetch_pictures";
    const QUEUE: &'static str = "pictures";
    const MAX_ATTEMPTS: Option<i32> = Some(5);
    const TIMEOUT: Option<Duration> = Some(Duration::from_hours(3));
    type Context = JobEnv;

    async fn run(self, env: JobEnv, job: JobContext) -> Result<(), JobError> {
        let Some((_, account)) = load_active(&env, self.analysis_id).await? else { return Ok(()) };
        let analysis_id = self.analysis_id;
        analyses::enter_stage(&mut *env.pool.get().await?, analysis_id, Stage::FetchPictures).await?;
        let pool = env.pool.clone();
        let result = fetch::fetch_account_pictures(
            &env.pool,
            &env.clients.pictures,
            &env.config.settings.pictures,
            account.id,
            env.config.settings.privacy.classify_private_accounts,
            |r: fetch::FetchReport| {
                let pool = pool.clone();
                async move {
                    let counts = json!({
                        "pictures_fetched": r.fetched, "pictures_expired": r.expired,
                        "pictures_rejected": r.rejected, "pictures_failed": r.failed,
                    });
                    analyses::set_progress(&mut *pool.get().await?, analysis_id, &counts).await?;
                    Ok::<(), FetchStageError>(())
                }
            },
        )
        .await;
        match result {
            Ok(report) => {
                tracing::info!(analysis_id, ?report, "pictures fetched");
                let mut conn = env.pool.get().await?;
                super::pipeline::after_fetch(&mut conn, &env.config, analysis_id).await?;
                Ok(())
            }
            Err(e) => Err(stage_failed(&env, analysis_id, &job, e.into(), false).await),
        }
    }
}
