//! `audiencelens jobs ...`: what operators need to see and steer the queue.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Subcommand;
use diesel::sql_types::{Array, BigInt};
use diesel_async::RunQueryDsl;

use crate::app::AppState;
use crate::config::Config;
use crate::jobs::{self, probe::QueueProbe};
use crate::queue::{self, JobId, JobStatus, storage};

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first, with their last error.
    List {
        #[arg(long, value_enum)]
        status: Option<JobStatus>,
        #[arg(long)]
        queue: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Counts per queue and status instead of jobs.
        #[arg(long)]
        summary: bool,
    },
    /// Put a failed or cancelled job back in its queue with fresh attempts (a failed analysis's
    /// stage job reopens the analysis with it).
    Retry { id: JobId },
    /// Cancel a queued or running job (a running one stops at its next lease renewal).
    Cancel { id: JobId },
    /// Enqueue probe jobs and wait until workers have run them: an end-to-end check.
    Probe {
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Simulated work per probe, in milliseconds.
        #[arg(long, default_value_t = 0)]
        work_ms: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
}

pub async fn run(command: JobsCommand, config: Config) -> anyhow::Result<()> {
    let state = AppState::build(config)?;
    let mut conn = state.pool.get().await.context("connecting to the database")?;
    match command {
        JobsCommand::List { status, queue, kind, limit, json, summary } => {
            if summary {
                for d in storage::queue_depths(&mut conn).await? {
                    println!("{:<16} {:<10} {:>10}", d.queue, d.status, d.count);
                }
                return Ok(());
            }
            let rows =
                storage::list_jobs(&mut conn, status, queue.as_deref(), kind.as_deref(), limit).await?;
            if json {
                for row in &rows {
                    println!("{}", serde_json::to_string(row)?);
                }
            } else {
                println!(
                    "{:>8}  {:<12} {:<18} {:<9} {:>8}  {:<20}  last error",
                    "id", "queue", "kind", "status", "attempts", "run at"
                );
                for r in &rows {
                    println!(
                        "{:>8}  {:<12} {:<18} {:<9} {:>4}/{:<3}  {:<20}  {}",
                        r.id,
                        r.queue,
                        r.kind,
                        r.status,
                        r.attempts,
                        r.max_attempts,
                        r.run_at.format("%Y-%m-%d %H:%M:%S"),
                        r.last_error.as_deref().unwrap_or("-").replace('\n', " ")
                    );
                }
            }
            Ok(())
        }
        JobsCommand::Retry { id } => retry(&mut conn, id).await,
        JobsCommand::Cancel { id } => {
            if storage::cancel_job(&mut conn, id).await? {
                println!("job {id} cancelled");
                Ok(())
            } else {
                anyhow::bail!("job {id} does not exist or has already finished")
            }
        }
        JobsCommand::Probe { count, work_ms, timeout_secs } => {
            let probe = jobs::new_job(&state.config, &QueueProbe { work_ms })?;
            let ids: Vec<i64> =
                queue::enqueue(&mut conn, &vec![probe; count]).await?.into_iter().map(|id| id.0).collect();
            println!("enqueued {} probe jobs on queue \"maintenance\"; waiting for workers...", ids.len());
            let started = Instant::now();
            loop {
                #[derive(diesel::QueryableByName)]
                struct Done {
                    #[diesel(sql_type = BigInt)]
                    n: i64,
                }
                let done: Done =
                    diesel::sql_query("SELECT count(*) AS n FROM queue_probes WHERE job_id = ANY($1)")
                        .bind::<Array<BigInt>, _>(&ids)
                        .get_result(&mut conn)
                        .await?;
                if done.n as usize >= ids.len() {
                    println!("all {} probes ran in {:.2} s", ids.len(), started.elapsed().as_secs_f64());
                    return Ok(());
                }
                if started.elapsed() > Duration::from_secs(timeout_secs) {
                    anyhow::bail!(
                        "only {}/{} probes ran within {timeout_secs} s: is a worker running with queue \"maintenance\" enabled?",
                        done.n,
                        ids.len()
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// `jobs retry`: a failed analysis's stage job reopens the analysis, as its API retry does (the
/// job alone would find the analysis failed and do nothing); any other job is queued again.
async fn retry(conn: &mut diesel_async::AsyncPgConnection, id: JobId) -> anyhow::Result<()> {
    use crate::analyses::{self, Retry};
    use diesel::OptionalExtension as _;
    // (A job whose analysis went with its account is simply queued again.)
    if let Some(analysis_id) = jobs::pipeline::analysis_of_job(conn, id.0).await?
        && let Some(analysis) = analyses::get_analysis(conn, analysis_id).await.optional()?
        && analysis.status == "failed"
    {
        return match analyses::retry_analysis(conn, &analysis).await? {
            Retry::Reopened => {
                println!("analysis {analysis_id} reopened: its last failed stage job is queued again");
                Ok(())
            }
            Retry::Busy(other) => anyhow::bail!(
                "analysis {analysis_id} cannot be reopened while analysis {other} of the same account is unfinished"
            ),
            Retry::NotFailed | Retry::NotFound | Retry::NoStageJob => {
                anyhow::bail!("analysis {analysis_id} has no failed stage job left to retry")
            }
        };
    }
    if storage::retry_job(conn, id).await.with_context(|| format!("retrying job {id}"))? {
        println!("job {id} queued again");
        Ok(())
    } else {
        anyhow::bail!("job {id} does not exist or is not failed or cancelled")
    }
}
