//! Who is calling: the `AuthUser` extractor (a JWT or an API key in `Authorization: Bearer`,
//! or the dashboard's session cookie), and the auth endpoints: register, login, the
//! dashboard's session, logout, password change, refresh, API keys.

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
use crate::users::{self, Email, api_keys, password, sessions};

/// An authenticated caller. Every query a handler runs is scoped to `id`.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub id: i64,
    pub is_admin: bool,
    /// The login behind a token; `None` for an API key or the dashboard's cookie.
    pub session: Option<Session>,
    /// The login's session row (a token's or the cookie's); `None` for an API key.
    pub session_id: Option<uuid::Uuid>,
}

/// The dashboard's session cookie: an `HttpOnly`, `SameSite=Strict` random secret, so a script
/// on the page cannot read it and other sites cannot send it.
pub const SESSION_COOKIE: &str = "al_session";

/// The header the dashboard sends with every request: a cookie-authenticated request that
/// changes anything must carry it (a form on another site cannot set it).
pub const DASHBOARD_HEADER: &str = "x-requested-with";
const DASHBOARD_HEADER_VALUE: &str = "audiencelens";

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
        let cookie = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        let safe = req.method().is_safe();
        let from_dashboard = req
            .headers()
            .get(DASHBOARD_HEADER)
            .is_some_and(|v| v.as_bytes() == DASHBOARD_HEADER_VALUE.as_bytes());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let limits = req.app_data::<web::Data<RateLimits>>().cloned();
        Box::pin(async move {
            let Some(state) = state else { return Err(ApiError::Unauthorized.into()) };
            let max_age = state.tokens.max_session();
            // One query per request: an ended session, a deleted user or a changed role takes
            // effect at once, on every process.
            let mut conn = state.pool.get().await.map_err(ApiError::from)?;
            let caller = match (bearer, cookie) {
                (Ok(bearer), _) if bearer.token().starts_with(api_keys::KEY_PREFIX) => {
                    api_keys::user_for_key(&mut conn, bearer.token())
                        .await
                        .map_err(ApiError::from)?
                        .map(|(id, is_admin)| Self { id, is_admin, session: None, session_id: None })
                }
                (Ok(bearer), _) => match state.tokens.verify(bearer.token()) {
                    Some(session) => sessions::token_session(&mut conn, session.sid, max_age)
                        .await
                        .map_err(ApiError::from)?
                        .filter(|live| live.user_id == session.user_id)
                        .map(|live| Self {
                            id: live.user_id,
                            is_admin: live.is_admin,
                            session: Some(session),
                            session_id: Some(live.id),
                        }),
                    None => None,
                },
                (Err(_), Some(secret)) => {
                    let live = sessions::cookie_session(&mut conn, &secret, max_age)
                        .await
                        .map_err(ApiError::from)?;
                    if live.is_some() && !safe && !from_dashboard {
                        return Err(ApiError::Forbidden(format!(
                            "a request that changes something with the session cookie must carry the header \
                             {DASHBOARD_HEADER}: {DASHBOARD_HEADER_VALUE}"
                        ))
                        .into());
                    }
                    live.map(|live| Self {
                        id: live.user_id,
                        is_admin: live.is_admin,
                        session: None,
                        session_id: Some(live.id),
                    })
                }
                (Err(_), None) => None,
            };
            drop(conn);
            let Some(caller) = caller else { return Err(ApiError::Unauthorized.into()) };
            if let Some(limits) = limits {
                limits.check_user(caller.id)?;
            }
            Ok(caller)
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

/// The answer to a registration, the same whether the address was free or not.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub email: String,
    pub message: &'static str,
}

/// Creates an account (when registration is open). The answer is the same whether the address
/// already had an account or not (and the password is hashed either way), so that it does not
/// tell who has one: sign in next. Counted against the login quota (argon2 costs CPU).
#[utoipa::path(post, path = "/api/v1/auth/register", request_body = Credentials,
    responses((status = 202, body = Registered), (status = 400), (status = 403), (status = 429)), tag = "auth")]
