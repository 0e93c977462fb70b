//! Gemini's `generateContent` REST API, for profile pictures: several pictures per request as
//! inline data, a system instruction and a JSON response schema, low media resolution and no
//! thinking. 429 (honouring `RetryInfo.retryDelay`), 500, 502, 503, 504 and network errors are
//! retried with backoff; 400/403/404 become [`GeminiError`]s that say what to do.
//!
//! A request that fails as a whole (a blocked prompt, a blocked or truncated answer, JSON that
//! cannot be read, a picture the API refuses) is split in two and retried until the culprit is
//! alone; that picture then gets an abstention reason and the others keep their answers. Every
//! request's token counts and cost are returned for the ledger, failed ones included.
//!
//! Owns: the wire format, the prompt and the response schema. Uses: `config`, `vision::result`.

use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{GEMINI_API_KEY_VAR, GeminiSettings, ModelPrice};
use crate::vision::result::{
    Abstain, AgeEstimate, Bracket, BracketProbs, Gender, GenderEstimate, NoPersonKind, PictureResult,
    ProfileType,
};

/// Bumped whenever the prompt or the schema changes: results of another prompt are another
/// model version (and need their own calibration).
pub const PROMPT_VERSION: &str = "p1";

/// The system instruction. It asks for profile type, gender and age bracket only: never for
/// ethnicity, race, religion, health or any other special category of data.
pub const SYSTEM_INSTRUCTION: &str = "You label Instagram profile pictures for audience statistics. \
For each image, by its index, give: profile_type: person (one main person), group (two or more \
people of similar prominence; label the largest face), no_person (no human face: logo or brand, \
pet or animal, landscape or object, text or meme, cartoon or drawing) or default_avatar \
(Instagram's grey silhouette placeholder); no_person_kind: for no_person, which of logo, pet, \
landscape, text, cartoon, else none; gender: female, male, or unknown when the face does not \
show it clearly; age_bracket: the apparent age bracket of the labelled face (13-17, 18-24, \
25-34, 35-44, 45-54, 55-64, 65+), or unknown; confidence: your probability, 0 to 1, that the \
gender and age bracket are right (for no_person and default_avatar, that the type is right). \
Say unknown rather than guess. Return exactly one result per image and nothing else.";

/// The placeholder answer of a picture whose request was never answered (an error stopped it).
pub const NOT_SENT: &str = "not sent";

/// The start of the abstention of a picture the API refused (HTTP 400) on its own.
pub const REFUSED: &str = "refused by Gemini";

/// The placeholder answer of a picture left out because the budget could not cover it.
pub const OVER_BUDGET: &str = "budget reached";

/// Spending control: every request reserves its worst case before it is sent and settles at
/// its real cost when it is back.
pub trait Spend: Sync {
    /// Reserves the worst case of a request of `pictures` pictures; `None` when it cannot fit.
    fn reserve(&self, pictures: usize) -> impl Future<Output = Option<i64>> + Send;
    /// Replaces the reservation by the cost of `records` (the request's, possibly none).
    fn settle(&self, reserved: i64, records: &[RequestRecord]);
}

/// No spending limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

impl Spend for Unlimited {
    async fn reserve(&self, _pictures: usize) -> Option<i64> {
        Some(0)
    }

    fn settle(&self, _reserved: i64, _records: &[RequestRecord]) {}
}

/// The abstention of a picture a truncated answer did not reach.
const CUT_OFF: &str = "Gemini's answer was cut off (MAX_TOKENS)";

const NO_PERSON_KINDS: [&str; 6] = ["logo", "pet", "landscape", "text", "cartoon", "none"];
const GENDERS: [&str; 3] = ["female", "male", "unknown"];
const BRACKETS: [&str; 8] = ["13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown"];
const PROFILE_TYPES: [&str; 4] = ["person", "group", "no_person", "default_avatar"];

