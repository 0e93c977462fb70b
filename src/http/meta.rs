//! What a client needs to know about this server before it asks for anything (which
//! classifiers and services it can use, its upload limits), and the methodology behind every
//! number: the calibrations in use and the privacy notice for the people analysed.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::app::AppState;
use crate::config::{APIFY_TOKEN_VAR, GEMINI_API_KEY_VAR};

/// The privacy notice (`PRIVACY.md`), served to the dashboard's methodology page.
const PRIVACY_NOTICE: &str = include_str!("../../PRIVACY.md");

#[derive(Debug, Serialize, ToSchema)]
pub struct Capability {
    pub name: String,
    pub available: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerInfo {
    pub version: &'static str,
    /// Anyone may register.
    pub registration_open: bool,
    /// Scraping through Apify (without it, analyses come from uploaded export files).
    pub scraping: Capability,
    /// `local`, `gemini` and `cascade`.
    pub classifiers: Vec<Capability>,
    pub max_upload_file_bytes: u64,
    pub max_upload_files: usize,
}

/// This server's capabilities and limits (no sign-in needed).
#[utoipa::path(get, path = "/api/v1/server", responses((status = 200, body = ServerInfo)), tag = "meta")]
#[get("/server")]
pub async fn server(state: web::Data<AppState>) -> HttpResponse {
    let gemini = state.config.secrets.gemini_api_key.is_some();
    let no_gemini = format!("the server has no Gemini key ({GEMINI_API_KEY_VAR})");
    let classifier = |name: &str, needs_gemini: bool| Capability {
        name: name.to_owned(),
        available: !needs_gemini || gemini,
        reason: (needs_gemini && !gemini).then(|| no_gemini.clone()),
    };
    let apify = state.clients.apify.is_some();
    HttpResponse::Ok().json(ServerInfo {
        version: env!("CARGO_PKG_VERSION"),
        registration_open: state.config.settings.auth.allow_registration,
        scraping: Capability {
            name: "apify".into(),
            available: apify,
            reason: (!apify)
                .then(|| format!("the server has no Apify token ({APIFY_TOKEN_VAR}): upload export files")),
        },
        classifiers: vec![
            classifier("local", false),
            classifier("gemini", true),
            classifier("cascade", true),
        ],
        max_upload_file_bytes: state.config.settings.import.max_file_bytes,
        max_upload_files: state.config.settings.import.max_files,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Methodology {
    /// The calibrations analyses are corrected with: each classifier's measured confusion
    /// matrices (counts of true class by predicted outcome), with the data set they were
    /// measured on.
    #[schema(value_type = Vec<Object>)]
    pub calibrations: Vec<serde_json::Value>,
    /// What is never inferred, whatever the data.
    pub never_inferred: Vec<&'static str>,
    /// The privacy notice for the people analysed (Markdown).
    pub privacy_notice: &'static str,
}

/// The methodology behind the numbers (no sign-in needed).
#[utoipa::path(get, path = "/api/v1/methodology", responses((status = 200, body = Methodology)), tag = "meta")]
#[get("/methodology")]
pub async fn methodology(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let calibrations = crate::cascade::calibrations(&state.config)
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::from)?;
    Ok(HttpResponse::Ok().json(Methodology {
        calibrations,
        never_inferred: vec![
            "ethnicity or race",
            "religion",
            "health",
            "political opinions",
            "sexual orientation",
        ],
        privacy_notice: PRIVACY_NOTICE,
    }))
}
