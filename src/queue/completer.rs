//! Writes job outcomes in batches: all successes in one UPDATE, all failures in another.
//! An outcome is never dropped while the database is briefly away: the batch is retried.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::storage::{self, Backoff, Failure};
use crate::db::DbPool;

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    Succeeded,
    Failed { error: String, permanent: bool },
}

#[derive(Debug)]
pub struct Finished {
    pub id: i64,
    pub outcome: Outcome,
    /// The job's concurrency slot, given back once the outcome is recorded: a worker never
    /// runs further ahead of its bookkeeping than its concurrency.
    pub slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Jobs this process holds a lease on: `Some` while running (the handle aborts the run), `None`
/// once finished but not yet recorded. The heartbeat renews every id in here.
pub type Held = Arc<Mutex<HashMap<i64, Option<tokio::task::AbortHandle>>>>;

pub struct Completer {
    pub pool: DbPool,
    pub owner: Uuid,
    pub backoff: Backoff,
    pub batch_size: usize,
    pub flush: Duration,
    pub held: Held,
    /// Cancelled when the worker shuts down: from then on a failing batch is retried for
    /// `final_retry_for` only, so a database outage cannot hold the process past its grace.
    pub stopping: tokio_util::sync::CancellationToken,
    pub final_retry_for: Duration,
}

impl Completer {
    /// Records one outcome at once (unbatched mode), then forgets the job.
    pub async fn record_one(&self, finished: Finished) {
        self.write_with_retry(std::slice::from_ref(&finished), false).await;
        self.release_held(std::slice::from_ref(&finished));
    }

    fn release_held(&self, batch: &[Finished]) {
        if let Ok(mut held) = self.held.lock() {
            for f in batch {
                held.remove(&f.id);
            }
        }
    }

    /// Runs until every sender is dropped and the last batch is written.
    pub async fn run(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Finished>) {
        let mut batch = Vec::with_capacity(self.batch_size);
        loop {
            let Some(first) = rx.recv().await else { return };
            batch.push(first);
            let deadline = Instant::now() + self.flush;
            let mut closed = false;
            while batch.len() < self.batch_size {
                match rx.try_recv() {
                    Ok(f) => batch.push(f),
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => {
                        if self.flush.is_zero() {
                            break;
                        }
                        match tokio::time::timeout_at(deadline, rx.recv()).await {
                            Ok(Some(f)) => batch.push(f),
                            Ok(None) => {
                                closed = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                }
            }
            self.write_with_retry(&batch, closed).await;
            self.release_held(&batch);
            batch.clear();
            if closed {
                return;
            }
        }
    }

    async fn write_with_retry(&self, batch: &[Finished], closing: bool) {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            match self.write(batch).await {
                Ok(()) => return,
                Err(error) => {
                    if (closing || self.stopping.is_cancelled()) && started.elapsed() >= self.final_retry_for
                    {
                        tracing::error!(%error, jobs = batch.len(),
                            "could not record job outcomes; their leases will expire and they will run again");
                        return;
                    }
                    tracing::warn!(%error, jobs = batch.len(), retry_in = ?delay, "recording job outcomes failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn write(&self, batch: &[Finished]) -> anyhow::Result<()> {
        let succeeded: Vec<i64> =
            batch.iter().filter(|f| matches!(f.outcome, Outcome::Succeeded)).map(|f| f.id).collect();
        let failed: Vec<Failure> = batch
            .iter()
            .filter_map(|f| match &f.outcome {
                Outcome::Failed { error, permanent } => {
                    Some(Failure { id: f.id, error: error.clone(), permanent: *permanent })
                }
                Outcome::Succeeded => None,
            })
            .collect();
        let mut conn = self.pool.get().await?;
        if !succeeded.is_empty() {
            storage::complete_jobs(&mut conn, &succeeded, self.owner).await?;
        }
        if !failed.is_empty() {
            storage::fail_jobs(&mut conn, &failed, self.owner, self.backoff).await?;
        }
        Ok(())
    }
}

/// Where a finished job's outcome goes.
#[derive(Clone)]
pub enum Sink {
    /// To the batching completer task.
    Batched(mpsc::UnboundedSender<Finished>),
    /// Written by the job's own task, one statement per job.
    Inline(Arc<Completer>),
}

impl Sink {
    pub async fn send(&self, finished: Finished) {
        match self {
            Self::Batched(tx) => {
                // Closed only after every job task is gone, so this cannot fail while we run.
                let _ = tx.send(finished);
            }
            Self::Inline(completer) => completer.record_one(finished).await,
        }
    }
}
