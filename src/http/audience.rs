//! Audience reads: snapshots (stored, never recomputed), history, side-by-side comparison,
//! overlap, the commenters list, and exports. Read-only: served from the read pool.

// utoipa's `path` macro re-emits local `IntoParams` types with their module path.
#![allow(unused_qualifications)]

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::AuthUser;
use super::error::ApiError;
use super::pagination::{Page, PageQuery};
use crate::app::AppState;
use crate::insights::read::{self, CommenterRow, Compared, HistoryPoint, Overlap, Which};
use crate::insights::snapshot::Snapshot;
use crate::privacy::{self, AuditAction};

fn no_result() -> ApiError {
    ApiError::NotFound("no completed analysis with an audience result".into())
}

/// The latest audience of an account (the snapshot of its last completed analysis).
#[utoipa::path(get, path = "/api/v1/accounts/{id}/audience", params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 404)), security(("bearer" = [])), tag = "audience")]
#[get("/accounts/{id}/audience")]
pub async fn latest(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let s = read::snapshot_text(&mut *state.read_pool.get().await?, user.id, Which::LatestOf(*id))
        .await?
        .ok_or_else(no_result)?;
    Ok(HttpResponse::Ok().content_type("application/json").body(s))
}

/// The audience found by one analysis.
#[utoipa::path(get, path = "/api/v1/analyses/{id}/audience", params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 404)), security(("bearer" = [])), tag = "audience")]
#[get("/analyses/{id}/audience")]
pub async fn of_analysis(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let s = read::snapshot_text(&mut *state.read_pool.get().await?, user.id, Which::Analysis(*id))
        .await?
        .ok_or_else(no_result)?;
    Ok(HttpResponse::Ok().content_type("application/json").body(s))
}

/// Each completed analysis of an account as a trend point, oldest first.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/audience/history", params(("id" = i64, Path)),
    responses((status = 200, body = [HistoryPoint]), (status = 404)), security(("bearer" = [])), tag = "audience")]
#[get("/accounts/{id}/audience/history")]
pub async fn history(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.read_pool.get().await?;
    if crate::accounts::get_user_account(&mut conn, user.id, *id).await?.is_none() {
        return Err(ApiError::NotFound("no such account".into()));
    }
    Ok(HttpResponse::Ok().json(read::history(&mut conn, user.id, *id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CompareQuery {
    /// Comma-separated account ids (2 to 10).
    pub accounts: String,
}

/// The latest audiences of several of the caller's accounts, side by side, each raw share's
/// difference from the first account's with its 95 % interval (Newcombe's hybrid score).
#[utoipa::path(get, path = "/api/v1/audience/compare", params(CompareQuery),
    responses((status = 200, body = [Compared]), (status = 400), (status = 404)), security(("bearer" = [])), tag = "audience")]
#[get("/audience/compare")]
pub async fn compare(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<CompareQuery>,
) -> Result<HttpResponse, ApiError> {
    let ids = account_ids(&q.accounts)?;
    let mut conn = state.read_pool.get().await?;
    let mut snapshots = Vec::new();
    for id in ids {
        let s = read::snapshot(&mut conn, user.id, Which::LatestOf(id)).await?.ok_or_else(|| {
            ApiError::NotFound(format!("account {id} has no completed analysis (or is not yours)"))
        })?;
        snapshots.push(s);
    }
    Ok(HttpResponse::Ok().json(read::compared(&snapshots)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OverlapQuery {
    pub a: i64,
    pub b: i64,
}

/// Commenters two of the caller's accounts have in common.
#[utoipa::path(get, path = "/api/v1/audience/overlap", params(OverlapQuery),
    responses((status = 200, body = Overlap), (status = 404)), security(("bearer" = [])), tag = "audience")]
#[get("/audience/overlap")]
pub async fn overlap(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<OverlapQuery>,
) -> Result<HttpResponse, ApiError> {
    let o = read::overlap(&mut *state.read_pool.get().await?, user.id, q.a, q.b)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such account".into()))?;
    Ok(HttpResponse::Ok().json(o))
}

/// Every pair of 2 to 10 of the caller's accounts: commenters in common, the share of the
/// smaller audience they are, and Jaccard's index.
#[utoipa::path(get, path = "/api/v1/audience/overlap-matrix", params(CompareQuery),
    responses((status = 200, body = [Overlap]), (status = 400), (status = 404)), security(("bearer" = [])), tag = "audience")]
#[get("/audience/overlap-matrix")]
pub async fn overlap_matrix(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<CompareQuery>,
) -> Result<HttpResponse, ApiError> {
    let ids = account_ids(&q.accounts)?;
    let mut conn = state.read_pool.get().await?;
    let mut pairs = Vec::new();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            pairs.push(
                read::overlap(&mut conn, user.id, *a, *b)
                    .await?
                    .ok_or_else(|| ApiError::NotFound(format!("no such account: {a} or {b}")))?,
            );
        }
    }
    Ok(HttpResponse::Ok().json(pairs))
}

/// 2 to 10 account ids, comma-separated.
fn account_ids(text: &str) -> Result<Vec<i64>, ApiError> {
    let ids: Vec<i64> = text
        .split(',')
        .map(|s| s.trim().parse::<i64>())
        .collect::<Result<_, _>>()
        .map_err(|_| ApiError::BadRequest("accounts must be comma-separated account ids".into()))?;
    if !(2..=10).contains(&ids.len()) {
        return Err(ApiError::BadRequest("compare 2 to 10 accounts".into()));
    }
    Ok(ids)
}

