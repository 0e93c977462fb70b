//! Operator endpoints (admins only): data-subject requests about an Instagram user.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::AuthUser;
use super::error::ApiError;
use crate::accounts::InstagramHandle;
use crate::app::AppState;
use crate::privacy::erase;

fn require_admin(user: AuthUser) -> Result<(), ApiError> {
    if user.is_admin { Ok(()) } else { Err(ApiError::Forbidden("this needs an administrator".into())) }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// The Instagram username of the person to erase.
    pub handle: String,
}

/// Erases everything about an Instagram user across all tenants, and keeps it erased.
#[utoipa::path(post, path = "/api/v1/admin/erasures", request_body = ErasureRequest,
    responses((status = 200, body = Object), (status = 403)), security(("bearer" = [])), tag = "admin")]
#[post("/admin/erasures")]
pub async fn erase_person(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<ErasureRequest>,
) -> Result<HttpResponse, ApiError> {
    require_admin(user)?;
    let handle = InstagramHandle::parse(&body.handle).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let report = erase::erase(
        &mut *state.pool.get().await?,
        &state.privacy,
        handle.as_str(),
        &format!("user:{}", user.id),
    )
    .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Everything held about an Instagram user (an access request).
#[utoipa::path(get, path = "/api/v1/admin/people/{handle}", params(("handle" = String, Path)),
    responses((status = 200, body = Object), (status = 403)), security(("bearer" = [])), tag = "admin")]
#[get("/admin/people/{handle}")]
pub async fn export_person(
    state: web::Data<AppState>,
    user: AuthUser,
    handle: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_admin(user)?;
    let handle = InstagramHandle::parse(&handle).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let data = erase::access_export(
        &mut *state.pool.get().await?,
        &state.privacy,
        handle.as_str(),
        &format!("user:{}", user.id),
    )
    .await?;
    Ok(HttpResponse::Ok().json(data))
}