#[post("/auth/register")]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    limits: web::Data<RateLimits>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    if !state.config.settings.auth.allow_registration {
        return Err(ApiError::Forbidden("registration is closed on this server".into()));
    }
    limits.check_register(client_ip(&req, &limits))?;
    let email = Email::parse(&body.email).map_err(ApiError::BadRequest)?;
    password::check_new_password(&body.password).map_err(ApiError::BadRequest)?;
    let hash = password::hash_password(SecretString::from(body.password.clone())).await?;
    let mut conn = state.pool.get().await?;
    // `None`: the address has an account already; nothing is sent anywhere about it.
    let _created = users::create_user(&mut conn, &email, &hash, false).await?;
    Ok(HttpResponse::Accepted().json(Registered {
        email: email.as_str().to_owned(),
        message: "if this address had no account, it has one now: sign in with it",
    }))
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
    let user = check_password(&req, &state, &limits, &body).await?;
    let (sid, _) = sessions::open(&mut *state.pool.get().await?, user.id, sessions::Kind::Token).await?;
    let (access_token, expires_at) = state.tokens.issue(user.id, sid).map_err(anyhow::Error::from)?;
    Ok(HttpResponse::Ok().json(TokenResponse { access_token, token_type: "Bearer", expires_at }))
}

/// Checks email and password under the login quota: the user's id and admin flag, or 401.
async fn check_password(
    req: &HttpRequest,
    state: &AppState,
    limits: &RateLimits,
    body: &Credentials,
) -> Result<users::Credentials, ApiError> {
    let email = Email::parse(&body.email);
    limits.check_login(client_ip(req, limits), email.as_ref().map_or("", Email::as_str))?;
    let found = match email {
        Ok(email) => users::credentials(&mut *state.pool.get().await?, &email).await?,
        Err(_) => None,
    };
    let hash = found.as_ref().map_or_else(|| password::DUMMY_HASH.to_owned(), |c| c.password_hash.clone());
    let ok = password::verify_password(SecretString::from(body.password.clone()), hash).await;
    found.filter(|_| ok).ok_or(ApiError::Unauthorized)
}

/// Who is signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub id: i64,
    pub email: String,
    pub is_admin: bool,
    /// `token`, `cookie` (the dashboard) or `api_key`.
    pub signed_in_with: &'static str,
}

/// Signs in to the dashboard: the session goes into an `HttpOnly`, `SameSite=Strict` cookie
/// (`al_session`) that scripts cannot read; the answer carries no token. Requests with the
/// cookie that change anything must send `X-Requested-With: audiencelens`.
#[utoipa::path(post, path = "/api/v1/auth/session", request_body = Credentials,
    responses((status = 200, body = Me), (status = 401), (status = 429)), tag = "auth")]
#[post("/auth/session")]
pub async fn open_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    limits: web::Data<RateLimits>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let user = check_password(&req, &state, &limits, &body).await?;
    let mut conn = state.pool.get().await?;
    let (_, secret) = sessions::open(&mut conn, user.id, sessions::Kind::Cookie).await?;
    let secret = secret.ok_or_else(|| anyhow::anyhow!("a cookie session without its secret"))?;
    let email = users::profile(&mut conn, user.id).await?.map(|(e, _)| e).unwrap_or_default();
    let max_age = state.tokens.max_session();
    let cookie = session_cookie(
        &state,
        &req,
        secret,
        actix_web::cookie::time::Duration::seconds(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX)),
    );
    Ok(HttpResponse::Ok().cookie(cookie).json(Me {
        id: user.id,
        email,
        is_admin: user.is_admin,
        signed_in_with: "cookie",
    }))
}

fn session_cookie(
    state: &AppState,
    req: &HttpRequest,
    value: String,
    max_age: actix_web::cookie::time::Duration,
) -> actix_web::cookie::Cookie<'static> {
    let secure = state.config.settings.environment == crate::config::Environment::Production
        || req.connection_info().scheme() == "https";
    actix_web::cookie::Cookie::build(SESSION_COOKIE, value)
        .path("/api/")
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Strict)
        .secure(secure)
        .max_age(max_age)
        .finish()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionState {
    /// Who is signed in on this request, if anyone.
    pub user: Option<Me>,
}

