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
            let claimed = match self.claim(wanted).await {
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
            if got == wanted {
                // There may be more: let a sibling claim loop (if any) start on it too.
                self.wake.notify_one();
            } else {
                // Nothing more is due: sleep until an enqueue wakes us or the poll interval ends.
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(self.options.poll_interval) => {}
                }
            }
        }
    }

    async fn claim(&self, n: usize) -> anyhow::Result<Vec<ClaimedJob>> {
        let mut conn = self.pool.get().await?;
        Ok(storage::claim_jobs(&mut conn, &self.queue, &self.kinds, n, self.owner, self.options.lease)
            .await?)
    }

    fn spawn_job(&self, job: ClaimedJob, permit: OwnedSemaphorePermit) {
        let Some(registered) = self.registry.get(&job.kind).cloned() else {
            // Claims filter on registered kinds, so this cannot happen; fail loudly if it does.
            let finished = self.finished.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let error = format!("unknown job kind {}", job.kind);
                finished
                    .send(Finished { id: job.id, outcome: Outcome::Failed { error, permanent: true } })
                    .await;
            });
            return;
        };
        let timeout = registered.timeout.unwrap_or(self.options.default_timeout);
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
        let held = self.held.clone();
        let finished = self.finished.clone();
        let metrics = self.metrics.clone();
        let queue = self.queue.clone();
        tokio::spawn(async move {
            let _permit = permit;
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
                // Aborted by us: cancelled, lease lost, or shutdown. Whoever aborted owns the row.
                Err(_) => return,
            };
            let seconds = started.elapsed().as_secs_f64();
            match &outcome {
                Outcome::Succeeded => metrics.job_finished(&queue, &job.kind, JobOutcome::Succeeded, seconds),
                Outcome::Failed { error, .. } => {
                    tracing::warn!(job_id = job.id, kind = %job.kind, attempt = job.attempts, error = %error, "job failed");
                    metrics.job_finished(&queue, &job.kind, JobOutcome::Failed, seconds);
                }
            }
            // Still held (lease renewed) until the completer has written the outcome.
            let still_ours = match held.lock() {
                Ok(mut held) => match held.get_mut(&job.id) {
                    Some(slot) => {
                        *slot = None;
                        true
                    }
                    None => false,
                },
                Err(_) => false,
            };
            if still_ours {
                finished.send(Finished { id: job.id, outcome }).await;
            }
        });
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
