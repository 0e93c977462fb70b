//! Share links: an owner creates a read-only, expiring, revocable link to one account's latest
//! report; whoever holds it reads that report without an account (and nothing else: no
//! commenter, no other account, no history).

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::AuthUser;
use super::error::ApiError;
use crate::accounts::share_links::{self, MAX_DAYS, ShareLink};
use crate::app::AppState;
use crate::insights::read;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShareLink {
    /// Days the link works (1 to 365; default 30).
    #[schema(minimum = 1, maximum = 365)]
    pub days: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShareLinkCreated {
    /// Shown once: the token cannot be retrieved later.
    pub token: String,
    /// The dashboard's address of the shared report, relative to the server.
    pub path: String,
    #[serde(flatten)]
    pub link: ShareLink,
}

/// Creates a read-only link to the account's latest report.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/share-links", params(("id" = i64, Path)), request_body = NewShareLink,
    responses((status = 201, body = ShareLinkCreated), (status = 400), (status = 404)), security(("bearer" = [])), tag = "sharing")]
#[post("/accounts/{id}/share-links")]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<NewShareLink>,
) -> Result<HttpResponse, ApiError> {
    let days = body.days.unwrap_or(30);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::BadRequest(format!("days must be between 1 and {MAX_DAYS}")));
    }
    let (token, link) = share_links::create(&mut *state.pool.get().await?, user.id, *id, days)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such account".into()))?;
    let path = format!("/#/shared/{token}");
    Ok(HttpResponse::Created().json(ShareLinkCreated { token, path, link }))
}

/// The account's share links (never their tokens).
#[utoipa::path(get, path = "/api/v1/accounts/{id}/share-links", params(("id" = i64, Path)),
    responses((status = 200, body = [ShareLink]), (status = 404)), security(("bearer" = [])), tag = "sharing")]
#[get("/accounts/{id}/share-links")]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    if crate::accounts::get_user_account(&mut conn, user.id, *id).await?.is_none() {
        return Err(ApiError::NotFound("no such account".into()));
    }
    Ok(HttpResponse::Ok().json(share_links::list(&mut conn, user.id, *id).await?))
}

/// Revokes a share link: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/share-links/{id}", params(("id" = i64, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])), tag = "sharing")]
#[delete("/share-links/{id}")]
pub async fn revoke(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    if share_links::revoke(&mut *state.pool.get().await?, user.id, *id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("no such live share link".into()))
    }
}

/// The report a share link opens: the account's handle and latest audience snapshot (no
/// sign-in; 404 once the link expires or is revoked).
#[utoipa::path(get, path = "/api/v1/shared/{token}", params(("token" = String, Path)),
    responses((status = 200, description = "{handle, expires_at, snapshot}"), (status = 404)), tag = "sharing")]
#[get("/shared/{token}")]
pub async fn open(state: web::Data<AppState>, token: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let gone = || ApiError::NotFound("this link has expired, was revoked, or never existed".into());
    if token.len() > 100 {
        return Err(gone());
    }
    let mut conn = state.read_pool.get().await?;
    let link = share_links::resolve(&mut conn, &token).await?.ok_or_else(gone)?;
    let (handle, snapshot) = read::shared_snapshot(&mut conn, link.account_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("this account has no completed analysis yet".into()))?;
    let handle = serde_json::to_string(&handle).map_err(anyhow::Error::from)?;
    let expires = serde_json::to_string(&link.expires_at).map_err(anyhow::Error::from)?;
    // The stored snapshot is served as it is, never re-serialised.
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(format!("{{\"handle\":{handle},\"expires_at\":{expires},\"snapshot\":{snapshot}}}")))
}