/// The response schema (standard JSON Schema, sent as `responseJsonSchema`).
#[must_use]
pub fn response_schema() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "index": {"type": "integer"},
                "profile_type": {"type": "string", "enum": PROFILE_TYPES},
                "no_person_kind": {"type": "string", "enum": NO_PERSON_KINDS},
                "gender": {"type": "string", "enum": GENDERS},
                "age_bracket": {"type": "string", "enum": BRACKETS},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1}
            },
            "required": ["index", "profile_type", "gender", "age_bracket", "confidence"]
        }
    })
}

#[derive(Debug, thiserror::Error)]
pub enum GeminiError {
    #[error(
        "no Gemini API key: set the {GEMINI_API_KEY_VAR} environment variable (a key from \
         https://aistudio.google.com/apikey), or use the local classifier"
    )]
    MissingKey,
    #[error("Gemini rejected the API key ({0}): check {GEMINI_API_KEY_VAR}")]
    InvalidKey(String),
    #[error("Gemini cannot serve this project ({0}): link a billing account or use a supported region")]
    FailedPrecondition(String),
    #[error(
        "Gemini refused the request ({0}): the key may lack permission, the Generative Language API \
         may not be enabled for its project, or the key was blocked"
    )]
    PermissionDenied(String),
    #[error("Gemini does not know model {model} ({message}): check gemini.model")]
    ModelNotFound { model: String, message: String },
    #[error("Gemini model {0} has no price in gemini.prices: add one, or its cost could not be reported")]
    NoPrice(String),
    #[error("Gemini rejected the request ({0})")]
    InvalidRequest(String),
    #[error(
        "Gemini refuses every picture ({0}): check gemini.model, gemini.api_version and the other \
         [gemini] settings"
    )]
    RefusesEverything(String),
    #[error("Gemini quota exhausted ({0}): wait, raise the project's limits or lower gemini.concurrency")]
    RateLimited(String),
    #[error("Gemini server error {status} ({message}); try again later")]
    Server { status: u16, message: String },
    #[error("cannot reach Gemini: {0}")]
    Transport(String),
    #[error("unexpected answer from Gemini: {0}")]
    Malformed(String),
}

impl GeminiError {
    /// Nothing sent later in the same run can succeed either (a key, project or model problem).
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::MissingKey
                | Self::InvalidKey(_)
                | Self::FailedPrecondition(_)
                | Self::PermissionDenied(_)
                | Self::ModelNotFound { .. }
                | Self::NoPrice(_)
                | Self::RefusesEverything(_)
        )
    }

    /// The service is unavailable for now (after retries): stop sending, keep local results.
    #[must_use]
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::RateLimited(_) | Self::Server { .. } | Self::Transport(_))
    }
}

/// One picture to send.
#[derive(Debug, Clone)]
pub struct InlinePicture {
    pub mime_type: &'static str,
    pub bytes: Vec<u8>,
}

impl InlinePicture {
    /// The picture with its MIME type from its content, or `None` for a format Gemini does
    /// not take (it accepts PNG, JPEG, WebP, HEIC and HEIF).
    #[must_use]
    pub fn sniff(bytes: Vec<u8>) -> Option<Self> {
        let mime_type = match image::guess_format(&bytes).ok()? {
            image::ImageFormat::Jpeg => "image/jpeg",
            image::ImageFormat::Png => "image/png",
            image::ImageFormat::WebP => "image/webp",
            _ => return None,
        };
        Some(Self { mime_type, bytes })
    }
}

/// Token counts from `usageMetadata`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub prompt_tokens: i64,
    pub candidates_tokens: i64,
    pub thoughts_tokens: i64,
    pub total_tokens: i64,
}

impl Usage {
    pub fn add(&mut self, other: &Self) {
        self.prompt_tokens += other.prompt_tokens;
        self.candidates_tokens += other.candidates_tokens;
        self.thoughts_tokens += other.thoughts_tokens;
        self.total_tokens += other.total_tokens;
    }

    /// Cost in billionths of a dollar: prices are per million tokens, so a token costs
    /// `price` micro-dollars, or `price * 1000` nano-dollars. Thinking is billed as output.
    #[must_use]
    pub fn cost_nano_usd(&self, price: &ModelPrice) -> i64 {
        let input = self.prompt_tokens as f64 * price.input;
        let output = (self.candidates_tokens + self.thoughts_tokens) as f64 * price.output;
        ((input + output) * 1000.0).round() as i64
    }
}

