//! Every kind of background job. `register_all` is the single list of kinds a worker runs;
//! `schedules` is the single list of cron entries.
//!
//! Owns: job payloads and their `run`. Uses: `queue`, `db`, domain modules.

pub mod classify;
pub mod fetch_pictures;
pub mod import;
pub mod pipeline;
pub mod probe;
pub mod prune;
pub mod purge;
pub mod reanalyze;
pub mod scrape;

use std::sync::Arc;

use crate::clients::apify::{ApifyClient, ApifyError};
use crate::clients::gemini::{GeminiClient, GeminiError};
use crate::clients::pictures::PictureClient;
use crate::config::Config;
use crate::db::DbPool;
use crate::privacy::PrivacyKey;
use crate::queue::{Job, NewJob, Registry};
use crate::schedule::Schedule;
use crate::vision::Classifier;

/// What jobs need to run: built once per process.
#[derive(Clone)]
pub struct JobEnv {
    pub pool: DbPool,
    pub config: Arc<Config>,
    pub clients: Arc<Clients>,
    pub privacy: PrivacyKey,
    /// Loaded on first use (workers that never classify never load the models).
    pub classifier: Arc<tokio::sync::OnceCell<Arc<Classifier>>>,
}

impl JobEnv {
    /// The local classifier, loading the models the first time.
    ///
    /// # Errors
    /// Missing or unloadable model files (the message says how to fetch them).
    pub async fn classifier(&self) -> anyhow::Result<Arc<Classifier>> {
        let settings = self.config.settings.vision.clone();
        let classifier = self
            .classifier
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || Classifier::load(&settings).map(Arc::new))
                    .await
                    .map_err(anyhow::Error::from)?
                    .map_err(anyhow::Error::from)
            })
            .await?;
        Ok(classifier.clone())
    }
}

/// Outbound clients. Apify and Gemini are absent without a token or key: the jobs that need
/// them then fail with a message saying how to set one.
#[derive(Debug)]
pub struct Clients {
    pub apify: Option<ApifyClient>,
    pub gemini: Option<GeminiClient>,
    pub pictures: PictureClient,
}

impl Clients {
    /// # Errors
    /// When an HTTP client cannot be built.
    pub fn build(config: &Config) -> anyhow::Result<Self> {
        let apify = match ApifyClient::new(&config.settings.apify, config.secrets.apify_token.as_ref()) {
            Ok(client) => Some(client),
            Err(ApifyError::MissingToken) => None,
            Err(e) => return Err(e.into()),
        };
        let gemini = match GeminiClient::new(&config.settings.gemini, config.secrets.gemini_api_key.as_ref())
        {
            Ok(client) => Some(client),
            Err(GeminiError::MissingKey) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Self { apify, gemini, pictures: PictureClient::new(&config.settings.pictures)? })
    }

    /// # Errors
    /// [`ApifyError::MissingToken`] when no token is configured.
    pub fn apify(&self) -> Result<&ApifyClient, ApifyError> {
        self.apify.as_ref().ok_or(ApifyError::MissingToken)
    }

    /// # Errors
    /// [`GeminiError::MissingKey`] when no key is configured.
    pub fn gemini(&self) -> Result<&GeminiClient, GeminiError> {
        self.gemini.as_ref().ok_or(GeminiError::MissingKey)
    }
}

/// Registers every job kind with `registry`.
pub fn register_all(registry: &mut Registry, env: &JobEnv) {
    registry
        .register::<probe::QueueProbe>(env.clone())
        .register::<prune::PruneJobs>(env.clone())
        .register::<purge::PurgeRetention>(env.clone())
        .register::<reanalyze::ReanalyzeDue>(env.clone())
        .register::<scrape::ScrapePosts>(env.clone())
        .register::<scrape::ScrapeComments>(env.clone())
        .register::<scrape::ScrapeProfiles>(env.clone())
        .register::<fetch_pictures::FetchPictures>(env.clone())
        .register::<classify::ClassifyPictures>(env.clone())
        .register::<classify::AggregateAudience>(env.clone());
}

/// The cron entries, from `[schedule]` in the configuration.
#[must_use]
pub fn schedules(config: &Config) -> Vec<Schedule> {
    let max_attempts = config.settings.queue.default_max_attempts;
    vec![
        Schedule {
            name: "prune_jobs",
            expression: config.settings.schedule.prune_jobs.clone(),
            job: Arc::new(move || Ok(NewJob::new(&prune::PruneJobs {}, max_attempts)?)),
        },
        Schedule {
            name: "reanalyze_due",
            expression: config.settings.schedule.reanalyze_due.clone(),
            job: Arc::new(move || Ok(NewJob::new(&reanalyze::ReanalyzeDue {}, max_attempts)?)),
        },
        Schedule {
            name: "purge_retention",
            expression: config.settings.schedule.purge_retention.clone(),
            job: Arc::new(move || Ok(NewJob::new(&purge::PurgeRetention {}, max_attempts)?)),
        },
    ]
}

/// A `NewJob` for `job` with this configuration's default attempts.
///
/// # Errors
/// When the job does not serialise.
pub fn new_job<J: Job>(config: &Config, job: &J) -> serde_json::Result<NewJob> {
    NewJob::new(job, config.settings.queue.default_max_attempts)
}
