//! The durable job queue: a Postgres table claimed with `FOR UPDATE SKIP LOCKED` under leases.
//!
//! Generic: it knows queue names and job kinds only as strings; `src/jobs/` declares the kinds
//! and registers them in a [`Registry`]. Guarantees: a job runs at least once; an enqueue with a
//! dedupe key that matches an unfinished job is a no-op; a job whose worker dies is retried once
//! its lease expires; a job that keeps failing ends `failed` with its last error.
//!
//! Owns: `storage` (SQL), `registry` (kind → handler), `runner` (claiming, running, completing,
//! leases, rescue, shutdown), `listener` (LISTEN/NOTIFY wake-ups). Uses: `db`, `metrics`.

mod completer;
mod dispatch;
pub mod listener;
pub mod model;
pub mod registry;
pub mod runner;
pub mod storage;

use std::time::Duration;

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use model::{JobId, JobRow, JobStatus};
pub use registry::{JobContext, Registry};
pub use runner::{Worker, WorkerOptions};

/// How a job run failed.
#[derive(Debug)]
pub enum JobError {
    /// Worth another attempt (after a backoff delay) while attempts remain.
    Retryable(anyhow::Error),
    /// Will fail the same way every time: the job fails for good now.
    Permanent(anyhow::Error),
}

impl JobError {
    pub fn permanent(error: impl Into<anyhow::Error>) -> Self {
        Self::Permanent(error.into())
    }
}

impl<E: Into<anyhow::Error>> From<E> for JobError {
    fn from(error: E) -> Self {
        Self::Retryable(error.into())
    }
}

/// A kind of background work. The payload is the value itself, stored as JSON.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// Stable name stored in the `kind` column.
    const KIND: &'static str;
    /// Queue the job goes to (see [`route_queue`] for large work).
    const QUEUE: &'static str;
    /// Attempts before the job fails for good; `None` = `queue.default_max_attempts`.
    const MAX_ATTEMPTS: Option<i32> = None;
    /// Longest a run may take; `None` = `queue.default_timeout_secs`.
    const TIMEOUT: Option<Duration> = None;

    /// What the job needs to run: pool, clients, settings.
    type Context: Clone + Send + Sync + 'static;

    /// Does the work. Must be idempotent: a run can be repeated after a crash.
    fn run(self, ctx: Self::Context, job: JobContext) -> impl Future<Output = Result<(), JobError>> + Send;
}

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub priority: i16,
    pub max_attempts: i32,
    pub delay: Option<Duration>,
    pub dedupe_key: Option<String>,
}

impl NewJob {
    /// A job of kind `J` with default priority, no delay and no dedupe key.
    ///
    /// # Errors
    /// When the job does not serialise to JSON.
    pub fn new<J: Job>(job: &J, default_max_attempts: i32) -> serde_json::Result<Self> {
        Ok(Self {
            queue: J::QUEUE.to_owned(),
            kind: J::KIND.to_owned(),
            payload: serde_json::to_value(job)?,
            priority: 0,
            max_attempts: J::MAX_ATTEMPTS.unwrap_or(default_max_attempts),
            delay: None,
            dedupe_key: None,
        })
    }

    #[must_use]
    pub fn dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    #[must_use]
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Sends the job to `<queue>_large` when `size` (comments to scrape, pictures to fetch...)
    /// reaches `threshold`, so one huge account cannot starve the others.
    #[must_use]
    pub fn routed_by_size(mut self, size: i64, threshold: i64) -> Self {
        self.queue = route_queue(&self.queue, size, threshold);
        self
    }
}

/// The routing rule: work of `size` at or above `threshold` goes to its own `_large` queue.
#[must_use]
pub fn route_queue(queue: &str, size: i64, threshold: i64) -> String {
    if threshold > 0 && size >= threshold && !queue.ends_with("_large") {
        format!("{queue}_large")
    } else {
        queue.to_owned()
    }
}

/// Inserts jobs (in the caller's transaction, if any) and wakes workers once per queue.
/// Returns the ids of the jobs inserted; duplicates of unfinished jobs are skipped.
///
/// # Errors
/// Database errors.
pub async fn enqueue(conn: &mut AsyncPgConnection, jobs: &[NewJob]) -> QueryResult<Vec<JobId>> {
    storage::insert_jobs(conn, jobs).await
}

/// Inserts one job; `None` when an unfinished job with its dedupe key exists.
///
/// # Errors
/// Database errors.
pub async fn enqueue_one(conn: &mut AsyncPgConnection, job: NewJob) -> QueryResult<Option<JobId>> {
    Ok(storage::insert_jobs(conn, std::slice::from_ref(&job)).await?.into_iter().next())
}

/// Queue names are short identifiers: lowercase ASCII letters, digits and `_`.
#[must_use]
pub fn is_valid_queue_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_work_is_routed_to_its_own_queue() {
        assert_eq!(route_queue("scrape", 10, 100), "scrape");
        assert_eq!(route_queue("scrape", 100, 100), "scrape_large");
        assert_eq!(route_queue("scrape_large", 1000, 100), "scrape_large");
        assert_eq!(route_queue("scrape", 1_000_000, 0), "scrape", "threshold 0 disables routing");
    }

    #[test]
    fn queue_names_are_checked() {
        assert!(is_valid_queue_name("scrape_large"));
        assert!(!is_valid_queue_name("Scrape"));
        assert!(!is_valid_queue_name(""));
        assert!(!is_valid_queue_name("a;drop"));
    }
}