/// One request as the ledger records it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RequestRecord {
    pub model: String,
    pub pictures: usize,
    pub usage: Usage,
    pub cost_nano_usd: i64,
    /// `ok`, `blocked:REASON`, `finish:REASON`, `malformed`, `no_candidate`.
    pub outcome: String,
}

/// Gemini's labels for one picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeminiLabel {
    pub profile_type: ProfileType,
    pub no_person_kind: Option<NoPersonKind>,
    pub gender: Option<Gender>,
    pub bracket: Option<Bracket>,
    pub confidence: f32,
}

/// Middle of each bracket, as the point estimate of an age given only its bracket.
const BRACKET_MIDDLE: [f32; 7] = [15.0, 21.0, 29.5, 39.5, 49.5, 59.5, 70.0];

impl GeminiLabel {
    /// The label in the classifier's common result format. Gemini's confidence becomes the
    /// probability of the labels given; the rest is spread evenly over the other answers.
    #[must_use]
    pub fn to_result(&self, model: &str) -> PictureResult {
        let has_face = matches!(self.profile_type, ProfileType::Person | ProfileType::Group);
        let confidence = self.confidence.clamp(0.0, 1.0);
        let gender = has_face.then(|| GenderEstimate {
            label: self.gender,
            p_male: match self.gender {
                Some(Gender::Male) => confidence,
                Some(Gender::Female) => 1.0 - confidence,
                None => 0.5,
            },
            abstain: self.gender.is_none().then_some(Abstain::LowConfidence),
        });
        let age = self.bracket.filter(|_| has_face).map(|bracket| {
            let mut p = [(1.0 - confidence) / 6.0; 7];
            p[bracket.index()] = confidence;
            let years = BRACKET_MIDDLE[bracket.index()];
            AgeEstimate { years, bracket, brackets: BracketProbs(p), raw_expected: years }
        });
        PictureResult {
            model: model.to_owned(),
            profile_type: self.profile_type,
            face_count: match self.profile_type {
                ProfileType::Person => 1,
                // At least two; Gemini is not asked to count.
                ProfileType::Group => 2,
                ProfileType::NoPerson | ProfileType::DefaultAvatar => 0,
            },
            face: None,
            gender,
            age,
            abstain: match self.profile_type {
                ProfileType::DefaultAvatar => Some(Abstain::DefaultAvatar),
                ProfileType::NoPerson => Some(Abstain::NoFace),
                _ => None,
            },
            no_person_kind: self.no_person_kind.filter(|_| self.profile_type == ProfileType::NoPerson),
        }
    }
}

/// Gemini's answer for one picture: labels, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Label(GeminiLabel),
    Abstain(String),
}

/// Answers in input order and every request made for them.
#[derive(Debug, Default)]
pub struct Classified {
    pub answers: Vec<Answer>,
    pub requests: Vec<RequestRecord>,
}

#[derive(Clone)]
pub struct GeminiClient {
    http: reqwest::Client,
    url: String,
    key: SecretString,
    price: ModelPrice,
    settings: GeminiSettings,
}

impl std::fmt::Debug for GeminiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeminiClient").field("url", &self.url).finish_non_exhaustive()
    }
}

/// What one request gave: per-picture answers, or a failure of the whole request.
enum Reply {
    Answers(Vec<Answer>),
    /// The request as a whole gave nothing usable (`reason` says why); a smaller one may.
    Whole(String),
}

impl GeminiClient {
    /// # Errors
    /// Without a key, without a price for the model, or when the HTTP client cannot be built.
    pub fn new(settings: &GeminiSettings, key: Option<&SecretString>) -> Result<Self, GeminiError> {
        let key = key.cloned().ok_or(GeminiError::MissingKey)?;
        let price = settings.price().cloned().ok_or_else(|| GeminiError::NoPrice(settings.model.clone()))?;
        let http = crate::clients::http_client()
            .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .timeout(Duration::from_secs(settings.request_timeout_secs))
            .build()
            .map_err(|e| GeminiError::Transport(e.to_string()))?;
        let url = format!(
            "{}/{}/models/{}:generateContent",
            settings.base_url.trim_end_matches('/'),
            settings.api_version,
            settings.model
        );
        Ok(Self { http, url, key, price, settings: settings.clone() })
    }

