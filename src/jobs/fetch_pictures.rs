//! `fetch_pictures`: downloads the commenters' pictures of an analysis's account right after
//! scraping, while the CDN links are valid, with progress counts on the analysis.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::JobEnv;
use super::pipeline::{load_active, stage_failed};
use crate::analyses::{self, Stage};
use crate::insights::funnel;
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
        let Some((analysis, account)) = load_active(&env, self.analysis_id).await? else { return Ok(()) };
        // Counts of earlier attempts of this stage are added to, not replaced.
        let earlier = |key: &str| analysis.progress.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let before =
            ["pictures_fetched", "pictures_expired", "pictures_rejected", "pictures_failed"].map(earlier);
        let analysis_id = self.analysis_id;
        if !analyses::enter_stage(&mut *env.pool.get().await?, analysis_id, Stage::FetchPictures).await? {
            tracing::info!(analysis_id = %analysis_id, stage = "fetch_pictures", "analysis already past this stage: this run of its job does nothing");
            return Ok(());
        }
        // The posts a scrape covers are fixed now, before their commenters' pictures are fetched.
        funnel::fix_covered_posts(&mut *env.pool.get().await?, &analysis, account.max_posts).await?;
        let pool = env.pool.clone();
        let result = fetch::fetch_account_pictures(
            &env.pool,
            &env.clients.pictures,
            &env.config.settings.pictures,
            fetch::Audience { account_id: account.id, analysis_id },
            env.config.settings.privacy.classify_private_accounts,
            |r: fetch::FetchReport| {
                let pool = pool.clone();
                async move {
                    let counts = json!({
                        "pictures_fetched": before[0] + r.fetched as u64,
                        "pictures_expired": before[1] + r.expired as u64,
                        "pictures_rejected": before[2] + r.rejected as u64,
                        "pictures_failed": before[3] + r.failed as u64,
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
                funnel::record_progress(&mut conn, analysis_id).await?;
                // Cancelled while fetching: nothing will classify these for it.
                if analyses::get_analysis(&mut conn, analysis_id).await?.status == "cancelled" {
                    crate::insights::classify::release_account(&mut conn, account.id).await?;
                    return Ok(());
                }
                super::pipeline::after_fetch(&mut conn, &env.config, analysis_id).await?;
                Ok(())
            }
            Err(e) => Err(stage_failed(&env, analysis_id, &job, e.into(), false).await),
        }
    }
}
