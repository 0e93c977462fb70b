//! Who is calling: the `AuthUser` extractor (a JWT or an API key in `Authorization: Bearer`),
//! and the auth endpoints: register, login, refresh, API keys.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, delete, get, post, web};
use actix_web_httpauth::extractors::bearer::BearerAuth;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::limits::RateLimits;
use crate::app::AppState;
use crate::users::tokens::Session;
use crate::users::{self, Email, api_keys, password};

/// An authenticated caller. Every query a handler runs is scoped to `id`.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub id: i64,
    pub is_admin: bool,
    /// The login behind a token; `None` for an API key.
    pub session: Option<Session>,
}

/// The client address: the peer, or, when configured to trust a proxy, the address that proxy
/// saw, which it appended last to `X-Forwarded-For` (entries before it are the client's to
/// write).
#[must_use]
pub fn client_ip(req: &HttpRequest, limits: &RateLimits) -> IpAddr {
    let forwarded = limits
        .trust_forwarded_for
        .then(|| req.headers().get("x-forwarded-for")?.to_str().ok()?.rsplit(',').next()?.trim().parse().ok())
        .flatten();
    forwarded.or_else(|| req.peer_addr().map(|a| a.ip())).unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

impl FromRequest for AuthUser {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bearer = BearerAuth::from_request(req, payload).into_inner();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let limits = req.app_data::<web::Data<RateLimits>>().cloned();
        Box::pin(async move {
            let (Ok(bearer), Some(state)) = (bearer, state) else {
                return Err(ApiError::Unauthorized.into());
            };
            let token = bearer.token();
            let (user_id, session) = if token.starts_with(api_keys::KEY_PREFIX) {
                let mut conn = state.pool.get().await.map_err(ApiError::from)?;
                (api_keys::user_for_key(&mut conn, token).await.map_err(ApiError::from)?, None)
            } else {
                let session = state.tokens.verify(token);
                (session.map(|s| s.user_id), session)
            };
            let Some(id) = user_id else { return Err(ApiError::Unauthorized.into()) };
            // A deleted user's token dies with the user (within the cache's few seconds).
            let is_admin = if let Some(is_admin) = state.known_users.get(id) {
                is_admin
            } else {
                let mut conn = state.pool.get().await.map_err(ApiError::from)?;
                let Some(is_admin) = users::is_admin(&mut conn, id).await.map_err(ApiError::from)? else {
                    return Err(ApiError::Unauthorized.into());
                };
                state.known_users.put(id, is_admin);
                is_admin
            };
            if let Some(limits) = limits {
                limits.check_user(id)?;
            }
            Ok(Self { id, is_admin, session })
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserCreated {
    pub id: i64,
    pub email: String,
}

/// Creates an account (when registration is open).
#[utoipa::path(post, path = "/api/v1/auth/register", request_body = Credentials,
    responses((status = 201, body = UserCreated), (status = 400), (status = 409)), tag = "auth")]
#[post("/auth/register")]
pub async fn register(
    state: web::Data<AppState>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    if !state.config.settings.auth.allow_registration {
        return Err(ApiError::Forbidden("registration is closed on this server".into()));
    }
    let email = Email::parse(&body.email).map_err(ApiError::BadRequest)?;
    if body.password.chars().count() < password::MIN_PASSWORD_CHARS {
        return Err(ApiError::BadRequest(format!(
            "the password must have at least {} characters",
            password::MIN_PASSWORD_CHARS
        )));
    }
    let hash = password::hash_password(SecretString::from(body.password.clone())).await?;
    let mut conn = state.pool.get().await?;
    match users::create_user(&mut conn, &email, &hash, false).await? {
        Some(id) => Ok(HttpResponse::Created().json(UserCreated { id, email: email.as_str().to_owned() })),
        None => Err(ApiError::Conflict("an account with this email exists".into())),
    }
}

/// Exchanges email and password for an access token.
#[utoipa::path(post, path = "/api/v1/auth/login", request_body = Credentials,
    responses((status = 200, body = TokenResponse), (status = 401), (status = 429)), tag = "auth")]
#[post("/auth/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    limits: web::Data<RateLimits>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email);
    // Counted per address as stored (trimmed, lower case), so spellings of one address share a
    // budget; all unreadable addresses share one.
    limits.check_login(client_ip(&req, &limits), email.as_ref().map_or("", Email::as_str))?;
    let found = match email {
        Ok(email) => users::credentials(&mut *state.pool.get().await?, &email).await?,
        Err(_) => None,
    };
    // Unknown emails cost the same hash check, so timing does not tell which emails exist.
    let hash = found.as_ref().map_or_else(|| password::DUMMY_HASH.to_owned(), |c| c.password_hash.clone());
    let ok = password::verify_password(SecretString::from(body.password.clone()), hash).await;
    match found {
        Some(user) if ok => token_response(&state, user.id),
        _ => Err(ApiError::Unauthorized),
    }
}

fn token_response(state: &AppState, user_id: i64) -> Result<HttpResponse, ApiError> {
    let (access_token, expires_at) = state.tokens.issue(user_id).map_err(anyhow::Error::from)?;
    Ok(HttpResponse::Ok().json(TokenResponse { access_token, token_type: "Bearer", expires_at }))
}

/// A fresh token in the same login session, while it is younger than `auth.max_session_hours`
/// (then 401: log in again). An API key needs no token: send the key itself.
#[utoipa::path(post, path = "/api/v1/auth/refresh",
    responses((status = 200, body = TokenResponse), (status = 400), (status = 401)),
    security(("bearer" = [])), tag = "auth")]
#[post("/auth/refresh")]
pub async fn refresh(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let Some(session) = user.session else {
        return Err(ApiError::BadRequest(
            "an API key is the credential itself: send it with each request (tokens come from /auth/login)"
                .into(),
        ));
    };
    let Some((access_token, expires_at)) = state.tokens.refresh(session).map_err(anyhow::Error::from)? else {
        return Err(ApiError::Unauthorized);
    };
    Ok(HttpResponse::Ok().json(TokenResponse { access_token, token_type: "Bearer", expires_at }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewApiKey {
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    /// Shown once: store it now, it cannot be retrieved later.
    pub key: String,
    #[serde(flatten)]
    pub info: api_keys::ApiKeyInfo,
}

/// Creates an API key for scripts; the key is in this answer only.
#[utoipa::path(post, path = "/api/v1/api-keys", request_body = NewApiKey,
    responses((status = 201, body = ApiKeyCreated)), security(("bearer" = [])), tag = "auth")]
#[post("/api-keys")]
pub async fn create_api_key(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<NewApiKey>,
) -> Result<HttpResponse, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest("name must have 1 to 100 characters".into()));
    }
    let (key, info) = api_keys::create_key(&mut *state.pool.get().await?, user.id, name).await?;
    Ok(HttpResponse::Created().json(ApiKeyCreated { key, info }))
}

/// The caller's API keys (never the keys themselves).
#[utoipa::path(get, path = "/api/v1/api-keys", responses((status = 200, body = [api_keys::ApiKeyInfo])),
    security(("bearer" = [])), tag = "auth")]
#[get("/api-keys")]
pub async fn list_api_keys(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(api_keys::list_keys(&mut *state.pool.get().await?, user.id).await?))
}

/// Revokes one of the caller's API keys.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", params(("id" = i64, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])), tag = "auth")]
#[delete("/api-keys/{id}")]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    if api_keys::revoke_key(&mut *state.pool.get().await?, user.id, id.into_inner()).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("no such API key".into()))
    }
}