    /// The model version stored with every result: the model and the prompt version.
    #[must_use]
    pub fn model_version(&self) -> String {
        format!("gemini/{}/{PROMPT_VERSION}", self.settings.model)
    }

    #[must_use]
    pub fn settings(&self) -> &GeminiSettings {
        &self.settings
    }

    #[must_use]
    pub fn price(&self) -> &ModelPrice {
        &self.price
    }

    /// Prompt tokens a picture can cost before any answer has said: the image at the configured
    /// media resolution (Gemini 3.x: 280, 560 or 1,120 tokens; 2.x: 258, or less at low
    /// resolution) plus its label.
    #[must_use]
    pub fn image_tokens_bound(&self) -> u32 {
        use crate::config::MediaResolution;
        let image = if self.settings.model.starts_with("gemini-2") {
            258
        } else {
            match self.settings.media_resolution {
                MediaResolution::Low => 280,
                MediaResolution::Medium => 560,
                MediaResolution::High => 1120,
            }
        };
        (image + 8).max(self.settings.expected_prompt_tokens_per_picture)
    }

    /// An upper bound of what a request of `pictures` pictures can cost, in nano-dollars:
    /// `prompt_tokens_per_picture` each plus the prompt's text, and every output token allowed.
    #[must_use]
    pub fn cost_bound_nano_usd(&self, pictures: usize, prompt_tokens_per_picture: f64) -> i64 {
        // A token is at least two characters of English text: a generous bound for the prompt.
        let text_tokens = (SYSTEM_INSTRUCTION.len() + 64 * pictures) as f64 / 2.0;
        let input = prompt_tokens_per_picture * pictures as f64 + text_tokens;
        let output = f64::from(self.max_output_tokens(pictures));
        ((input * self.price.input + output * self.price.output) * 1000.0).ceil() as i64
    }

    fn max_output_tokens(&self, pictures: usize) -> u32 {
        self.settings.max_output_tokens_per_picture * pictures as u32 + 16
    }

    /// The request body for `pictures`.
    #[must_use]
    pub fn request_body(&self, pictures: &[&InlinePicture]) -> Value {
        let mut parts = Vec::with_capacity(pictures.len() * 2 + 1);
        for (i, p) in pictures.iter().enumerate() {
            parts.push(json!({"text": format!("Image {i}:")}));
            parts.push(json!({"inline_data": {
                "mime_type": p.mime_type,
                "data": base64::engine::general_purpose::STANDARD.encode(&p.bytes),
            }}));
        }
        parts.push(json!({"text": format!(
            "Return one result per image index, 0 to {}.", pictures.len().saturating_sub(1)
        )}));
        // Gemini 2.x turns thinking off with a zero budget; later models take a level.
        let thinking = if self.settings.model.starts_with("gemini-2") {
            json!({"thinkingBudget": 0})
        } else {
            json!({"thinkingLevel": "MINIMAL"})
        };
        json!({
            "systemInstruction": {"parts": [{"text": SYSTEM_INSTRUCTION}]},
            "contents": [{"role": "user", "parts": parts}],
            "generationConfig": {
                "temperature": 0,
                "maxOutputTokens": self.max_output_tokens(pictures.len()),
                "responseMimeType": "application/json",
                "responseJsonSchema": response_schema(),
                "mediaResolution": self.settings.media_resolution.api_name(),
                "thinkingConfig": thinking,
            }
        })
    }

    /// Classifies `pictures` in one request, splitting it when it fails as a whole.
    ///
    /// # Errors
    /// A fatal error ([`GeminiError::is_fatal`]) or an outage after retries; answers and
    /// requests gathered before it are in `out`.
    pub async fn classify(
        &self,
        pictures: &[InlinePicture],
        spend: &impl Spend,
        out: &mut Classified,
    ) -> Result<(), GeminiError> {
        let start = out.answers.len();
        out.answers.resize(start + pictures.len(), Answer::Abstain(NOT_SENT.into()));
        let indices: Vec<usize> = (0..pictures.len()).collect();
        self.classify_into(pictures, &indices, start, spend, out).await
    }

