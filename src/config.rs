//! Typed configuration: the embedded `config.toml` defaults, an optional file, then
//! `AUDIENCELENS__SECTION__KEY` environment overrides. Secrets come from the environment only
//! and are held as [`SecretString`] so they never reach a log line.
//!
//! Owns: parsing and validating settings. Uses: nothing else in the crate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The shipped `config.toml`: every setting with its default and its documentation.
pub const EMBEDDED_DEFAULTS: &str = include_str!("../config.toml");

/// Prefix of environment overrides: `AUDIENCELENS__QUEUE__LEASE_SECS=60`.
pub const ENV_PREFIX: &str = "AUDIENCELENS";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: setting `{setting}` {problem}")]
    Invalid { setting: &'static str, problem: String },
    #[error("configuration: environment variable {variable} {problem}")]
    Secret { variable: &'static str, problem: String },
}

fn invalid(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { setting, problem: problem.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Dev,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub environment: Environment,
    pub log: LogSettings,
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub database: DatabaseSettings,
    pub import: ImportSettings,
    pub queue: QueueSettings,
    pub apify: ApifySettings,
    pub pictures: PictureSettings,
    pub privacy: PrivacySettings,
    pub schedule: ScheduleSettings,
    pub vision: VisionSettings,
    pub gemini: GeminiSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    pub retention_days: u32,
    pub classify_private_accounts: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApifySettings {
    pub base_url: String,
    pub posts_actor: String,
    pub comments_actor: String,
    pub profiles_actor: String,
    pub refresh_profiles: bool,
    pub profile_refresh_days: u32,
    pub posts_per_comment_run: usize,
    pub max_charge_usd_per_run: f64,
    pub connect_timeout_secs: u64,
    pub request_timeout_secs: u64,
    pub run_timeout_secs: u64,
    pub wait_secs: u64,
    pub poll_pause_ms: u64,
    pub max_retries: u32,
    pub retry_base_ms: u64,
    pub page_size: u64,
}

impl ApifySettings {
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PictureSettings {
    pub concurrency: usize,
    pub connect_timeout_secs: u64,
    pub timeout_secs: u64,
    pub max_bytes: usize,
    pub max_dimension: u32,
    pub max_attempts: i32,
    /// Hosts picture links may point at (a host matches an entry or ends with `.entry`).
    pub allowed_hosts: Vec<String>,
    /// Also fetch over plain http and from private or loopback addresses (tests and local
    /// picture servers only; refused in production).
    pub allow_local: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub max_body_bytes: usize,
    pub cors_origins: Vec<String>,
    pub rate_limit_per_ip_per_minute: u32,
    pub rate_limit_per_user_per_minute: u32,
    pub login_attempts_per_minute: u32,
    pub trust_forwarded_for: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub token_ttl_secs: i64,
    pub max_session_hours: u64,
    pub allow_registration: bool,
}

/// Apify export files taken in (`import`, `analyze --import`, the dashboard's uploads).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSettings {
    pub max_file_bytes: u64,
    pub max_files: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub replica_url: String,
    pub pool_size: usize,
    pub connect_timeout_secs: u64,
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    pub lease_secs: u64,
    pub poll_interval_ms: u64,
    pub rescue_interval_secs: u64,
    pub claim_batch_size: usize,
    pub complete_batch_size: usize,
    pub complete_flush_ms: u64,
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    pub default_max_attempts: i32,
    pub default_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    pub synchronous_commit: bool,
    pub finished_retention_hours: u64,
    pub large_job_threshold: i64,
    /// Queue name → concurrent jobs in this process (0 = not worked here).
    pub concurrency: BTreeMap<String, usize>,
}

impl QueueSettings {
    #[must_use]
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }
    #[must_use]
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
    #[must_use]
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    pub prune_jobs: String,
    pub purge_retention: String,
    pub reanalyze_due: String,
}

/// The local profile-picture classifier (`[vision]` in config.toml documents each key).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionSettings {
    pub models_dir: PathBuf,
    pub onnxruntime_library: PathBuf,
    /// Pictures classified at once; 0 = one per core (see [`VisionSettings::worker_threads`]).
    pub threads: usize,
    pub gender_threshold: f32,
    pub gender_uncertain_low: f32,
    pub gender_uncertain_high: f32,
    pub min_face_px: f32,
    pub age_flip: bool,
    pub verify_faces: bool,
    pub max_bytes: usize,
    pub max_side: u32,
    pub max_pixels: u64,
    pub min_side: u32,
}

impl VisionSettings {
    /// `threads`, with 0 resolved to the number of cores.
    #[must_use]
    pub fn worker_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            n => n,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let unit = |v: f32| (0.0..=1.0).contains(&v);
        if !unit(self.gender_threshold) {
            return Err(invalid("vision.gender_threshold", "must be between 0 and 1"));
        }
        if !(unit(self.gender_uncertain_low)
            && unit(self.gender_uncertain_high)
            && self.gender_uncertain_low <= self.gender_threshold
            && self.gender_threshold <= self.gender_uncertain_high)
        {
            return Err(invalid(
                "vision.gender_uncertain_low",
                "and vision.gender_uncertain_high must satisfy 0 <= low <= gender_threshold <= high <= 1",
            ));
        }
        if self.min_face_px.is_nan() || self.min_face_px < 0.0 {
            return Err(invalid("vision.min_face_px", "must be 0 or more"));
        }
        if self.min_side == 0 || self.max_side < self.min_side {
            return Err(invalid("vision.max_side", "must be at least vision.min_side, which must be > 0"));
        }
        if self.max_bytes == 0 || self.max_pixels == 0 {
            return Err(invalid("vision.max_bytes", "and vision.max_pixels must be greater than 0"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeminiSettings {
    pub base_url: String,
    pub api_version: String,
    pub model: String,
    pub batch_size: usize,
    pub concurrency: usize,
    pub connect_timeout_secs: u64,
    pub request_timeout_secs: u64,
    pub max_retries: u32,
    pub retry_base_ms: u64,
    pub max_retry_delay_secs: u64,
    pub media_resolution: MediaResolution,
    pub max_output_tokens_per_picture: u32,
    pub budget_usd_per_analysis: f64,
    pub expected_prompt_tokens_per_picture: u32,
    pub calibration: String,
    pub prices: Vec<ModelPrice>,
    pub cascade: CascadeSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaResolution {
    Low,
    Medium,
    High,
}

impl MediaResolution {
    /// The API's name for it.
    #[must_use]
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Low => "MEDIA_RESOLUTION_LOW",
            Self::Medium => "MEDIA_RESOLUTION_MEDIUM",
            Self::High => "MEDIA_RESOLUTION_HIGH",
        }
    }
}

/// US dollars per million tokens.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub model: String,
    pub input: f64,
    pub output: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CascadeSettings {
    pub min_gender_confidence: f32,
    pub min_age_confidence: f32,
    pub send_groups: bool,
    pub send_no_person: bool,
}

impl GeminiSettings {
    /// The price of the configured model.
    #[must_use]
    pub fn price(&self) -> Option<&ModelPrice> {
        self.prices.iter().find(|p| p.model == self.model)
    }

    /// The Gemini cap of an analysis whose account has no budget of its own.
    #[must_use]
    pub fn default_budget_micro_usd(&self) -> i64 {
        (self.budget_usd_per_analysis * 1e6).round() as i64
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if reqwest::Url::parse(&self.base_url).is_err() {
            return Err(invalid("gemini.base_url", "is not a URL"));
        }
        if !matches!(self.api_version.as_str(), "v1" | "v1beta") {
            return Err(invalid("gemini.api_version", "must be \"v1\" or \"v1beta\""));
        }
        if self.model.trim().is_empty() || self.model.contains('/') {
            return Err(invalid("gemini.model", "must be a model name such as gemini-2.5-flash-lite"));
        }
        for (setting, value) in [
            ("gemini.batch_size", self.batch_size as u64),
            ("gemini.concurrency", self.concurrency as u64),
            ("gemini.request_timeout_secs", self.request_timeout_secs),
            ("gemini.max_output_tokens_per_picture", u64::from(self.max_output_tokens_per_picture)),
        ] {
            if value == 0 {
                return Err(invalid(setting, "must be greater than 0"));
            }
        }
        if self.batch_size > 100 {
            return Err(invalid("gemini.batch_size", "must be at most 100"));
        }
        if !(self.budget_usd_per_analysis >= 0.0 && self.budget_usd_per_analysis.is_finite()) {
            return Err(invalid("gemini.budget_usd_per_analysis", "must be 0 or more"));
        }
        if let Some(p) = self.prices.iter().find(|p| !(p.input >= 0.0 && p.output >= 0.0)) {
            return Err(invalid("gemini.prices", format!("has a negative or missing price for {}", p.model)));
        }
        if self.price().is_none() {
            return Err(invalid(
                "gemini.model",
                format!("{} has no entry in gemini.prices: add its price per million tokens", self.model),
            ));
        }
        let unit = |v: f32| (0.0..=1.0).contains(&v);
        if !unit(self.cascade.min_gender_confidence) || !unit(self.cascade.min_age_confidence) {
            return Err(invalid("gemini.cascade", "confidence thresholds must be between 0 and 1"));
        }
        Ok(())
    }
}

/// Secrets, read from the environment only.
#[derive(Clone, Default)]
pub struct Secrets {
    pub database_password: Option<SecretString>,
    pub jwt_secret: Option<SecretString>,
    pub apify_token: Option<SecretString>,
    pub gemini_api_key: Option<SecretString>,
    pub privacy_key: Option<SecretString>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = |s: &Option<SecretString>| if s.is_some() { "set" } else { "unset" };
        f.debug_struct("Secrets")
            .field("database_password", &state(&self.database_password))
            .field("jwt_secret", &state(&self.jwt_secret))
            .field("apify_token", &state(&self.apify_token))
            .field("gemini_api_key", &state(&self.gemini_api_key))
            .field("privacy_key", &state(&self.privacy_key))
            .finish()
    }
}

pub const DATABASE_PASSWORD_VAR: &str = "AUDIENCELENS_DATABASE_PASSWORD";
pub const JWT_SECRET_VAR: &str = "AUDIENCELENS_JWT_SECRET";
pub const APIFY_TOKEN_VAR: &str = "APIFY_TOKEN";
pub const GEMINI_API_KEY_VAR: &str = "GEMINI_API_KEY";
pub const PRIVACY_KEY_VAR: &str = "AUDIENCELENS_PRIVACY_KEY";

/// The queues the job kinds run on (`src/jobs`; a test there keeps the two in step).
/// `[queue.concurrency]` takes these and their `_large` siblings, nothing else.
pub const QUEUES: [&str; 4] = ["scrape", "pictures", "classify", "maintenance"];
/// Shortest JWT secret accepted outside dev mode (HS256 wants at least 256 bits).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Settings plus secrets: everything the application is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub secrets: Secrets,
}

impl Config {
    /// Loads defaults, then `file` (when given it must exist), then environment overrides, and
    /// validates the result.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the setting or variable that is wrong.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &vars)
    }

    /// [`Config::load`] with an explicit environment (tests use this).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the setting or variable that is wrong.
    pub fn load_from(file: Option<&Path>, vars: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(EMBEDDED_DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            builder =
                builder.add_source(config::File::from(path).format(config::FileFormat::Toml).required(true));
        }
        let overrides: config::Map<String, String> =
            vars.iter().filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__"))).cloned().collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.cors_origins")
                .with_list_parse_key("pictures.allowed_hosts")
                .source(Some(overrides)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        let get = |name: &str| {
            vars.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| SecretString::from(v.clone()))
        };
        let secrets = Secrets {
            database_password: get(DATABASE_PASSWORD_VAR),
            jwt_secret: get(JWT_SECRET_VAR),
            apify_token: get(APIFY_TOKEN_VAR),
            gemini_api_key: get(GEMINI_API_KEY_VAR),
            privacy_key: get(PRIVACY_KEY_VAR),
        };
        let config = Self { settings, secrets };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.settings;
        let url = reqwest::Url::parse(&s.database.url)
            .map_err(|e| invalid("database.url", format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(invalid("database.url", "must start with postgres://"));
        }
        if carries_password(&url) {
            return Err(invalid(
                "database.url",
                format!("must not contain a password: set {DATABASE_PASSWORD_VAR} instead"),
            ));
        }
        if !s.database.replica_url.trim().is_empty() {
            let replica = reqwest::Url::parse(s.database.replica_url.trim())
                .map_err(|e| invalid("database.replica_url", format!("is not a URL: {e}")))?;
            if carries_password(&replica) {
                return Err(invalid("database.replica_url", "must not contain a password"));
            }
        }
        let positive = [
            ("database.pool_size", s.database.pool_size as u64),
            ("database.connect_timeout_secs", s.database.connect_timeout_secs),
            ("import.max_file_bytes", s.import.max_file_bytes),
            ("import.max_files", s.import.max_files as u64),
            ("queue.lease_secs", s.queue.lease_secs),
            ("queue.poll_interval_ms", s.queue.poll_interval_ms),
            ("queue.rescue_interval_secs", s.queue.rescue_interval_secs),
            ("queue.claim_batch_size", s.queue.claim_batch_size as u64),
            ("queue.complete_batch_size", s.queue.complete_batch_size as u64),
            ("queue.retry_base_secs", s.queue.retry_base_secs),
            ("queue.default_timeout_secs", s.queue.default_timeout_secs),
            ("server.rate_limit_per_ip_per_minute", u64::from(s.server.rate_limit_per_ip_per_minute)),
            ("server.rate_limit_per_user_per_minute", u64::from(s.server.rate_limit_per_user_per_minute)),
            ("server.login_attempts_per_minute", u64::from(s.server.login_attempts_per_minute)),
            ("auth.token_ttl_secs", u64::try_from(s.auth.token_ttl_secs).unwrap_or(0)),
            ("auth.max_session_hours", s.auth.max_session_hours),
            ("apify.request_timeout_secs", s.apify.request_timeout_secs),
            ("apify.run_timeout_secs", s.apify.run_timeout_secs),
            ("apify.page_size", s.apify.page_size),
            ("apify.posts_per_comment_run", s.apify.posts_per_comment_run as u64),
            ("pictures.concurrency", s.pictures.concurrency as u64),
            ("pictures.timeout_secs", s.pictures.timeout_secs),
            ("pictures.max_bytes", s.pictures.max_bytes as u64),
            ("pictures.max_dimension", u64::from(s.pictures.max_dimension)),
        ];
        for (setting, value) in positive {
            if value == 0 {
                return Err(invalid(setting, "must be greater than 0"));
            }
        }
        if s.queue.lease_secs < 3 {
            return Err(invalid("queue.lease_secs", "must be at least 3 (it is renewed every third)"));
        }
        if s.queue.retry_max_secs < s.queue.retry_base_secs {
            return Err(invalid("queue.retry_max_secs", "must be at least queue.retry_base_secs"));
        }
        if reqwest::Url::parse(&s.apify.base_url).is_err() {
            return Err(invalid("apify.base_url", "is not a URL"));
        }
        if s.apify.max_charge_usd_per_run.is_nan() || s.apify.max_charge_usd_per_run <= 0.0 {
            return Err(invalid("apify.max_charge_usd_per_run", "must be greater than 0"));
        }
        if s.queue.default_max_attempts < 1 {
            return Err(invalid("queue.default_max_attempts", "must be at least 1"));
        }
        for name in s.queue.concurrency.keys() {
            if !crate::queue::is_valid_queue_name(name) {
                return Err(invalid(
                    "queue.concurrency",
                    format!("has a bad queue name {name:?} (lowercase letters, digits, _)"),
                ));
            }
            if !QUEUES.contains(&name.strip_suffix("_large").unwrap_or(name)) {
                return Err(invalid(
                    "queue.concurrency",
                    format!(
                        "has an unknown queue {name:?}: the queues are {}, each also with a _large sibling",
                        QUEUES.join(", ")
                    ),
                ));
            }
        }
        s.vision.validate()?;
        s.gemini.validate()?;
        crate::schedule::validate_expression("schedule.prune_jobs", &s.schedule.prune_jobs)
            .map_err(|problem| invalid("schedule.prune_jobs", problem))?;
        crate::schedule::validate_expression("schedule.purge_retention", &s.schedule.purge_retention)
            .map_err(|problem| invalid("schedule.purge_retention", problem))?;
        crate::schedule::validate_expression("schedule.reanalyze_due", &s.schedule.reanalyze_due)
            .map_err(|problem| invalid("schedule.reanalyze_due", problem))?;
        if s.privacy.retention_days == 0 {
            return Err(invalid("privacy.retention_days", "must be at least 1"));
        }
        self.validate_pictures()?;
        self.validate_secrets()
    }

    /// Picture links are input: at least one allowed host, and no local addresses in production.
    fn validate_pictures(&self) -> Result<(), ConfigError> {
        let s = &self.settings;
        if s.pictures.allowed_hosts.iter().all(|h| h.trim().is_empty()) {
            return Err(invalid("pictures.allowed_hosts", "must name at least one host (Instagram's CDN)"));
        }
        if s.pictures.allow_local && s.environment == Environment::Production {
            return Err(invalid(
                "pictures.allow_local",
                "must be false when environment = \"production\": picture links are input, and must not reach private addresses",
            ));
        }
        Ok(())
    }

    /// Outside dev mode, weak or missing secrets stop start-up: missing, short, low in entropy
    /// (few distinct bytes, a repeated pattern), the public development key, or the same value
    /// for both secrets.
    fn validate_secrets(&self) -> Result<(), ConfigError> {
        if self.settings.environment != Environment::Production {
            return Ok(());
        }
        let jwt = self.secrets.jwt_secret.as_ref().map(|s| s.expose_secret().as_bytes());
        let privacy = self.secrets.privacy_key.as_ref().map(|s| s.expose_secret().as_bytes());
        for (variable, secret) in [(JWT_SECRET_VAR, jwt), (PRIVACY_KEY_VAR, privacy)] {
            let problem = match secret {
                None => Some("must be set when environment = \"production\"".to_owned()),
                Some(bytes) => weakness(bytes),
            };
            if let Some(problem) = problem {
                return Err(ConfigError::Secret { variable, problem: format!("{problem}. {MAKE_A_SECRET}") });
            }
        }
        if jwt == privacy {
            return Err(ConfigError::Secret {
                variable: PRIVACY_KEY_VAR,
                problem: format!(
                    "must differ from {JWT_SECRET_VAR}: one leaked secret must not give away the other. {MAKE_A_SECRET}"
                ),
            });
        }
        Ok(())
    }

    /// The database URL with the password from the environment filled in. Never log it.
    #[must_use]
    pub fn database_url(&self) -> SecretString {
        database_url_with_password(&self.settings.database.url, self.secrets.database_password.as_ref())
    }

    /// The read replica's URL, when one is configured.
    #[must_use]
    pub fn replica_url(&self) -> Option<SecretString> {
        let url = self.settings.database.replica_url.trim();
        (!url.is_empty()).then(|| database_url_with_password(url, self.secrets.database_password.as_ref()))
    }
}

/// How to make a good secret, in every refusal.
const MAKE_A_SECRET: &str = "Make one with `openssl rand -base64 48`";

/// Fewest distinct bytes a secret must have.
const MIN_DISTINCT_BYTES: usize = 16;

/// Why `secret` is too weak for production, if it is.
fn weakness(secret: &[u8]) -> Option<String> {
    if secret.len() < MIN_JWT_SECRET_BYTES {
        return Some(format!("is too short: at least {MIN_JWT_SECRET_BYTES} bytes outside dev mode"));
    }
    if secret == crate::privacy::DEV_KEY.as_bytes() {
        return Some("is the public development key from the source code".to_owned());
    }
    let distinct = secret.iter().collect::<std::collections::HashSet<_>>().len();
    if distinct < MIN_DISTINCT_BYTES {
        return Some(format!(
            "has only {distinct} distinct bytes: at least {MIN_DISTINCT_BYTES} outside dev mode"
        ));
    }
    // A short pattern repeated (`abcdabcd...`) is as weak as the pattern.
    let repeated = (1..=secret.len() / 2)
        .any(|n| secret.len().is_multiple_of(n) && secret.chunks(n).all(|c| c == &secret[..n]));
    if repeated {
        return Some("is a short pattern repeated".to_owned());
    }
    None
}

/// Inserts `password` into `url` (which `validate` has checked parses and has none).
#[must_use]
pub fn database_url_with_password(url: &str, password: Option<&SecretString>) -> SecretString {
    match (reqwest::Url::parse(url), password) {
        (Ok(mut parsed), Some(pw)) => {
            // Only fails for URLs that cannot have credentials; postgres:// URLs can.
            let _ = parsed.set_password(Some(pw.expose_secret()));
            SecretString::from(parsed.to_string())
        }
        _ => SecretString::from(url.to_owned()),
    }
}

/// A password in a connection URL, as userinfo or as libpq's `password` parameter: either would
/// reach logs and error messages with the URL.
fn carries_password(url: &reqwest::Url) -> bool {
    url.password().is_some() || url.query_pairs().any(|(k, _)| k.eq_ignore_ascii_case("password"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn embedded_defaults_load() {
        let config = Config::load_from(None, &[]).expect("defaults are valid");
        assert_eq!(config.settings.server.port, 8080);
        assert_eq!(config.settings.environment, Environment::Dev);
        assert_eq!(config.settings.queue.concurrency.get("scrape"), Some(&2));
    }

    #[test]
    fn env_overrides_nested_keys() {
        let config = Config::load_from(
            None,
            &vars(&[
                ("AUDIENCELENS__SERVER__PORT", "9001"),
                ("AUDIENCELENS__QUEUE__CONCURRENCY__PICTURES", "3"),
                ("AUDIENCELENS__QUEUE__CONCURRENCY__CLASSIFY_LARGE", "5"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.settings.server.port, 9001);
        assert_eq!(config.settings.queue.concurrency.get("pictures"), Some(&3));
        assert_eq!(config.settings.queue.concurrency.get("classify_large"), Some(&5));
    }

    #[test]
    fn a_misspelt_queue_is_an_error_not_an_idle_queue() {
        let err = Config::load_from(None, &vars(&[("AUDIENCELENS__QUEUE__CONCURRENCY__PICTURE", "0")]))
            .expect_err("unknown queue");
        assert!(err.to_string().contains("\"picture\"") && err.to_string().contains("pictures"), "{err}");
    }

    #[test]
    fn bad_value_names_the_setting() {
        let err = Config::load_from(None, &vars(&[("AUDIENCELENS__SERVER__PORT", "eighty")]))
            .expect_err("must fail");
        assert!(err.to_string().contains("server.port"), "{err}");
        let err = Config::load_from(None, &vars(&[("AUDIENCELENS__QUEUE__LEASE_SECS", "0")]))
            .expect_err("must fail");
        assert!(err.to_string().contains("queue.lease_secs"), "{err}");
    }

    #[test]
    fn vision_settings_are_checked() {
        let config = Config::load_from(None, &[]).expect("defaults are valid");
        assert_eq!(config.settings.vision.models_dir, PathBuf::from("models"));
        assert!(config.settings.vision.worker_threads() >= 1);
        let err = Config::load_from(None, &vars(&[("AUDIENCELENS__VISION__GENDER_THRESHOLD", "1.5")]))
            .expect_err("must fail");
        assert!(err.to_string().contains("vision.gender_threshold"), "{err}");
        let err = Config::load_from(None, &vars(&[("AUDIENCELENS__VISION__GENDER_UNCERTAIN_HIGH", "0.4")]))
            .expect_err("must fail");
        assert!(err.to_string().contains("vision.gender_uncertain"), "{err}");
        let config =
            Config::load_from(None, &vars(&[("AUDIENCELENS__VISION__THREADS", "3")])).expect("valid");
        assert_eq!(config.settings.vision.worker_threads(), 3);
    }

    #[test]
    fn unknown_key_is_an_error() {
        let err = Config::load_from(None, &vars(&[("AUDIENCELENS__QUEUE__LEASE_SECZ", "5")]))
            .expect_err("must fail");
        assert!(err.to_string().contains("lease_secz"), "{err}");
    }

    #[test]
    fn password_in_url_is_refused() {
        let err = Config::load_from(
            None,
            &vars(&[("AUDIENCELENS__DATABASE__URL", "postgres://u:hunter2@localhost/db")]),
        )
        .expect_err("must fail");
        let text = err.to_string();
        assert!(text.contains("database.url") && !text.contains("hunter2"), "{text}");
        for (var, url) in [
            ("AUDIENCELENS__DATABASE__URL", "postgres://u@localhost/db?sslmode=require&password=hunter2"),
            ("AUDIENCELENS__DATABASE__REPLICA_URL", "postgres://u@replica/db?PASSWORD=hunter2"),
        ] {
            let err = Config::load_from(None, &vars(&[(var, url)])).expect_err("a password parameter");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn production_needs_strong_distinct_secrets() {
        let prod = ("AUDIENCELENS__ENVIRONMENT", "production");
        let err = Config::load_from(None, &vars(&[prod])).expect_err("must fail");
        assert!(err.to_string().contains(JWT_SECRET_VAR), "{err}");
        let err = Config::load_from(None, &vars(&[prod, (JWT_SECRET_VAR, "short")])).expect_err("must fail");
        assert!(err.to_string().contains("too short") && err.to_string().contains("openssl rand"), "{err}");
        let strong = "Vq3k8Zr1Lx0pW7mT2bN6yH4cJ9dF5sGa";
        let other = "x7PqR2mK9zL4tW8vB1nC6hJ3dY5fG0sE";
        let err = Config::load_from(None, &vars(&[prod, (JWT_SECRET_VAR, strong)])).expect_err("must fail");
        assert!(err.to_string().contains(PRIVACY_KEY_VAR), "{err}");
        let weak = [
            (crate::privacy::DEV_KEY, "public development key"),
            ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "distinct bytes"),
            ("                                ", "distinct bytes"),
            ("0123456789abcdef0123456789abcdef", "pattern repeated"),
        ];
        for (key, why) in weak {
            let err =
                Config::load_from(None, &vars(&[prod, (JWT_SECRET_VAR, strong), (PRIVACY_KEY_VAR, key)]))
                    .expect_err("a weak privacy key");
            assert!(
                err.to_string().contains(why) && err.to_string().contains(PRIVACY_KEY_VAR),
                "{key:?}: {err}"
            );
            let err =
                Config::load_from(None, &vars(&[prod, (JWT_SECRET_VAR, key), (PRIVACY_KEY_VAR, other)]))
                    .expect_err("a weak JWT secret");
            assert!(
                err.to_string().contains(why) && err.to_string().contains(JWT_SECRET_VAR),
                "{key:?}: {err}"
            );
        }
        let err =
            Config::load_from(None, &vars(&[prod, (JWT_SECRET_VAR, strong), (PRIVACY_KEY_VAR, strong)]))
                .expect_err("the same secret twice");
        assert!(err.to_string().contains("must differ"), "{err}");
        Config::load_from(None, &vars(&[prod, (JWT_SECRET_VAR, strong), (PRIVACY_KEY_VAR, other)]))
            .expect("valid");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = Config::load_from(
            None,
            &vars(&[(APIFY_TOKEN_VAR, "apify_api_SECRETVALUE"), (DATABASE_PASSWORD_VAR, "pw-SECRET")]),
        )
        .expect("valid");
        let shown = format!("{config:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(config.database_url().expose_secret().contains("pw-SECRET"));
    }
}