/// The account's commenters with their classification and its source (owner only).
#[utoipa::path(get, path = "/api/v1/accounts/{id}/commenters", params(("id" = i64, Path), PageQuery),
    responses((status = 200, body = Page<CommenterRow>), (status = 404)), security(("bearer" = [])), tag = "audience")]
#[get("/accounts/{id}/commenters")]
pub async fn commenters(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (limit, after) = page.parse()?;
    let rows =
        read::commenters(&mut *state.read_pool.get().await?, user.id, *id, after.unwrap_or(0), limit + 1)
            .await?
            .ok_or_else(|| ApiError::NotFound("no such account".into()))?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, limit, |r| r.id)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ExportQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// A snapshot for download: JSON as stored, or CSV with one row per share (raw and corrected).
#[utoipa::path(get, path = "/api/v1/analyses/{id}/export", params(("id" = i64, Path), ExportQuery),
    responses((status = 200, description = "the snapshot as JSON or CSV"), (status = 404), (status = 409, description = "a snapshot the CSV table cannot read")), security(("bearer" = [])), tag = "audience")]
#[get("/analyses/{id}/export")]
pub async fn export(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let text = read::snapshot_text(&mut *state.read_pool.get().await?, user.id, Which::Analysis(*id))
        .await?
        .ok_or_else(no_result)?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .insert_header(("content-disposition", format!("attachment; filename=\"audience-{id}.json\"")))
            .body(text)),
        "csv" => {
            let s: Snapshot = serde_json::from_str(&text).map_err(|e| {
                ApiError::Conflict(format!(
                    "this snapshot cannot be read as a table ({e}); its JSON export (format=json) has everything"
                ))
            })?;
            Ok(HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header(("content-disposition", format!("attachment; filename=\"audience-{id}.csv\"")))
                .body(crate::insights::export::snapshot_csv(&s)?))
        }
        other => Err(ApiError::BadRequest(format!("unknown format {other:?}: json or csv"))),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CommentersExportQuery {
    /// Give real Instagram handles instead of pseudonyms (recorded in the audit log).
    pub raw_handles: Option<bool>,
}

/// Every commenter of the account as CSV, identified by a pseudonym unless `raw_handles=true`.
#[utoipa::path(get, path = "/api/v1/accounts/{id}/commenters/export", params(("id" = i64, Path), CommentersExportQuery),
    responses((status = 200, description = "CSV"), (status = 404)), security(("bearer" = [])), tag = "audience")]
#[get("/accounts/{id}/commenters/export")]
pub async fn export_commenters(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: web::Query<CommentersExportQuery>,
) -> Result<HttpResponse, ApiError> {
    const PAGE: i64 = 5_000;
    let raw = q.raw_handles.unwrap_or(false);
    let (user_id, account_id) = (user.id, *id);
    let (first, rows) = {
        let mut conn = state.read_pool.get().await?;
        let first = read::commenters(&mut conn, user_id, account_id, 0, PAGE)
            .await?
            .ok_or_else(|| ApiError::NotFound("no such account".into()))?;
        (first, read::commenter_count(&mut conn, account_id).await?)
    };
    // Recorded before the first row leaves, whether or not the client reads to the end.
    let details = serde_json::json!({"account_id": account_id, "rows": rows, "raw_handles": raw});
    privacy::audit(
        &mut *state.pool.get().await?,
        &format!("user:{user_id}"),
        AuditAction::AudienceExport,
        None,
        &details,
    )
    .await?;
    // Streamed a page at a time: memory stays flat however many commenters the account has,
    // and a connection is held only while a page is read, not while a slow client downloads.
    let key = (!raw).then(|| state.privacy.clone());
    let pool = state.read_pool.clone();
    let body = futures_util::stream::unfold(Part::Rows(first, true), move |part| {
        let (key, pool) = (key.clone(), pool.clone());
        async move {
            let (rows, header) = match part {
                Part::Rows(rows, header) => (rows, header),
                Part::Failed(e) => return Some((Err(e), Part::Done)),
                Part::Done => return None,
            };
            let bytes = match crate::insights::export::commenters_csv_part(&rows, key.as_ref(), header) {
                Ok(b) => web::Bytes::from(b),
                Err(e) => return Some((Err(actix_web::error::ErrorInternalServerError(e)), Part::Done)),
            };
            let next = match rows.last() {
                Some(last) if rows.len() as i64 == PAGE => {
                    let page = match pool.get().await {
                        Ok(mut conn) => read::commenters(&mut conn, user_id, account_id, last.id, PAGE)
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    match page {
                        Ok(Some(page)) if page.is_empty() => Part::Done,
                        Ok(Some(page)) => Part::Rows(page, false),
                        // The account went meanwhile: cut short rather than look complete.
                        Ok(None) => Part::Failed(actix_web::error::ErrorGone("the account was deleted")),
                        Err(error) => {
                            tracing::error!(%error, account_id, "commenters export stopped");
                            Part::Failed(actix_web::error::ErrorInternalServerError("export stopped"))
                        }
                    }
                }
                _ => Part::Done,
            };
            Some((Ok::<_, actix_web::Error>(bytes), next))
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("content-disposition", format!("attachment; filename=\"commenters-{id}.csv\"")))
        .streaming(body))
}

/// Where a streamed commenters export stands.
enum Part {
    /// A page to write (with the header when it is the first).
    Rows(Vec<CommenterRow>, bool),
    /// Reading the next page failed: end the body with an error (the client sees it cut short).
    Failed(actix_web::Error),
    Done,
}
