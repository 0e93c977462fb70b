//! `classify_pictures` and `aggregate_audience`: the last stages of an analysis.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::JobEnv;
use super::pipeline::{self, load_active, stage_failed};
use crate::analyses::{self, Stage};
use crate::insights::{aggregate, classify};
use crate::queue::{Job, JobContext, JobError};
use crate::vision::calibration::Calibration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifyPictures {
    pub analysis_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AggregateAudience {
    pub analysis_id: i64,
}

impl Job for ClassifyPictures {
    const KIND: &'static str = "classify_pictures";
    const QUEUE: &'static str = "classify";
    const MAX_ATTEMPTS: Option<i32> = Some(5);
    const TIMEOUT: Option<Duration> = Some(Duration::from_hours(3));
    type Context = JobEnv;

    async fn run(self, env: JobEnv, job: JobContext) -> Result<(), JobError> {
        let Some((_, account)) = load_active(&env, self.analysis_id).await? else { return Ok(()) };
        let analysis_id = self.analysis_id;
        analyses::enter_stage(&mut *env.pool.get().await?, analysis_id, Stage::Classify).await?;
        let classifier = match env.classifier().await {
            Ok(c) => c,
            // Missing model files do not appear by retrying.
            Err(e) => return Err(stage_failed(&env, analysis_id, &job, e, true).await),
        };
        let pool = env.pool.clone();
        let result = classify::classify_account_pictures(&env.pool, &classifier, account.id, |r| {
            let pool = pool.clone();
            async move {
                let counts =
                    json!({"pictures_classified": r.classified, "pictures_unreadable": r.unreadable});
                analyses::set_progress(&mut *pool.get().await?, analysis_id, &counts).await?;
                Ok(())
            }
        })
        .await;
        if let Err(e) = result {
            return Err(stage_failed(&env, analysis_id, &job, e, false).await);
        }
        let mut conn = env.pool.get().await?;
        pipeline::after_classify(&mut conn, &env.config, analysis_id).await?;
        Ok(())
    }
}

impl Job for AggregateAudience {
    const KIND: &'static str = "aggregate_audience";
    const QUEUE: &'static str = "classify";
    const MAX_ATTEMPTS: Option<i32> = Some(5);
    const TIMEOUT: Option<Duration> = Some(Duration::from_mins(30));
    type Context = JobEnv;

    async fn run(self, env: JobEnv, job: JobContext) -> Result<(), JobError> {
        let Some((analysis, account)) = load_active(&env, self.analysis_id).await? else { return Ok(()) };
        let mut conn = env.pool.get().await?;
        analyses::enter_stage(&mut conn, analysis.id, Stage::Aggregate).await?;
        let calibration = match Calibration::shipped() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "no calibration: shares are reported uncorrected");
                None
            }
        };
        let analysis = analyses::get_analysis(&mut conn, analysis.id).await?;
        let snapshot =
            match aggregate::build_snapshot(&mut conn, &analysis, &account, calibration.as_ref()).await {
                Ok(s) => s,
                Err(e) => return Err(stage_failed(&env, analysis.id, &job, e.into(), false).await),
            };
        aggregate::store_snapshot(&mut conn, analysis.id, account.id, &snapshot).await?;
        tracing::info!(
            analysis_id = analysis.id,
            commenters = snapshot.sample.unique_commenters,
            "audience snapshot stored"
        );
        Ok(())
    }
}