    /// Classifies `all[i]` for each of `indices`, answers going to `out.answers[offset + i]`.
    async fn classify_into(
        &self,
        all: &[InlinePicture],
        indices: &[usize],
        offset: usize,
        spend: &impl Spend,
        out: &mut Classified,
    ) -> Result<(), GeminiError> {
        // Every request reserves its worst case first; one that does not fit is split, and a
        // single picture that does not fit is left out.
        let Some(reserved) = spend.reserve(indices.len()).await else {
            if indices.len() == 1 {
                out.answers[offset + indices[0]] = Answer::Abstain(OVER_BUDGET.into());
                return Ok(());
            }
            let (first, second) = indices.split_at(indices.len() / 2);
            Box::pin(self.classify_into(all, first, offset, spend, out)).await?;
            return Box::pin(self.classify_into(all, second, offset, spend, out)).await;
        };
        let pictures: Vec<&InlinePicture> = indices.iter().map(|&i| &all[i]).collect();
        let before = out.requests.len();
        let result = self.request(&pictures, &mut out.requests).await;
        spend.settle(reserved, &out.requests[before..]);
        let reply = match result {
            Ok(reply) => reply,
            // The API refused something in the request, perhaps one picture: narrow it down.
            Err(GeminiError::InvalidRequest(message)) => Reply::Whole(format!("{REFUSED}: {message}")),
            Err(e) => return Err(e),
        };
        match reply {
            Reply::Answers(answers) => {
                let mut again = Vec::new();
                for (answer, &i) in answers.into_iter().zip(indices) {
                    if matches!(&answer, Answer::Abstain(r) if r == CUT_OFF) && indices.len() > 1 {
                        again.push(i);
                    }
                    out.answers[offset + i] = answer;
                }
                // Pictures a truncated answer did not reach are asked again, in a smaller request.
                if !again.is_empty() {
                    Box::pin(self.classify_into(all, &again, offset, spend, out)).await?;
                }
                Ok(())
            }
            Reply::Whole(reason) if indices.len() == 1 => {
                out.answers[offset + indices[0]] = Answer::Abstain(reason);
                Ok(())
            }
            Reply::Whole(reason) => {
                tracing::info!(pictures = indices.len(), %reason, "Gemini request failed as a whole; splitting it");
                let (first, second) = indices.split_at(indices.len() / 2);
                Box::pin(self.classify_into(all, first, offset, spend, out)).await?;
                Box::pin(self.classify_into(all, second, offset, spend, out)).await
            }
        }
    }

    /// One request with retries; its ledger record is pushed whenever an answer came back.
    async fn request(
        &self,
        pictures: &[&InlinePicture],
        records: &mut Vec<RequestRecord>,
    ) -> Result<Reply, GeminiError> {
        let body = self.request_body(pictures);
        let response = self.send(&body).await?;
        let text = response.text().await.map_err(|e| GeminiError::Transport(e.without_url().to_string()))?;
        let Ok(mut parsed) = serde_json::from_str::<GenerateResponse>(&text) else {
            records.push(self.record(pictures.len(), Usage::default(), "malformed"));
            return Ok(Reply::Whole(format!("answer is not Gemini's JSON: {}", excerpt(&text))));
        };
        let usage = parsed.usage_metadata.take().map(Usage::from).unwrap_or_default();
        let (outcome, reply) = interpret(&parsed, pictures.len());
        records.push(self.record(pictures.len(), usage, &outcome));
        Ok(reply)
    }

    fn record(&self, pictures: usize, usage: Usage, outcome: &str) -> RequestRecord {
        RequestRecord {
            model: self.settings.model.clone(),
            pictures,
            usage,
            cost_nano_usd: usage.cost_nano_usd(&self.price),
            outcome: outcome.to_owned(),
        }
    }

