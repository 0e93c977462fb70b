//! A worker process's side of the queue: one dispatcher per queue claims as many due jobs as it
//! has free slots, in one statement, and runs each in its own task; a completer records
//! outcomes in batches; a heartbeat renews leases; a rescuer returns jobs of dead workers.
//!
//! Shutdown: stop claiming, let running jobs finish within the grace period, hand back the rest,
//! flush outcomes, exit.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::completer::{Completer, Finished, Held, Sink};
use super::dispatch::Dispatcher;
use super::listener::{self, Wakers};
use super::registry::Registry;
use super::storage::{self, Backoff};
use crate::config::Settings;
use crate::db::DbPool;
use crate::metrics::Metrics;

/// How a worker runs; usually [`WorkerOptions::from_settings`].
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Queues this process works, with their concurrency.
    pub queues: Vec<(String, usize)>,
    pub lease: Duration,
    pub poll_interval: Duration,
    pub rescue_interval: Duration,
    pub claim_batch_size: usize,
    pub complete_batch_size: usize,
    pub complete_flush: Duration,
    pub backoff: Backoff,
    pub default_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Wake on LISTEN/NOTIFY (off behind a transaction-mode connection pooler: poll only).
    pub listen: bool,
    /// Wait for the WAL flush on the queue's own writes (claims, outcomes, leases). Off, a
    /// database crash can lose the last fraction of a second of them: those jobs run again,
    /// which at-least-once delivery allows. Enqueues and the jobs' own writes are always durable.
    pub durable_bookkeeping: bool,
    /// Seconds to wait for a database connection.
    pub connect_timeout: Duration,
}

impl WorkerOptions {
    /// One job per claim and per completion: each slot is its own claim-run-complete loop.
    #[must_use]
    pub fn is_unbatched(&self) -> bool {
        self.claim_batch_size == 1 && self.complete_batch_size == 1
    }

    /// From the `[queue]` settings; the worker's own connections (claims, completions, lease
    /// renewals) wait as long as `database.connect_timeout_secs` says.
    #[must_use]
    pub fn from_settings(settings: &Settings) -> Self {
        let s = &settings.queue;
        Self {
            queues: s.concurrency.iter().filter(|(_, n)| **n > 0).map(|(q, n)| (q.clone(), *n)).collect(),
            lease: s.lease(),
            poll_interval: s.poll_interval(),
            rescue_interval: Duration::from_secs(s.rescue_interval_secs),
            claim_batch_size: s.claim_batch_size,
            complete_batch_size: s.complete_batch_size,
            complete_flush: Duration::from_millis(s.complete_flush_ms),
            backoff: Backoff {
                base: Duration::from_secs(s.retry_base_secs),
                max: Duration::from_secs(s.retry_max_secs),
            },
            default_timeout: Duration::from_secs(s.default_timeout_secs),
            shutdown_grace: s.shutdown_grace(),
            listen: true,
            durable_bookkeeping: s.synchronous_commit,
            connect_timeout: Duration::from_secs(settings.database.connect_timeout_secs),
        }
    }
}

/// What a worker did, for its final log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerReport {
    pub released_at_shutdown: usize,
}

pub struct Worker {
    pub id: Uuid,
    pub database_url: SecretString,
    pub registry: Arc<Registry>,
    pub options: WorkerOptions,
    pub metrics: Arc<Metrics>,
}

impl Worker {
    /// Works the configured queues until `shutdown` is cancelled, then drains and returns.
    ///
    /// # Errors
    /// Only if start-up is impossible; database errors while running are retried.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<WorkerReport> {
        let Self { id, database_url, registry, options, metrics } = self;
        let pool = bookkeeping_pool(&database_url, &options)?;
        let background = CancellationToken::new();
        let held: Held = Arc::default();
        let wakers = Wakers::new(options.queues.iter().map(|(q, _)| q.clone()));
        let (tx, rx) = mpsc::unbounded_channel::<Finished>();
        tracing::info!(worker_id = %id, queues = ?options.queues, kinds = ?registry.kinds(), "worker starting");

        let completer = Arc::new(Completer {
            pool: pool.clone(),
            owner: id,
            backoff: options.backoff,
            batch_size: options.complete_batch_size,
            flush: options.complete_flush,
            held: held.clone(),
            stopping: shutdown.clone(),
            final_retry_for: options.shutdown_grace.min(Duration::from_secs(5)),
        });
        let sink = if options.complete_batch_size > 1 {
            Sink::Batched(tx)
        } else {
            drop(tx);
            Sink::Inline(completer.clone())
        };
        let completer = tokio::spawn(completer.run(rx));
        let mut services = JoinSet::new();
        services.spawn(heartbeat(pool.clone(), id, options.lease, held.clone(), background.clone()));
        services.spawn(rescuer(pool.clone(), options.rescue_interval, wakers.clone(), background.clone()));
        if options.listen {
            services.spawn(listener::listen(database_url, wakers.clone(), background.clone()));
        }

        let mut slots = Vec::new();
        let mut dispatchers = JoinSet::new();
        for (queue, concurrency) in &options.queues {
            let semaphore = Arc::new(Semaphore::new(*concurrency));
            slots.push((semaphore.clone(), *concurrency));
            let kinds = registry.kinds_for_queue(queue);
            if kinds.is_empty() {
                tracing::warn!(queue, "no job kinds run on this queue; it will stay idle");
            }
            let dispatcher = Dispatcher {
                queue: queue.clone(),
                kinds,
                semaphore,
                pool: pool.clone(),
                owner: id,
                registry: registry.clone(),
                options: options.clone(),
                held: held.clone(),
                finished: sink.clone(),
                wake: wakers.get(queue).unwrap_or_default(),
                metrics: metrics.clone(),
            };
            if options.is_unbatched() {
                for _ in 0..*concurrency {
                    dispatchers.spawn(dispatcher.clone().run_serial(shutdown.clone()));
                }
            } else {
                dispatchers.spawn(dispatcher.run(shutdown.clone()));
            }
        }
        drop(sink);

