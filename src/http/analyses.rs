//! Analyses: start one for an account, follow its progress, list, cancel.

// utoipa's `path` macro re-emits a local `IntoParams` type with its module path.
#![allow(unused_qualifications)]

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::AuthUser;
use super::error::ApiError;
use super::pagination::{Page, PageQuery};
use crate::accounts;
use crate::analyses::{self, Analysis};
use crate::app::AppState;
use crate::jobs::pipeline;

#[derive(Debug, Serialize, ToSchema)]
pub struct AnalysisView {
    pub id: i64,
    pub account_id: i64,
    /// queued, running, succeeded, failed or cancelled.
    pub status: String,
    /// `scrape`, `fetch_pictures`, `classify`, `aggregate` or `done`.
    pub stage: String,
    pub classifier: String,
    /// Counts per stage (posts found, comments stored, pictures fetched, classified...).
    #[schema(value_type = Object)]
    pub progress: serde_json::Value,
    /// Why it failed.
    pub error: Option<String>,
    pub cost_usd: f64,
    pub has_result: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<Analysis> for AnalysisView {
    fn from(a: Analysis) -> Self {
        Self {
            id: a.id,
            account_id: a.tracked_account_id,
            status: a.status,
            stage: a.stage,
            classifier: a.classifier,
            progress: a.progress,
            error: a.error,
            cost_usd: a.cost_micro_usd as f64 / 1e6,
            has_result: a.snapshot.is_some(),
            created_at: a.created_at,
            started_at: a.started_at,
            finished_at: a.finished_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NewAnalysis {
    /// local (default), gemini or cascade.
    pub classifier: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AnalysisQuery {
    /// Only this account's analyses.
    pub account_id: Option<i64>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Items per page (1-500, default 50).
    pub limit: Option<i64>,
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such analysis".into())
}

/// Starts an analysis of one of the caller's accounts.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/analyses", params(("id" = i64, Path)), request_body = NewAnalysis,
    responses((status = 202, body = AnalysisView), (status = 404), (status = 409)), security(("bearer" = [])), tag = "analyses")]
#[post("/accounts/{id}/analyses")]
pub async fn start(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = super::read_body(payload, state.config.settings.server.max_body_bytes).await?;
    // No body means the defaults; a body that does not parse is refused, never ignored.
    let body: NewAnalysis = if body.iter().all(u8::is_ascii_whitespace) {
        NewAnalysis::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?
    };
    let classifier = classifier_choice(&state, body.classifier)?;
    // A scrape needs Apify: refused up front rather than failing in its first job.
    if state.clients.apify.is_none() {
        return Err(ApiError::BadRequest(format!(
            "this server has no Apify token ({}), so it cannot scrape: upload export files instead \
             (POST /api/v1/accounts/{{id}}/imports)",
            crate::config::APIFY_TOKEN_VAR
        )));
    }
    let mut conn = state.pool.get().await?;
    let account = accounts::get_user_account(&mut conn, user.id, *id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such account".into()))?;
    // Checked and started under the account's lock: two requests at once start one analysis.
    let analysis = pipeline::start_unless_running(
        &mut conn,
        &state.config,
        &account,
        &classifier,
        pipeline::Begin::Scrape,
    )
    .await?
    .map_err(|running| {
        ApiError::Conflict(format!("analysis {} of this account is still running", running.id))
    })?;
    Ok(HttpResponse::Accepted().json(AnalysisView::from(analysis)))
}

/// The classifier asked for (`local` when none), if this server can run it.
pub(super) fn classifier_choice(state: &AppState, asked: Option<String>) -> Result<String, ApiError> {
    let classifier = asked.unwrap_or_else(|| "local".to_owned());
    if !matches!(classifier.as_str(), "local" | "gemini" | "cascade") {
        return Err(ApiError::BadRequest("classifier must be local, gemini or cascade".into()));
    }
    if classifier != "local" && state.config.secrets.gemini_api_key.is_none() {
        return Err(ApiError::BadRequest(format!(
            "classifier {classifier} needs Gemini: set {} in the server's environment, or use local",
            crate::config::GEMINI_API_KEY_VAR
        )));
    }
    Ok(classifier)
}

/// The caller's analyses, newest first.
#[utoipa::path(get, path = "/api/v1/analyses", params(AnalysisQuery),
    responses((status = 200, body = Page<AnalysisView>)), security(("bearer" = [])), tag = "analyses")]
#[get("/analyses")]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<AnalysisQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let (limit, before) = PageQuery { cursor: query.cursor, limit: query.limit }.parse()?;

    let rows = analyses::list_user_analyses(
        &mut *state.pool.get().await?,
        user.id,
        query.account_id,
        before.unwrap_or(i64::MAX),
        limit + 1,
    )
    .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows.into_iter().map(AnalysisView::from).collect(),
        limit,
        |a| a.id,
    )))
}

/// One analysis with its live progress.
#[utoipa::path(get, path = "/api/v1/analyses/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = AnalysisView), (status = 404)), security(("bearer" = [])), tag = "analyses")]
#[get("/analyses/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let a = analyses::get_user_analysis(&mut *state.pool.get().await?, user.id, *id)
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(AnalysisView::from(a)))
}

/// Cancels an unfinished analysis (the stage under way completes; nothing further runs).
#[utoipa::path(post, path = "/api/v1/analyses/{id}/cancel", params(("id" = i64, Path)),
    responses((status = 200, body = AnalysisView), (status = 404), (status = 409)), security(("bearer" = [])), tag = "analyses")]
#[post("/analyses/{id}/cancel")]
pub async fn cancel(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    match analyses::cancel_user_analysis(&mut conn, user.id, *id).await? {
        None => Err(not_found()),
        Some(false) => Err(ApiError::Conflict("the analysis has already finished".into())),
        Some(true) => {
            let a = analyses::get_user_analysis(&mut conn, user.id, *id).await?.ok_or_else(not_found)?;
            // Pictures fetched for it will not be classified for it: their bytes go now (a fetch
            // under way releases what it fetched when it ends).
            if let Err(error) =
                crate::insights::classify::release_account(&mut conn, a.tracked_account_id).await
            {
                tracing::error!(%error, analysis_id = a.id, "releasing the pictures of a cancelled analysis failed");
            }
            Ok(HttpResponse::Ok().json(AnalysisView::from(a)))
        }
    }
}

/// Retries a failed analysis from the stage that failed (work already done is kept).
#[utoipa::path(post, path = "/api/v1/analyses/{id}/retry", params(("id" = i64, Path)),
    responses((status = 202, body = AnalysisView), (status = 404), (status = 409)), security(("bearer" = [])), tag = "analyses")]
#[post("/analyses/{id}/retry")]
pub async fn retry(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    match analyses::retry_user_analysis(&mut conn, user.id, *id).await? {
        analyses::Retry::NotFound => Err(not_found()),
        analyses::Retry::NotFailed => Err(ApiError::Conflict("only a failed analysis can be retried".into())),
        analyses::Retry::NoStageJob => Err(ApiError::Conflict(
            "its failed stage job has been deleted (finished jobs are kept queue.finished_retention_hours): \
             start a new analysis instead"
                .into(),
        )),
        analyses::Retry::Busy(other) => {
            Err(ApiError::Conflict(format!("analysis {other} of this account is still running")))
        }
        analyses::Retry::Reopened => {
            let a = analyses::get_user_analysis(&mut conn, user.id, *id).await?.ok_or_else(not_found)?;
            Ok(HttpResponse::Accepted().json(AnalysisView::from(a)))
        }
    }
}