/// Whether this request is signed in, and as whom (never 401: a page asks this before it
/// knows). The dashboard calls it when it loads.
#[utoipa::path(get, path = "/api/v1/auth/session", responses((status = 200, body = SessionState)), tag = "auth")]
#[get("/auth/session")]
pub async fn session_state(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut payload = Payload::None;
    let user = match AuthUser::from_request(&req, &mut payload).await {
        Ok(user) => Some(me_of(&state, user).await?),
        Err(_) => None,
    };
    Ok(HttpResponse::Ok().json(SessionState { user }))
}

async fn me_of(state: &AppState, user: AuthUser) -> Result<Me, ApiError> {
    let (email, is_admin) =
        users::profile(&mut *state.pool.get().await?, user.id).await?.ok_or(ApiError::Unauthorized)?;
    let signed_in_with = match (user.session, user.session_id) {
        (Some(_), _) => "token",
        (None, Some(_)) => "cookie",
        (None, None) => "api_key",
    };
    Ok(Me { id: user.id, email, is_admin, signed_in_with })
}

/// The caller.
#[utoipa::path(get, path = "/api/v1/auth/me", responses((status = 200, body = Me), (status = 401)),
    security(("bearer" = [])), tag = "auth")]
#[get("/auth/me")]
pub async fn me(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(me_of(&state, user).await?))
}

/// Ends the caller's session (its token, or the dashboard's cookie, stops working at once). An
/// API key is revoked instead (`DELETE /api-keys/{id}`).
#[utoipa::path(post, path = "/api/v1/auth/logout", responses((status = 204), (status = 400), (status = 401)),
    security(("bearer" = [])), tag = "auth")]
#[post("/auth/logout")]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let Some(id) = user.session_id else {
        return Err(ApiError::BadRequest(
            "an API key has no session: revoke it with DELETE /api/v1/api-keys/{id}".into(),
        ));
    };
    sessions::end(&mut *state.pool.get().await?, id).await?;
    let gone = session_cookie(&state, &req, String::new(), actix_web::cookie::time::Duration::ZERO);
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewPassword {
    #[schema(value_type = String, format = Password)]
    pub current_password: String,
    #[schema(value_type = String, format = Password, min_length = 10)]
    pub new_password: String,
}

/// Changes the caller's password (the current one is required) and ends every other session
/// of theirs; this one stays signed in.
#[utoipa::path(post, path = "/api/v1/auth/password", request_body = NewPassword,
    responses((status = 204), (status = 400), (status = 401), (status = 429)), security(("bearer" = [])), tag = "auth")]
#[post("/auth/password")]
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    limits: web::Data<RateLimits>,
    user: AuthUser,
    body: web::Json<NewPassword>,
) -> Result<HttpResponse, ApiError> {
    let Some(session) = user.session_id else {
        return Err(ApiError::BadRequest(
            "sign in with your password to change it (an API key cannot)".into(),
        ));
    };
    let email =
        users::profile(&mut *state.pool.get().await?, user.id).await?.ok_or(ApiError::Unauthorized)?.0;
    let current = Credentials { email, password: body.current_password.clone() };
    check_password(&req, &state, &limits, &current).await.map_err(|e| match e {
        ApiError::Unauthorized => ApiError::BadRequest("the current password is wrong".into()),
        other => other,
    })?;
    password::check_new_password(&body.new_password).map_err(ApiError::BadRequest)?;
    let hash = password::hash_password(SecretString::from(body.new_password.clone())).await?;
    let mut conn = state.pool.get().await?;
    users::set_password(&mut conn, user.id, &hash, user.is_admin).await?;
    sessions::end_all(&mut conn, user.id, Some(session)).await?;
    Ok(HttpResponse::NoContent().finish())
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