        shutdown.cancelled().await;
        tracing::info!(worker_id = %id, grace = ?options.shutdown_grace, "worker stopping: no new claims");
        while dispatchers.join_next().await.is_some() {}

        // Every slot back = every running job finished.
        let all_done = async {
            for (semaphore, n) in &slots {
                let n = u32::try_from(*n).unwrap_or(u32::MAX);
                let _ = semaphore.acquire_many(n).await;
            }
        };
        let mut report = WorkerReport::default();
        if tokio::time::timeout(options.shutdown_grace, all_done).await.is_err() {
            report.released_at_shutdown = release_running(&pool, id, &held).await;
        }
        // The job tasks own the remaining senders; once they are gone the completer flushes.
        let _ = completer.await;
        background.cancel();
        while services.join_next().await.is_some() {}
        tracing::info!(worker_id = %id, released = report.released_at_shutdown, "worker stopped");
        Ok(report)
    }
}

/// The worker's own pool for queue bookkeeping, sized for its claim loops, inline completions,
/// heartbeat and rescuer.
fn bookkeeping_pool(url: &SecretString, options: &WorkerOptions) -> anyhow::Result<DbPool> {
    let url = if options.durable_bookkeeping {
        url.clone()
    } else {
        crate::db::with_session_options(url, "-c synchronous_commit=off")
    };
    let slots: usize = options.queues.iter().map(|(_, n)| n).sum();
    // Unbatched: every slot claims and completes for itself. Batched: one claim loop per
    // queue and the completer (failures may still be written from job tasks).
    let loops = if options.is_unbatched() { slots } else { options.queues.len() + 2 };
    Ok(crate::db::connect_pool(&url, loops + 3, options.connect_timeout)?)
}

/// Aborts jobs still running after the grace period and hands them back to the queue.
async fn release_running(pool: &DbPool, owner: Uuid, held: &Held) -> usize {
    let ids: Vec<i64> = match held.lock() {
        Ok(mut held) => {
            let running: Vec<i64> = held.iter().filter(|(_, h)| h.is_some()).map(|(id, _)| *id).collect();
            for id in &running {
                if let Some(Some(handle)) = held.remove(id) {
                    handle.abort();
                }
            }
            running
        }
        Err(_) => Vec::new(),
    };
    if ids.is_empty() {
        return 0;
    }
    for attempt in 1..=3 {
        match pool.get().await {
            Ok(mut conn) => match storage::release_jobs(&mut conn, &ids, owner).await {
                Ok(n) => {
                    tracing::warn!(jobs = n, "released jobs still running at the end of the grace period");
                    return n;
                }
                Err(error) => tracing::warn!(%error, attempt, "releasing jobs failed"),
            },
            Err(error) => tracing::warn!(%error, attempt, "releasing jobs failed"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::error!(
        jobs = ids.len(),
        "could not release jobs; they return to the queue when their lease expires"
    );
    0
}

/// Renews the lease of every job this process holds, every third of the lease. Jobs whose
/// lease is no longer ours (cancelled by an operator, or rescued after a long stall) are stopped.
async fn heartbeat(pool: DbPool, owner: Uuid, lease: Duration, held: Held, stop: CancellationToken) {
    let period = lease / 3;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        let ids: Vec<i64> = match held.lock() {
            Ok(held) => held.keys().copied().collect(),
            Err(_) => return,
        };
        if ids.is_empty() {
            continue;
        }
        let renewed = match pool.get().await {
            Ok(mut conn) => storage::renew_leases(&mut conn, &ids, owner, lease).await,
            Err(error) => {
                tracing::warn!(%error, "lease renewal skipped: no database connection");
                continue;
            }
        };
        match renewed {
            Ok(kept) => {
                let kept: std::collections::HashSet<i64> = kept.into_iter().collect();
                if let Ok(mut held) = held.lock() {
                    for id in ids.iter().filter(|id| !kept.contains(id)) {
                        if let Some(Some(handle)) = held.remove(id) {
                            tracing::warn!(
                                job_id = id,
                                "job lost its lease (cancelled or rescued); stopping it"
                            );
                            handle.abort();
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "lease renewal failed"),
        }
    }
}

/// Every `interval` (with jitter, so copies do not collide), returns expired leases to the queue.
async fn rescuer(pool: DbPool, interval: Duration, wakers: Wakers, stop: CancellationToken) {
    loop {
        let jitter = interval.mul_f64(rand::random_range(0.0..0.5));
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval + jitter) => {}
        }
        let mut conn = match pool.get().await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "rescue skipped: no database connection");
                continue;
            }
        };
        loop {
            match storage::rescue_expired(&mut conn, 1000).await {
                Ok(ids) if ids.is_empty() => break,
                Ok(ids) => {
                    tracing::warn!(
                        jobs = ids.len(),
                        first = ids[0],
                        "returned jobs with expired leases to the queue"
                    );
                    wakers.wake_all();
                    if ids.len() < 1000 {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "rescuing expired jobs failed");
                    break;
                }
            }
        }
    }
}
