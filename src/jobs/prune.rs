//! `prune_jobs`: deletes finished jobs older than `queue.finished_retention_hours`, in batches
//! so it never holds long locks while workers run, the input records of analyses that ended
//! as long ago, and sessions ended or expired more than a day ago.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::JobEnv;
use crate::queue::{Job, JobContext, JobError, storage};

const BATCH: i64 = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PruneJobs {}

impl Job for PruneJobs {
    const KIND: &'static str = "prune_jobs";
    const QUEUE: &'static str = "maintenance";
    const TIMEOUT: Option<Duration> = Some(Duration::from_mins(30));
    type Context = JobEnv;

    async fn run(self, env: JobEnv, _job: JobContext) -> Result<(), JobError> {
        let retention = Duration::from_secs(env.config.settings.queue.finished_retention_hours * 3600);
        let mut conn = env.pool.get().await?;
        let mut total = 0;
        loop {
            let n = storage::prune_finished(&mut conn, retention, BATCH).await?;
            total += n;
            if (n as i64) < BATCH {
                break;
            }
        }
        let inputs = crate::analyses::prune_inputs(&mut conn, retention).await?;
        tracing::info!(
            deleted = total,
            analysis_inputs = inputs,
            "pruned finished jobs and ended analyses' inputs"
        );
        Ok(())
    }
}
