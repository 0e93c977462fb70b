//! Composition root: builds the shared state once, starts the roles a mode asks for, and turns
//! SIGTERM/SIGINT into one orderly shutdown. The only module that sees everything.

use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::Config;
use crate::db::{self, DbPool};
use crate::metrics::Metrics;
use crate::privacy::PrivacyKey;
use crate::queue::{Registry, Worker, WorkerOptions};
use crate::users::tokens::TokenKeys;
use crate::{http, jobs, schedule};

/// What `serve` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The HTTP API and a worker with the cron scheduler.
    All,
    /// Only the HTTP API.
    Api,
    /// Only a worker with the cron scheduler.
    Worker,
}

/// Shared by every request handler and job: built once at start-up.
#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    /// For read-only endpoints: the replica when configured, else the primary.
    pub read_pool: DbPool,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub clients: Arc<jobs::Clients>,
    pub tokens: TokenKeys,
    pub privacy: PrivacyKey,
    pub classifier: Arc<tokio::sync::OnceCell<Arc<crate::vision::Classifier>>>,
    /// The database answers behind `/readyz` and `/metrics`, reused for a second.
    pub probes: Arc<http::ProbeCache>,
}

impl AppState {
    /// Builds the pool (connections are made lazily) and the metrics registry.
    ///
    /// # Errors
    /// When the pool cannot be configured.
    pub fn build(config: Config) -> anyhow::Result<Self> {
        let db = &config.settings.database;
        let pool = db::connect_pool(
            &config.database_url(),
            db.pool_size,
            std::time::Duration::from_secs(db.connect_timeout_secs),
        )?;
        let read_pool = match config.replica_url() {
            Some(url) => {
                db::connect_pool(&url, db.pool_size, std::time::Duration::from_secs(db.connect_timeout_secs))?
            }
            None => pool.clone(),
        };
        let clients = Arc::new(jobs::Clients::build(&config)?);
        let secret = config.secrets.jwt_secret.clone().unwrap_or_else(|| {
            // Dev mode only (production refuses to start without one): tokens die with the process.
            tracing::warn!(
                "{} is not set: using a random secret; tokens stop working on restart",
                crate::config::JWT_SECRET_VAR
            );
            let random: [u8; 32] = rand::random();
            secrecy::SecretString::from(hex::encode(random))
        });
        let auth = &config.settings.auth;
        let max_session = i64::try_from(auth.max_session_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
        let tokens = TokenKeys::new(&secret, auth.token_ttl_secs, max_session);
        let privacy = PrivacyKey::new(config.secrets.privacy_key.as_ref());
        Ok(Self {
            pool,
            read_pool,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::new()),
            clients,
            tokens,
            privacy,
            classifier: Arc::default(),
            probes: Arc::default(),
        })
    }

    #[must_use]
    pub fn job_env(&self) -> jobs::JobEnv {
        jobs::JobEnv {
            pool: self.pool.clone(),
            config: self.config.clone(),
            clients: self.clients.clone(),
            privacy: self.privacy.clone(),
            classifier: self.classifier.clone(),
        }
    }

    /// The registry of every job kind, with this state as their context.
    #[must_use]
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::new();
        jobs::register_all(&mut registry, &self.job_env());
        registry
    }
}

/// Applies pending migrations, logging what was applied.
///
/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn migrate(config: &Config) -> anyhow::Result<Vec<String>> {
    let applied = db::run_migrations(&config.database_url())
        .await
        .with_context(|| format!("migrating the database at {}", config.settings.database.url))?;
    if applied.is_empty() {
        tracing::info!("database schema is up to date");
    } else {
        tracing::info!(versions = ?applied, "applied migrations");
    }
    Ok(applied)
}

/// Runs `mode` until SIGTERM/SIGINT (or `shutdown` is cancelled by the caller).
///
/// # Errors
/// Start-up failures (database, port); each role logs why it stopped.
pub async fn serve(config: Config, mode: Mode, shutdown: CancellationToken) -> anyhow::Result<()> {
    if config.settings.database.migrate_on_start {
        migrate(&config).await?;
    }
    let state = AppState::build(config)?;
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let server = if matches!(mode, Mode::All | Mode::Api) {
        let (server, _addrs) = http::serve(state.clone()).context("starting the HTTP server")?;
        let handle = server.handle();
        let stop = shutdown.clone();
        let running = tokio::spawn(async move {
            let result = server.await;
            match &result {
                Ok(()) => tracing::info!("HTTP API stopped"),
                Err(error) => tracing::error!(%error, "HTTP API failed"),
            }
            stop.cancel();
        });
        Some((handle, running))
    } else {
        None
    };

    let worker = if matches!(mode, Mode::All | Mode::Worker) {
        let cron = schedule::start(state.pool.clone(), jobs::schedules(&state.config))
            .await
            .context("starting the cron scheduler")?;
        let worker = Worker {
            id: Uuid::new_v4(),
            database_url: state.config.database_url(),
            registry: Arc::new(state.registry()),
            options: WorkerOptions::from_settings(&state.config.settings),
            metrics: state.metrics.clone(),
        };
        Some((cron, tokio::spawn(worker.run(shutdown.clone()))))
    } else {
        None
    };

    shutdown.cancelled().await;
    if let Some((mut cron, worker)) = worker {
        if let Err(error) = cron.shutdown().await {
            tracing::warn!(%error, "cron scheduler did not stop cleanly");
        }
        tracing::info!("cron scheduler stopped");
        match worker.await {
            Ok(Ok(_report)) => {}
            Ok(Err(error)) => tracing::error!(error = %format!("{error:#}"), "worker failed"),
            Err(error) => tracing::error!(%error, "worker panicked"),
        }
    }
    if let Some((handle, running)) = server {
        handle.stop(true).await;
        let _ = running.await;
    }
    Ok(())
}

async fn cancel_on_signal(token: CancellationToken) {
    let reason = wait_for_signal().await;
    tracing::info!(signal = reason, "shutting down");
    token.cancel();
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
