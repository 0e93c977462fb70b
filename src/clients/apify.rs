//! Apify API v2: start an actor run with cost caps, wait for it in bounded polls, read its
//! dataset page by page. 429, 5xx and transport errors are retried with backoff; the other
//! errors become [`ApifyError`]s whose messages say what to do.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{APIFY_TOKEN_VAR, ApifySettings};

#[derive(Debug, thiserror::Error)]
pub enum ApifyError {
    #[error("no Apify token: set the {APIFY_TOKEN_VAR} environment variable")]
    MissingToken,
    #[error("Apify rejected the token ({0}): check {APIFY_TOKEN_VAR}")]
    Unauthorized(String),
    #[error("Apify credit exhausted — top up or lower max_items ({0})")]
    CreditExhausted(String),
    #[error("Apify refused the request ({0}): the account's monthly limit may be reached")]
    Forbidden(String),
    #[error("not found on Apify ({0}): check the actor id in the [apify] settings")]
    NotFound(String),
    #[error("Apify rejected the request ({0})")]
    InvalidRequest(String),
    #[error("Apify kept answering 429 Too Many Requests ({0}); try again later")]
    RateLimited(String),
    #[error("Apify server error {status} ({message}); try again later")]
    Server { status: u16, message: String },
    #[error("cannot reach Apify: {0}")]
    Transport(String),
    #[error("unexpected answer from Apify: {0}")]
    Malformed(String),
    #[error("Apify run {run_id} ended {status}: {message}")]
    RunFailed { run_id: String, status: String, message: String },
    #[error("Apify run {run_id} did not finish within {waited:?}; it was aborted")]
    TimedOut { run_id: String, waited: Duration },
    #[error("cancelled while waiting for Apify run {0}; it was aborted")]
    Cancelled(String),
}

impl ApifyError {
    /// Retrying the same request later cannot help (bad token, no credit, wrong actor...).
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::MissingToken
                | Self::Unauthorized(_)
                | Self::CreditExhausted(_)
                | Self::Forbidden(_)
                | Self::NotFound(_)
                | Self::InvalidRequest(_)
                | Self::Cancelled(_)
        )
    }
}

/// An actor run, as far as AudienceLens needs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: String,
    pub status: String,
    pub default_dataset_id: String,
    #[serde(default)]
    pub status_message: Option<String>,
    #[serde(default)]
    pub usage_total_usd: Option<f64>,
}

impl Run {
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "SUCCEEDED" | "FAILED" | "TIMED-OUT" | "ABORTED")
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

/// One page of dataset items.
#[derive(Debug)]
pub struct DatasetPage {
    pub items: Vec<Value>,
    pub total: u64,
    pub offset: u64,
    /// Items in this page as Apify counts them (may differ from `items.len()` with `clean`).
    pub count: u64,
}

/// What to start: an actor with its input and the caps that bound its cost.
#[derive(Debug, Clone)]
pub struct RunRequest<'a> {
    pub actor: &'a str,
    pub input: &'a Value,
    /// Charged results at most (pay-per-result actors).
    pub max_items: Option<u64>,
    /// Charge at most this (pay-per-event actors).
    pub max_total_charge_usd: Option<f64>,
}

#[derive(Clone)]
pub struct ApifyClient {
    http: reqwest::Client,
    api: String,
    token: SecretString,
    settings: ApifySettings,
}

impl std::fmt::Debug for ApifyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApifyClient").field("api", &self.api).finish_non_exhaustive()
    }
}

