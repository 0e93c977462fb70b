//! `queue_probe`: an operator's end-to-end check that workers claim and run jobs
//! (`audiencelens jobs probe`). Records one row per probe job in `queue_probes`, however many
//! times it runs, and counts the runs: a count above one shows a repeated delivery.

use std::time::Duration;

use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use super::JobEnv;
use crate::queue::{Job, JobContext, JobError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueProbe {
    /// Simulated work before the record is written.
    #[serde(default)]
    pub work_ms: u64,
}

impl Job for QueueProbe {
    const KIND: &'static str = "queue_probe";
    const QUEUE: &'static str = "maintenance";
    const MAX_ATTEMPTS: Option<i32> = Some(5);
    const TIMEOUT: Option<Duration> = Some(Duration::from_mins(2));
    type Context = JobEnv;

    async fn run(self, env: JobEnv, job: JobContext) -> Result<(), JobError> {
        if self.work_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.work_ms.min(60_000))).await;
        }
        let mut conn = env.pool.get().await?;
        diesel::sql_query(
            "INSERT INTO queue_probes (job_id, worker_id) VALUES ($1, $2)
             ON CONFLICT (job_id) DO UPDATE SET runs = queue_probes.runs + 1, last_run_at = now(),
                 worker_id = excluded.worker_id",
        )
        .bind::<BigInt, _>(job.id.0)
        .bind::<SqlUuid, _>(job.worker_id)
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}
