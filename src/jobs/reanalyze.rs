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
        let orphaned = pipeline::fail_orphaned(&mut conn, None).await?;
        if orphaned > 0 {
            tracing::warn!(orphaned, "analyses whose stage job ended without them marked failed");
        }
        // Due: not analysed successfully within the period, and no analysis started within it
        // either (one that failed waits for the next period rather than being paid for again
        // every hour).
        let due: Vec<Due> = diesel::sql_query(
            "SELECT t.id FROM tracked_accounts t
             CROSS JOIN LATERAL (SELECT CASE t.schedule WHEN 'daily' THEN interval '1 day'
                                                        ELSE interval '7 days' END AS period) p
             WHERE t.schedule IN ('daily', 'weekly')
               AND coalesce(t.last_analyzed_at, '-infinity') < now() - p.period
               AND NOT EXISTS (SELECT 1 FROM analyses a WHERE a.tracked_account_id = t.id
                               AND (a.status IN ('queued', 'running') OR a.created_at > now() - p.period))
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
                    if pipeline::lock_for_start(conn, account.id).await?.is_some() {
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