    async fn send(&self, body: &Value) -> Result<reqwest::Response, GeminiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .http
                .post(&self.url)
                .header("x-goog-api-key", self.key.expose_secret())
                .json(body)
                .send()
                .await;
            let (error, asked_delay) = match result {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let error = ErrorBody::read(response).await;
                    match status {
                        429 => (GeminiError::RateLimited(error.summary()), error.retry_delay()),
                        500 | 502..=504 => (GeminiError::Server { status, message: error.summary() }, None),
                        400 if error.reason() == Some("API_KEY_INVALID") => {
                            return Err(GeminiError::InvalidKey(error.summary()));
                        }
                        400 if error.status.as_deref() == Some("FAILED_PRECONDITION") => {
                            return Err(GeminiError::FailedPrecondition(error.summary()));
                        }
                        401 => return Err(GeminiError::InvalidKey(error.summary())),
                        403 => return Err(GeminiError::PermissionDenied(error.summary())),
                        404 => {
                            return Err(GeminiError::ModelNotFound {
                                model: self.settings.model.clone(),
                                message: error.summary(),
                            });
                        }
                        _ => {
                            return Err(GeminiError::InvalidRequest(format!(
                                "HTTP {status}: {}",
                                error.summary()
                            )));
                        }
                    }
                }
                Err(e) => (GeminiError::Transport(e.without_url().to_string()), None),
            };
            if attempt > self.settings.max_retries {
                return Err(error);
            }
            let cap = Duration::from_secs(self.settings.max_retry_delay_secs);
            // Retrying before the delay Gemini names would only earn another 429.
            if asked_delay.is_some_and(|d| d > cap) {
                return Err(error);
            }
            let delay = asked_delay.unwrap_or_else(|| {
                let base = Duration::from_millis(self.settings.retry_base_ms);
                base.mul_f64(2f64.powi(attempt as i32 - 1) * rand::random_range(1.0..2.0))
            });
            let delay = delay.min(cap);
            tracing::warn!(%error, attempt, retry_in = ?delay, "Gemini request failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

fn excerpt(text: &str) -> String {
    let mut s: String = text.chars().take(120).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: Option<UsageMetadata>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

/// `usageMetadata`, named as the API names it.
#[allow(clippy::struct_field_names)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: i64,
    #[serde(default)]
    candidates_token_count: i64,
    #[serde(default)]
    thoughts_token_count: i64,
    #[serde(default)]
    total_token_count: i64,
}

impl From<UsageMetadata> for Usage {
    fn from(u: UsageMetadata) -> Self {
        Self {
            prompt_tokens: u.prompt_token_count,
            candidates_tokens: u.candidates_token_count,
            thoughts_tokens: u.thoughts_token_count,
            total_tokens: u.total_token_count,
        }
    }
}

/// The ledger outcome and the reply of a 200 answer.
fn interpret(response: &GenerateResponse, pictures: usize) -> (String, Reply) {
    if let Some(reason) = response.prompt_feedback.as_ref().and_then(|f| f.block_reason.as_deref()) {
        return (format!("blocked:{reason}"), Reply::Whole(format!("Gemini blocked the request ({reason})")));
    }
    let Some(candidate) = response.candidates.first() else {
        return ("no_candidate".into(), Reply::Whole("Gemini gave no answer".into()));
    };
    let finish = candidate.finish_reason.as_deref().unwrap_or("STOP");
    let text: String =
        candidate.content.iter().flat_map(|c| &c.parts).filter_map(|p| p.text.as_deref()).collect();
    match finish {
        "STOP" => {}
        // A truncated answer: the complete entries are kept, the others asked again alone.
        "MAX_TOKENS" => {
            let answers = parse_answers(&salvage_objects(&text), pictures);
            let reply = if answers.iter().all(|a| matches!(a, Answer::Abstain(_))) {
                Reply::Whole(CUT_OFF.into())
            } else {
                Reply::Answers(
                    answers
                        .into_iter()
                        .map(|a| match a {
                            Answer::Abstain(_) => Answer::Abstain(CUT_OFF.into()),
                            label @ Answer::Label(_) => label,
                        })
                        .collect(),
                )
            };
            return ("finish:MAX_TOKENS".into(), reply);
        }
        other => {
            return (
                format!("finish:{other}"),
                Reply::Whole(format!("Gemini withheld its answer ({other})")),
            );
        }
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => ("ok".into(), Reply::Answers(parse_answers(&items, pictures))),
        Ok(Value::Object(mut o)) if o.get("results").is_some_and(Value::is_array) => {
            let items = match o.remove("results") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            ("ok".into(), Reply::Answers(parse_answers(&items, pictures)))
        }
        Ok(_) => ("malformed".into(), Reply::Whole("Gemini's answer is not a list of results".into())),
        Err(e) => ("malformed".into(), Reply::Whole(format!("Gemini's answer is not valid JSON ({e})"))),
    }
}

/// The complete top-level objects of a JSON array cut off part-way.
fn salvage_objects(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut start) = (0_i32, false, false, None);
    for (i, c) in text.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => {
                depth += 1;
                if depth == 2 {
                    start = Some(i);
                }
            }
            '[' => depth += 1,
            '}' | ']' => {
                if c == '}'
                    && depth == 2
                    && let Some(s) = start.take()
                    && let Ok(v) = serde_json::from_str(&text[s..=i])
                {
                    out.push(v);
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    out
}

/// One answer per picture from the items of the answer: a picture without exactly one valid
/// item abstains, with the reason.
fn parse_answers(items: &[Value], pictures: usize) -> Vec<Answer> {
    let mut answers: Vec<Option<Answer>> = vec![None; pictures];
    for item in items {
        let Some(index) = item.get("index").and_then(Value::as_u64).map(|i| i as usize) else { continue };
        let Some(slot) = answers.get_mut(index) else { continue };
        *slot = Some(match slot {
            None => parse_label(item).map_or_else(Answer::Abstain, Answer::Label),
            Some(_) => Answer::Abstain("Gemini answered this picture twice".into()),
        });
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Answer::Abstain("missing from Gemini's answer".into())))
        .collect()
}

fn parse_label(item: &Value) -> Result<GeminiLabel, String> {
    let field = |name: &str| item.get(name).and_then(Value::as_str);
    let invalid = |name: &str| {
        format!(
            "Gemini gave an invalid {name}: {}",
            item.get(name).map_or("nothing".into(), Value::to_string)
        )
    };
    let profile_type = match field("profile_type") {
        Some("person") => ProfileType::Person,
        Some("group") => ProfileType::Group,
        Some("no_person") => ProfileType::NoPerson,
        Some("default_avatar") => ProfileType::DefaultAvatar,
        _ => return Err(invalid("profile_type")),
    };
    let gender = match field("gender") {
        Some("female") => Some(Gender::Female),
        Some("male") => Some(Gender::Male),
        Some("unknown") => None,
        _ => return Err(invalid("gender")),
    };
    let bracket = match field("age_bracket") {
        Some("unknown") => None,
        Some(label) => Some(
            Bracket::ALL.into_iter().find(|b| b.label() == label).ok_or_else(|| invalid("age_bracket"))?,
        ),
        None => return Err(invalid("age_bracket")),
    };
    let no_person_kind = match field("no_person_kind") {
        None | Some("none") => None,
        Some(label) => Some(
            NoPersonKind::ALL
                .into_iter()
                .find(|k| k.label() == label)
                .ok_or_else(|| invalid("no_person_kind"))?,
        ),
    };
    let confidence = item
        .get("confidence")
        .and_then(Value::as_f64)
        .filter(|c| (0.0..=1.0).contains(c))
        .ok_or_else(|| invalid("confidence"))? as f32;
    Ok(GeminiLabel { profile_type, no_person_kind, gender, bracket, confidence })
}

/// Gemini's error body: `{"error": {"code", "message", "status", "details": [...]}}`.
#[derive(Debug, Default)]
struct ErrorBody {
    message: String,
    status: Option<String>,
    details: Vec<Value>,
}

impl ErrorBody {
    async fn read(response: reqwest::Response) -> Self {
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => Self {
                message: v["error"]["message"].as_str().unwrap_or_default().to_owned(),
                status: v["error"]["status"].as_str().map(str::to_owned),
                details: v["error"]["details"].as_array().cloned().unwrap_or_default(),
            },
            Err(_) => Self { message: excerpt(&text), ..Self::default() },
        }
    }

    fn summary(&self) -> String {
        match &self.status {
            Some(status) => format!("{status}: {}", self.message),
            None => self.message.clone(),
        }
    }

    fn reason(&self) -> Option<&str> {
        self.details.iter().find_map(|d| d["reason"].as_str())
    }

    /// `RetryInfo.retryDelay` ("42s", "1.5s").
    fn retry_delay(&self) -> Option<Duration> {
        self.details
            .iter()
            .find(|d| d["@type"].as_str().is_some_and(|t| t.ends_with("google.rpc.RetryInfo")))
            .and_then(|d| d["retryDelay"].as_str())
            .and_then(|s| s.strip_suffix('s'))
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_arrays_keep_their_complete_objects() {
        let text = r#"[{"index":0,"gender":"fe\"}male"},{"index":1,"x":[1,2]},{"index":2,"gend"#;
        let objects = salvage_objects(text);
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1]["index"], 1);
    }

    #[test]
    fn answers_check_every_field_and_index() {
        let ok = json!({"index": 0, "profile_type": "person", "gender": "female", "age_bracket": "25-34", "confidence": 0.9});
        let items = vec![
            ok.clone(),
            json!({"index": 1, "profile_type": "person", "gender": "robot", "age_bracket": "25-34", "confidence": 0.9}),
            json!({"index": 2, "profile_type": "person", "gender": "male", "age_bracket": "25-34", "confidence": 0.9}),
            json!({"index": 2, "profile_type": "person", "gender": "male", "age_bracket": "25-34", "confidence": 0.9}),
            json!({"index": 9, "profile_type": "person", "gender": "male", "age_bracket": "25-34", "confidence": 0.9}),
            json!({"index": 4, "profile_type": "no_person", "no_person_kind": "pet", "gender": "unknown", "age_bracket": "unknown", "confidence": 1.5}),
        ];
        let answers = parse_answers(&items, 5);
        assert!(matches!(answers[0], Answer::Label(GeminiLabel { gender: Some(Gender::Female), .. })));
        assert!(matches!(&answers[1], Answer::Abstain(r) if r.contains("gender") && r.contains("robot")));
        assert!(matches!(&answers[2], Answer::Abstain(r) if r.contains("twice")));
        assert!(matches!(&answers[3], Answer::Abstain(r) if r.contains("missing")));
        assert!(matches!(&answers[4], Answer::Abstain(r) if r.contains("confidence")));
    }

    #[test]
    fn labels_become_results_with_probabilities() {
        let label = GeminiLabel {
            profile_type: ProfileType::Person,
            no_person_kind: Some(NoPersonKind::Pet),
            gender: Some(Gender::Female),
            bracket: Some(Bracket::From25),
            confidence: 0.94,
        };
        let r = label.to_result("gemini/x/p1");
        assert_eq!(r.gender_label(), Some(Gender::Female));
        assert!((r.gender.map(|g| g.p_male).unwrap_or_default() - 0.06).abs() < 1e-6);
        assert_eq!(r.bracket(), Some(Bracket::From25));
        let total: f32 = r.age.map(|a| a.brackets.0.iter().sum()).unwrap_or_default();
        assert!((total - 1.0).abs() < 1e-5);
        assert_eq!(r.no_person_kind, None, "a kind only for no_person");
        let unknown = GeminiLabel { gender: None, bracket: None, ..label }.to_result("m");
        assert_eq!(unknown.gender.and_then(|g| g.abstain), Some(Abstain::LowConfidence));
        assert!(unknown.age.is_none());
    }

    #[test]
    fn cost_is_tokens_times_price() {
        let price = ModelPrice { model: "m".into(), input: 0.10, output: 0.40 };
        let usage =
            Usage { prompt_tokens: 1000, candidates_tokens: 100, thoughts_tokens: 50, total_tokens: 1150 };
        // 1000 x 0.10 + 150 x 0.40 = 160 micro-dollars.
        assert_eq!(usage.cost_nano_usd(&price), 160_000);
    }
}
