//! Tracked accounts: add, list, get, update, delete. Every query is scoped to the caller.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::analyses::AnalysisView;
use super::auth::AuthUser;
use super::error::ApiError;
use super::pagination::{Page, PageQuery};
use crate::accounts::{self, AccountChanges, InstagramHandle, Schedule, TrackedAccount};
use crate::app::AppState;
use crate::insights::read::Headline;

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: i64,
    pub handle: String,
    pub schedule: String,
    pub max_posts: i32,
    pub max_comments_per_post: i32,
    /// Most an analysis of this account may spend on paid services, in USD.
    pub budget_usd: Option<f64>,
    pub followers_count: Option<i64>,
    pub last_analyzed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Its latest analysis (running or ended), with progress.
    pub latest_analysis: Option<AnalysisView>,
    /// Its latest audience in a line.
    pub headline: Option<Headline>,
}

/// The accounts with their latest analysis and headline.
async fn views(
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: i64,
    accounts: Vec<TrackedAccount>,
) -> Result<Vec<AccountView>, ApiError> {
    let ids: Vec<i64> = accounts.iter().map(|a| a.id).collect();
    let mut latest = crate::analyses::latest_of_accounts(conn, &ids).await?;
    let mut headlines = crate::insights::read::headlines(conn, user_id, &ids).await?;
    Ok(accounts
        .into_iter()
        .map(|a| {
            let id = a.id;
            let mut view = AccountView::from(a);
            view.latest_analysis = latest.remove(&id).map(AnalysisView::from);
            view.headline = headlines.remove(&id);
            view
        })
        .collect())
}

impl From<TrackedAccount> for AccountView {
    fn from(a: TrackedAccount) -> Self {
        Self {
            id: a.id,
            handle: a.handle,
            schedule: a.schedule,
            max_posts: a.max_posts,
            max_comments_per_post: a.max_comments_per_post,
            budget_usd: a.budget_micro_usd.map(|m| m as f64 / 1e6),
            followers_count: a.followers_count,
            last_analyzed_at: a.last_analyzed_at,
            created_at: a.created_at,
            latest_analysis: None,
            headline: None,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// An Instagram username, `@username` or profile URL.
    pub handle: String,
    pub schedule: Option<Schedule>,
    pub max_posts: Option<i32>,
    pub max_comments_per_post: Option<i32>,
    pub budget_usd: Option<f64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdate {
    pub schedule: Option<Schedule>,
    pub max_posts: Option<i32>,
    pub max_comments_per_post: Option<i32>,
    /// A number sets the budget; `null` removes it; absent keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>)]
    pub budget_usd: Option<Option<f64>>,
}

/// Distinguishes an explicit `null` from an absent field.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

fn micro_usd(usd: Option<f64>) -> Result<Option<i64>, ApiError> {
    match usd {
        None => Ok(None),
        Some(v) if v.is_finite() && (0.0..=1e6).contains(&v) => Ok(Some((v * 1e6).round() as i64)),
        Some(_) => Err(ApiError::BadRequest("budget_usd must be between 0 and 1000000".into())),
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such account".into())
}

/// Starts tracking an Instagram account.
#[utoipa::path(post, path = "/api/v1/accounts", request_body = NewAccount,
    responses((status = 201, body = AccountView), (status = 400), (status = 409)), security(("bearer" = [])), tag = "accounts")]
#[post("/accounts")]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<NewAccount>,
) -> Result<HttpResponse, ApiError> {
    let handle = InstagramHandle::parse(&body.handle).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let changes = AccountChanges {
        schedule: body.schedule,
        max_posts: body.max_posts,
        max_comments_per_post: body.max_comments_per_post,
        budget_micro_usd: Some(micro_usd(body.budget_usd)?),
    };
    accounts::validate_changes(&changes).map_err(ApiError::BadRequest)?;
    match accounts::create_account(&mut *state.pool.get().await?, user.id, &handle, &changes).await? {
        Some(a) => Ok(HttpResponse::Created().json(AccountView::from(a))),
        None => Err(ApiError::Conflict(format!("you already track @{handle}"))),
    }
}

/// The caller's tracked accounts.
#[utoipa::path(get, path = "/api/v1/accounts", params(PageQuery),
    responses((status = 200, body = Page<AccountView>)), security(("bearer" = [])), tag = "accounts")]
#[get("/accounts")]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (limit, after) = page.parse()?;
    let mut conn = state.pool.get().await?;
    let rows = accounts::list_user_accounts(&mut conn, user.id, after.unwrap_or(0), limit + 1).await?;
    let page = Page::from_rows(views(&mut conn, user.id, rows).await?, limit, |a| a.id);
    Ok(HttpResponse::Ok().json(page))
}

/// One tracked account.
#[utoipa::path(get, path = "/api/v1/accounts/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = AccountView), (status = 404)), security(("bearer" = [])), tag = "accounts")]
#[get("/accounts/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let account = accounts::get_user_account(&mut conn, user.id, *id).await?.ok_or_else(not_found)?;
    let view = views(&mut conn, user.id, vec![account]).await?.pop().ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(view))
}

/// Changes an account's schedule and limits.
#[utoipa::path(patch, path = "/api/v1/accounts/{id}", params(("id" = i64, Path)), request_body = AccountUpdate,
    responses((status = 200, body = AccountView), (status = 400), (status = 404)), security(("bearer" = [])), tag = "accounts")]
#[patch("/accounts/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<AccountUpdate>,
) -> Result<HttpResponse, ApiError> {
    let changes = AccountChanges {
        schedule: body.schedule,
        max_posts: body.max_posts,
        max_comments_per_post: body.max_comments_per_post,
        budget_micro_usd: match body.budget_usd {
            None => None,
            Some(v) => Some(micro_usd(v)?),
        },
    };
    accounts::validate_changes(&changes).map_err(ApiError::BadRequest)?;
    let account = accounts::update_user_account(&mut *state.pool.get().await?, user.id, *id, &changes)
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

/// Stops tracking an account and deletes its analyses.
#[utoipa::path(delete, path = "/api/v1/accounts/{id}", params(("id" = i64, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])), tag = "accounts")]
#[delete("/accounts/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    use diesel_async::AsyncConnection as _;
    let mut conn = state.pool.get().await?;
    let deleted = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            if accounts::get_user_account(conn, user.id, *id).await?.is_none() {
                return Ok(false);
            }
            // Picture bytes held for its analyses go first (unless another account's analysis
            // needs them): once the analyses are gone, nothing would classify or release them.
            crate::insights::classify::release_account(conn, *id).await?;
            accounts::delete_user_account(conn, user.id, *id).await
        })
        .await?;
    if deleted { Ok(HttpResponse::NoContent().finish()) } else { Err(not_found()) }
}
