//! `reanalyze_due` (cron): starts an analysis of every tracked account whose schedule says it is
//! due (daily or weekly since its last completed analysis) and that has none running.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use super::JobEnv;
use super::pipeline;
use crate::accounts;
use crate::analyses;
use crate::queue::{Job, JobContext, JobError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReanalyzeDue {}

impl Job for ReanalyzeDue {
    const KIND: &'static str = "reanalyze_due";
    const QUEUE: &'static str = "maintenance";
    const TIMEOUT: Option<Duration> = Some(Duration::from_mins(10));
    type Context = JobEnv;

    async fn run(self, env: JobEnv, _job: JobContext) -> Result<(), JobError> {
        #[derive(QueryableByName)]
        struct Due {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let mut conn = env.pool.get().await?;
        let due: Vec<Due> = diesel::sql_query(
            "SELECT t.id FROM tracked_accounts t
             WHERE ((t.schedule = 'daily' AND coalesce(t.last_analyzed_at, '-infinity') < now() - interval '1 day')
                 OR (t.schedule = 'weekly' AND coalesce(t.last_analyzed_at, '-infinity') < now() - interval '7 days'))
               AND NOT EXISTS (SELECT 1 FROM analyses a WHERE a.tracked_account_id = t.id AND a.status IN ('queued', 'running'))
             ORDER BY t.id",
        )
        .load(&mut conn)
        .await?;
        let mut started = 0;
        for d in due {
            let account = accounts::get_account(&mut conn, d.id).await?;
            // The classifier the account was last analysed with; Gemini only while a key is set.
            let asked = analyses::latest_classifier(&mut conn, account.id).await?;
            let (classifier, fell_back) = match asked.as_deref() {
                Some(c @ ("gemini" | "cascade")) if env.clients.gemini.is_some() => (c, false),
                Some("gemini" | "cascade") => {
                    tracing::warn!(
                        account_id = account.id,
                        "no Gemini key: the scheduled analysis runs locally"
                    );
                    ("local", true)
                }
                _ => ("local", false),
            };
            // Under the account's lock: an analysis started meanwhile (by a user) is not doubled.
            let config = &env.config;
            let started_one = conn
                .transaction::<_, diesel::result::Error, _>(async |conn| {
                    if analyses::lock_for_start(conn, account.id).await?.is_some() {
                        return Ok(false);
                    }
                    let analysis = pipeline::start_analysis(conn, config, &account, classifier).await?;
                    if fell_back {
                        // Remembered, so the next scheduled run asks for Gemini again once a key is set.
                        let asked = serde_json::json!({"requested_classifier": asked});
                        analyses::set_progress(conn, analysis.id, &asked).await?;
                    }
                    Ok(true)
                })
                .await?;
            started += usize::from(started_one);
        }
        if started > 0 {
            tracing::info!(started, "scheduled analyses started");
        }
        Ok(())
    }
}
