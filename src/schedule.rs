//! The embedded cron (worker mode): each configured schedule only enqueues a job.
//!
//! Leaderless and exactly-once per tick: every worker copy fires, but a tick is claimed by
//! moving `cron_ticks.last_tick` forward in the same transaction that enqueues the job, so only
//! the first copy to get there enqueues; the job's dedupe key backs that up.
//!
//! Owns: the schedule list. Uses: `queue`, `jobs`, `db`.

use std::sync::Arc;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use diesel::sql_types::{Text, Timestamptz};
use diesel_async::{AsyncConnection, RunQueryDsl};
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};

use crate::db::DbPool;
use crate::queue::{self, NewJob};

/// One cron entry: a name (the `cron_ticks` key), an expression and the job each tick enqueues.
pub struct Schedule {
    pub name: &'static str,
    pub expression: String,
    pub job: Arc<dyn Fn() -> anyhow::Result<NewJob> + Send + Sync>,
}

fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Required).dom_and_dow(true).build()
}

/// Checks a cron expression (empty = schedule off); the error explains the expected form.
///
/// # Errors
/// A message for the configuration error.
pub fn validate_expression(setting: &str, expression: &str) -> Result<(), String> {
    if expression.trim().is_empty() {
        return Ok(());
    }
    parser().parse(expression).map(|_| ()).map_err(|e| {
        format!("is not a cron expression with seconds (\"sec min hour dom month dow\"): {e} ({setting} = {expression:?})")
    })
}

/// The tick a firing at `now` belongs to: the latest scheduled time at or before `now`, with
/// half a second of slack for a timer that fires a little early.
fn tick_for(cron: &Cron, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let probe = (now + TimeDelta::milliseconds(500)).duration_trunc(TimeDelta::seconds(1)).ok()?;
    cron.find_previous_occurrence(&probe, true).ok()
}

/// Claims `tick` of `schedule` and, if this copy won it, enqueues its job in the same
/// transaction. Returns whether a job was enqueued.
///
/// # Errors
/// Database errors, or a job that cannot be built.
pub async fn fire(pool: &DbPool, schedule: &str, tick: DateTime<Utc>, job: NewJob) -> anyhow::Result<bool> {
    #[derive(diesel::QueryableByName)]
    struct Won {
        #[diesel(sql_type = Text)]
        #[expect(dead_code, reason = "only the presence of a row matters")]
        schedule: String,
    }
    let mut conn = pool.get().await?;
    let job = job.dedupe_key(format!("cron:{schedule}:{}", tick.to_rfc3339()));
    let enqueued = conn
        .transaction::<_, diesel::result::Error, _>(async move |conn| {
            let won: Vec<Won> = diesel::sql_query(
                "INSERT INTO cron_ticks (schedule, last_tick) VALUES ($1, $2)
                     ON CONFLICT (schedule) DO UPDATE SET last_tick = excluded.last_tick, updated_at = now()
                     WHERE cron_ticks.last_tick < excluded.last_tick
                     RETURNING schedule",
            )
            .bind::<Text, _>(schedule)
            .bind::<Timestamptz, _>(tick)
            .load(conn)
            .await?;
            if won.is_empty() {
                return Ok(false);
            }
            Ok(queue::enqueue_one(conn, job).await?.is_some())
        })
        .await?;
    Ok(enqueued)
}

/// Starts the cron scheduler with every schedule that has an expression. Keep the returned
/// scheduler alive; call `shutdown` on it when stopping.
///
/// # Errors
/// When a schedule cannot be registered.
pub async fn start(pool: DbPool, schedules: Vec<Schedule>) -> anyhow::Result<JobScheduler> {
    let cron_scheduler = JobScheduler::new().await?;
    for schedule in schedules {
        if schedule.expression.trim().is_empty() {
            tracing::info!(schedule = schedule.name, "schedule off");
            continue;
        }
        let cron = parser().parse(&schedule.expression)?;
        let pool = pool.clone();
        let name = schedule.name;
        let make_job = schedule.job.clone();
        let cron = Arc::new(cron);
        let entry = CronJob::new_async(schedule.expression.as_str(), move |_id, _scheduler| {
            let pool = pool.clone();
            let make_job = make_job.clone();
            let cron = cron.clone();
            Box::pin(async move {
                let Some(tick) = tick_for(&cron, Utc::now()) else { return };
                let result = match make_job() {
                    Ok(job) => fire(&pool, name, tick, job).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(true) => tracing::info!(schedule = name, %tick, "cron tick: job enqueued"),
                    Ok(false) => tracing::debug!(schedule = name, %tick, "cron tick taken by another worker"),
                    Err(error) => {
                        tracing::error!(schedule = name, %tick, error = %format!("{error:#}"), "cron tick failed");
                    }
                }
            })
        })?;
        cron_scheduler.add(entry).await?;
        tracing::info!(schedule = name, expression = %schedule.expression, "schedule on");
    }
    cron_scheduler.start().await?;
    Ok(cron_scheduler)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_are_validated() {
        assert!(validate_expression("s", "0 */10 * * * *").is_ok());
        assert!(validate_expression("s", "").is_ok());
        let err = validate_expression("schedule.prune_jobs", "every tuesday").expect_err("bad");
        assert!(err.contains("schedule.prune_jobs"), "{err}");
        assert!(validate_expression("s", "*/5 * * * *").is_err(), "seconds are required");
    }

    #[test]
    fn a_late_or_early_firing_maps_to_its_tick() {
        let cron = parser().parse("*/10 * * * * *").expect("valid");
        let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc);
        assert_eq!(tick_for(&cron, at("2026-01-01T00:00:10.003Z")), Some(at("2026-01-01T00:00:10Z")));
        assert_eq!(tick_for(&cron, at("2026-01-01T00:00:13.900Z")), Some(at("2026-01-01T00:00:10Z")));
        assert_eq!(tick_for(&cron, at("2026-01-01T00:00:09.800Z")), Some(at("2026-01-01T00:00:10Z")));
    }
}
