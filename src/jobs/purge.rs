//! `purge_retention`: deletes commenter data past `privacy.retention_days` (cron).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::JobEnv;
use crate::privacy::retention;
use crate::queue::{Job, JobContext, JobError};

const BATCH: i64 = 5_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeRetention {}

impl Job for PurgeRetention {
    const KIND: &'static str = "purge_retention";
    const QUEUE: &'static str = "maintenance";
    const TIMEOUT: Option<Duration> = Some(Duration::from_hours(2));
    type Context = JobEnv;

    async fn run(self, env: JobEnv, _job: JobContext) -> Result<(), JobError> {
        let retention = Duration::from_secs(u64::from(env.config.settings.privacy.retention_days) * 86_400);
        let mut conn = env.pool.get().await?;
        let report = retention::purge_expired(&mut conn, retention, BATCH).await?;
        tracing::info!(
            ?report,
            days = env.config.settings.privacy.retention_days,
            "purged data past retention"
        );
        Ok(())
    }
}
