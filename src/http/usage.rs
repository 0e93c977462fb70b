//! The caller's Gemini spending, from the cost ledger: in all, per tracked account and per
//! analysis.

use actix_web::{HttpResponse, get, web};

use super::auth::AuthUser;
use super::error::ApiError;
use crate::app::AppState;
use crate::cascade::ledger::{self, UsageReport};

/// Gemini requests, tokens and cost (in billionths of a dollar) of the caller: in all, per
/// tracked account and for the 100 latest analyses that used Gemini.
#[utoipa::path(get, path = "/api/v1/usage", responses((status = 200, body = UsageReport)),
    security(("bearer" = [])), tag = "usage")]
#[get("/usage")]
pub async fn usage(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let report = ledger::usage(&mut *state.pool.get().await?, user.id, 100).await?;
    Ok(HttpResponse::Ok().json(report))
}