/// `username/actor-name` → `username~actor-name`, percent-encoded for a path segment.
fn actor_path(actor: &str) -> String {
    actor
        .replace('/', "~")
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl ApifyClient {
    /// # Errors
    /// Without a token, or when the HTTP client cannot be built.
    pub fn new(settings: &ApifySettings, token: Option<&SecretString>) -> Result<Self, ApifyError> {
        let token = token.cloned().ok_or(ApifyError::MissingToken)?;
        let http = crate::clients::http_client()
            .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .build()
            .map_err(|e| ApifyError::Transport(e.to_string()))?;
        let base = settings.base_url.trim_end_matches('/');
        let api = if base.ends_with("/v2") { base.to_owned() } else { format!("{base}/v2") };
        Ok(Self { http, api, token, settings: settings.clone() })
    }

    /// Items per dataset page.
    #[must_use]
    pub fn page_size(&self) -> u64 {
        self.settings.page_size.max(1)
    }

    /// Starts `request.actor` without waiting for it.
    ///
    /// # Errors
    /// See [`ApifyError`].
    pub async fn start_run(&self, request: &RunRequest<'_>) -> Result<Run, ApifyError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(n) = request.max_items {
            query.push(("maxItems", n.to_string()));
        }
        if let Some(usd) = request.max_total_charge_usd {
            query.push(("maxTotalChargeUsd", format!("{usd}")));
        }
        let url = format!("{}/acts/{}/runs", self.api, actor_path(request.actor));
        let response = self
            .send(|| self.http.post(&url).query(&query).json(request.input), self.settings.request_timeout())
            .await?;
        Ok(parse_json::<Envelope<Run>>(response).await?.data)
    }

    /// The run's state, waiting up to `wait` (at most 60 s, Apify's cap) for it to finish.
    ///
    /// # Errors
    /// See [`ApifyError`].
    pub async fn get_run(&self, run_id: &str, wait: Duration) -> Result<Run, ApifyError> {
        let wait = wait.min(Duration::from_mins(1));
        let url = format!("{}/actor-runs/{run_id}", self.api);
        let query = [("waitForFinish", wait.as_secs().to_string())];
        let response =
            self.send(|| self.http.get(&url).query(&query), self.settings.request_timeout() + wait).await?;
        Ok(parse_json::<Envelope<Run>>(response).await?.data)
    }

    /// Asks Apify to stop the run (gracefully: items written so far stay readable).
    ///
    /// # Errors
    /// See [`ApifyError`].
    pub async fn abort_run(&self, run_id: &str) -> Result<Run, ApifyError> {
        let url = format!("{}/actor-runs/{run_id}/abort", self.api);
        let response = self
            .send(|| self.http.post(&url).query(&[("gracefully", "true")]), self.settings.request_timeout())
            .await?;
        Ok(parse_json::<Envelope<Run>>(response).await?.data)
    }

    /// Waits until the run ends. Past `apify.run_timeout_secs`, or when `cancel` fires, the run
    /// is aborted and an error returned. A run that ends other than SUCCEEDED is an error too.
    ///
    /// # Errors
    /// See [`ApifyError`].
    pub async fn wait_for_run(&self, run_id: &str, cancel: &CancellationToken) -> Result<Run, ApifyError> {
        let started = Instant::now();
        let limit = Duration::from_secs(self.settings.run_timeout_secs);
        loop {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                let _ = self.abort_run(run_id).await;
                return Err(ApifyError::TimedOut { run_id: run_id.to_owned(), waited: limit });
            }
            let poll = tokio::select! {
                () = cancel.cancelled() => {
                    let _ = self.abort_run(run_id).await;
                    return Err(ApifyError::Cancelled(run_id.to_owned()));
                }
                run = self.get_run(run_id, left.min(Duration::from_secs(self.settings.wait_secs))) => run?,
            };
            if poll.is_terminal() {
                return if poll.status == "SUCCEEDED" {
                    Ok(poll)
                } else {
                    Err(ApifyError::RunFailed {
                        run_id: poll.id,
                        status: poll.status,
                        message: poll.status_message.unwrap_or_else(|| "no message".into()),
                    })
                };
            }
            // A server that answers at once (no waitForFinish support) must not be hammered.
            tokio::time::sleep(Duration::from_millis(self.settings.poll_pause_ms)).await;
        }
    }

    /// One page of a dataset's items (`clean`: without hidden fields and empty items).
    ///
    /// # Errors
    /// See [`ApifyError`]; a page that is not a JSON array is [`ApifyError::Malformed`].
    pub async fn dataset_page(
        &self,
        dataset_id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<DatasetPage, ApifyError> {
        let url = format!("{}/datasets/{dataset_id}/items", self.api);
        let query =
            [("offset", offset.to_string()), ("limit", limit.to_string()), ("clean", "true".to_owned())];
        let response =
            self.send(|| self.http.get(&url).query(&query), self.settings.request_timeout()).await?;
        let header = |name: &str| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
        };
        let total = header("x-apify-pagination-total");
        let count = header("x-apify-pagination-count");
        let value: Value = parse_json(response).await?;
        let items = match value {
            Value::Array(items) => items,
            object @ Value::Object(_) => vec![object],
            other => {
                return Err(ApifyError::Malformed(format!(
                    "dataset page is not an array but {}",
                    kind_of(&other)
                )));
            }
        };
        let count = count.unwrap_or(items.len() as u64);
        Ok(DatasetPage { total: total.unwrap_or(offset + count), offset, count, items })
    }

    /// Sends with retries on 429, 5xx and transport errors; maps the other errors.
    async fn send<F>(&self, build: F, timeout: Duration) -> Result<reqwest::Response, ApifyError>
    where
        F: Fn() -> reqwest::RequestBuilder,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = build().bearer_auth(self.token.expose_secret()).timeout(timeout).send().await;
            let retryable = match result {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let message = error_message(response).await;
                    match status {
                        429 => ApifyError::RateLimited(message),
                        500..=599 => ApifyError::Server { status, message },
                        401 => return Err(ApifyError::Unauthorized(message)),
                        402 => return Err(ApifyError::CreditExhausted(message)),
                        403 => return Err(ApifyError::Forbidden(message)),
                        404 => return Err(ApifyError::NotFound(message)),
                        _ => return Err(ApifyError::InvalidRequest(format!("HTTP {status}: {message}"))),
                    }
                }
                Err(e) => ApifyError::Transport(e.without_url().to_string()),
            };
            if attempt > self.settings.max_retries {
                return Err(retryable);
            }
            let base = Duration::from_millis(self.settings.retry_base_ms);
            let delay = base.mul_f64(2f64.powi(attempt as i32 - 1) * rand::random_range(1.0..2.0));
            tracing::warn!(error = %retryable, attempt, retry_in = ?delay, "Apify request failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

/// `error.type: error.message` from Apify's error body, or the start of whatever came back.
async fn error_message(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => {
            let kind = v["error"]["type"].as_str().unwrap_or("unknown");
            let message = v["error"]["message"].as_str().unwrap_or("");
            format!("{kind}: {message}")
        }
        Err(_) => text.chars().take(200).collect(),
    }
}

async fn parse_json<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, ApifyError> {
    let bytes = response.bytes().await.map_err(|e| ApifyError::Transport(e.without_url().to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| ApifyError::Malformed(e.to_string()))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn actor_ids_become_path_segments() {
        assert_eq!(super::actor_path("apify/instagram-scraper"), "apify~instagram-scraper");
        assert_eq!(super::actor_path("shu8hvrXbJbY3Eb9W"), "shu8hvrXbJbY3Eb9W");
        assert_eq!(super::actor_path("a b/c"), "a%20b~c");
    }
}
