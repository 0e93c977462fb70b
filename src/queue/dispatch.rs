//! One queue's dispatcher: claims due jobs for its free slots and runs each in its own task,
//! with the kind's timeout; a panic or timeout is a failed attempt like any other.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::completer::{Finished, Held, Outcome, Sink};
use super::model::ClaimedJob;
use super::registry::{JobContext, Registry};
use super::runner::WorkerOptions;
use super::{JobError, JobId, storage};
use crate::db::DbPool;
use crate::metrics::{JobOutcome, Metrics};

#[derive(Clone)]
pub struct Dispatcher {
    pub queue: String,
    pub kinds: Vec<String>,
    pub semaphore: Arc<Semaphore>,
    pub pool: DbPool,
    pub owner: Uuid,
    pub registry: Arc<Registry>,
    pub options: WorkerOptions,
    pub held: Held,
    pub finished: Sink,
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
}

impl Dispatcher {
    pub async fn run(self, shutdown: CancellationToken) {
        if self.kinds.is_empty() {
            return;
        }
        let mut error_delay = Duration::from_millis(100);
        let mut cursor = ClaimCursor::default();
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => return,
                permit = self.semaphore.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let mut permits = vec![first];
            while permits.len() < self.options.claim_batch_size {
                match self.semaphore.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let wanted = permits.len();
            let claimed = match self.claim(wanted, None, &mut cursor).await {
                Ok(jobs) => {
                    error_delay = Duration::from_millis(100);
                    jobs
                }
                Err(error) => {
                    drop(permits);
                    tracing::warn!(queue = %self.queue, %error, retry_in = ?error_delay, "claiming jobs failed");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(error_delay) => {}
                    }
                    error_delay = (error_delay * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let got = claimed.len();
            for job in claimed {
                // One permit per claimed job: claimed <= wanted = permits.len().
                if let Some(permit) = permits.pop() {
                    self.spawn_job(job, permit);
                }
            }
            drop(permits);
            if got < wanted {
                // Nothing more is due: sleep until an enqueue wakes us or the poll interval ends.
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(self.options.poll_interval) => {}
                }
            }
        }
    }

    /// Claims up to `n` jobs (recording `succeeded` on the way), starting after the cursor
    /// when it is fresh, and moves the cursor.
    async fn claim(
        &self,
        n: usize,
        succeeded: Option<i64>,
        cursor: &mut ClaimCursor,
    ) -> anyhow::Result<Vec<ClaimedJob>> {
        let mut conn = self.pool.get().await?;
        let claim = storage::Claim {
            queue: &self.queue,
            kinds: &self.kinds,
            limit: n,
            owner: self.owner,
            lease: self.options.lease,
            after: cursor.hint(),
            succeeded,
        };
        let mut claimed = storage::claim_jobs(&mut conn, claim).await?;
        if claim.after.is_none() || claimed.len() < n {
            if claim.after.is_some() {
                let rest = storage::Claim { limit: n - claimed.len(), after: None, succeeded: None, ..claim };
                claimed.extend(storage::claim_jobs(&mut conn, rest).await?);
            }
            cursor.last_full_scan = Some(Instant::now());
        }
        cursor.after = claimed.iter().map(ClaimedJob::claim_key).max();
        Ok(claimed)
    }

    fn spawn_job(&self, job: ClaimedJob, permit: OwnedSemaphorePermit) {
        let executor = self.executor();
        let finished = self.finished.clone();
        tokio::spawn(async move {
            if let Some(mut outcome) = executor.execute(job).await {
                outcome.slot = Some(permit);
                finished.send(outcome).await;
            }
        });
    }

    fn executor(&self) -> Executor {
        Executor {
            registry: self.registry.clone(),
            held: self.held.clone(),
            metrics: self.metrics.clone(),
            queue: self.queue.clone(),
            owner: self.owner,
            default_timeout: self.options.default_timeout,
        }
    }

    /// Unbatched mode: a classic worker loop that runs one job at a time and records each
    /// success in the same statement that claims the next job (one round trip per job).
    pub async fn run_serial(self, shutdown: CancellationToken) {
        if self.kinds.is_empty() {
            return;
        }
        let executor = self.executor();
        // A success not yet recorded: written together with the next claim.
        let mut unrecorded: Option<i64> = None;
        let mut error_delay = Duration::from_millis(100);
        let mut cursor = ClaimCursor::default();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let Ok(permit) = self.semaphore.clone().acquire_owned().await else { break };
            let claimed = match self.claim(1, unrecorded, &mut cursor).await {
                Ok(claimed) => {
                    error_delay = Duration::from_millis(100);
                    self.forget(unrecorded.take());
                    claimed.into_iter().next()
                }
                Err(error) => {
                    tracing::warn!(queue = %self.queue, %error, retry_in = ?error_delay, "claiming jobs failed");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(error_delay) => {}
                    }
                    error_delay = (error_delay * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let Some(job) = claimed else {
                drop(permit);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(self.options.poll_interval) => {}
                }
                continue;
            };
            self.wake.notify_one();
            match executor.clone().execute(job).await {
                Some(Finished { id, outcome: Outcome::Succeeded, .. }) => unrecorded = Some(id),
                Some(failed) => self.finished.send(failed).await,
                None => {}
            }
            drop(permit);
        }
        if let Some(id) = unrecorded {
            self.finished.send(Finished { id, outcome: Outcome::Succeeded, slot: None }).await;
        }
    }

    fn forget(&self, id: Option<i64>) {
        if let (Some(id), Ok(mut held)) = (id, self.held.lock()) {
            held.remove(&id);
        }
    }
}

/// Where the last claim ended. Claims start after it, skipping the index entries of rows
/// already claimed: those stay in the index, dead, until vacuum, and walking them from the
/// head on every claim is what makes a naive queue slow down as it drains a long backlog.
/// Jobs that sort before the cursor (a higher priority enqueued later, a claim another
/// process rolled back) are found by a scan from the head, done whenever a hinted claim comes
/// back short and at least every [`FULL_SCAN_EVERY`].
#[derive(Debug, Default)]
struct ClaimCursor {
    after: Option<storage::ClaimKey>,
    last_full_scan: Option<Instant>,
}

const FULL_SCAN_EVERY: Duration = Duration::from_secs(1);

impl ClaimCursor {
    fn hint(&self) -> Option<storage::ClaimKey> {
        match self.last_full_scan {
            Some(at) if at.elapsed() < FULL_SCAN_EVERY => self.after,
            _ => None,
        }
    }
}

/// Runs claimed jobs: the kind's handler in its own task (a panic stays in it), under the
/// kind's timeout, tracked in `held` so the heartbeat renews its lease and can stop it.
#[derive(Clone)]
struct Executor {
    registry: Arc<Registry>,
    held: Held,
    metrics: Arc<Metrics>,
    queue: String,
    owner: Uuid,
    default_timeout: Duration,
}

impl Executor {
    /// The job's outcome, or `None` when it was aborted (cancelled, lease lost, shutdown): then
    /// whoever aborted it owns the row.
    async fn execute(self, job: ClaimedJob) -> Option<Finished> {
        let Some(registered) = self.registry.get(&job.kind).cloned() else {
            // Claims filter on registered kinds, so this cannot happen; fail loudly if it does.
            let error = format!("unknown job kind {}", job.kind);
            return Some(Finished {
                id: job.id,
                outcome: Outcome::Failed { error, permanent: true },
                slot: None,
            });
        };
        let timeout = registered.timeout.unwrap_or(self.default_timeout);
        let ctx = JobContext {
            id: JobId(job.id),
            kind: job.kind.clone(),
            attempt: job.attempts,
            max_attempts: job.max_attempts,
            worker_id: self.owner,
        };
        let started = Instant::now();
        let run = tokio::spawn(tokio::time::timeout(timeout, (registered.handler)(job.payload, ctx)));
        if let Ok(mut held) = self.held.lock() {
            held.insert(job.id, Some(run.abort_handle()));
        }
        let outcome = match run.await {
            Ok(Ok(Ok(()))) => Outcome::Succeeded,
            Ok(Ok(Err(JobError::Retryable(e)))) => {
                Outcome::Failed { error: format!("{e:#}"), permanent: false }
            }
            Ok(Ok(Err(JobError::Permanent(e)))) => {
                Outcome::Failed { error: format!("{e:#}"), permanent: true }
            }
            Ok(Err(_elapsed)) => {
                Outcome::Failed { error: format!("timed out after {timeout:?}"), permanent: false }
            }
            Err(e) if e.is_panic() => Outcome::Failed {
                error: format!("panicked: {}", panic_message(&*e.into_panic())),
                permanent: false,
            },
            Err(_) => return None,
        };
        let seconds = started.elapsed().as_secs_f64();
        match &outcome {
            Outcome::Succeeded => {
                self.metrics.job_finished(&self.queue, &job.kind, JobOutcome::Succeeded, seconds);
            }
            Outcome::Failed { error, .. } => {
                tracing::warn!(job_id = job.id, kind = %job.kind, attempt = job.attempts, error = %error, "job failed");
                self.metrics.job_finished(&self.queue, &job.kind, JobOutcome::Failed, seconds);
            }
        }
        // Still held (lease renewed) until the outcome is written; gone if the lease was lost.
        let still_ours = self
            .held
            .lock()
            .ok()
            .and_then(|mut held| held.get_mut(&job.id).map(|slot| *slot = None))
            .is_some();
        still_ours.then_some(Finished { id: job.id, outcome, slot: None })
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}
