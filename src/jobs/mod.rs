//! Every kind of background job. `register_all` is the single list of kinds a worker runs;
//! `schedules` is the single list of cron entries.
//!
//! Owns: job payloads and their `run`. Uses: `queue`, `db`, domain modules.

pub mod probe;
pub mod prune;

use std::sync::Arc;

use crate::config::Config;
use crate::db::DbPool;
use crate::queue::{Job, NewJob, Registry};
use crate::schedule::Schedule;

/// What jobs need to run.
#[derive(Clone)]
pub struct JobEnv {
    pub pool: DbPool,
    pub config: Arc<Config>,
}

/// Registers every job kind with `registry`.
pub fn register_all(registry: &mut Registry, env: &JobEnv) {
    registry.register::<probe::QueueProbe>(env.clone()).register::<prune::PruneJobs>(env.clone());
}

/// The cron entries, from `[schedule]` in the configuration.
#[must_use]
pub fn schedules(config: &Config) -> Vec<Schedule> {
    let max_attempts = config.settings.queue.default_max_attempts;
    vec![Schedule {
        name: "prune_jobs",
        expression: config.settings.schedule.prune_jobs.clone(),
        job: Arc::new(move || Ok(NewJob::new(&prune::PruneJobs {}, max_attempts)?)),
    }]
}

/// A `NewJob` for `job` with this configuration's default attempts.
///
/// # Errors
/// When the job does not serialise.
pub fn new_job<J: Job>(config: &Config, job: &J) -> serde_json::Result<NewJob> {
    NewJob::new(job, config.settings.queue.default_max_attempts)
}
