//! Liveness, readiness and metrics.

use actix_web::{HttpResponse, get, web};
use serde_json::json;

use super::error::ApiError;
use crate::app::AppState;
use crate::db;
use crate::queue::storage;

/// The process is up and serving.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers and has every migration this binary embeds.
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let applied = db::applied_migration_versions(&mut conn).await.unwrap_or_default();
    let pending: Vec<String> =
        db::embedded_migration_versions().into_iter().filter(|v| !applied.contains(v)).collect();
    if pending.is_empty() {
        Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
    } else {
        Err(ApiError::Unavailable(format!(
            "database migrations pending: {} (run `audiencelens migrate`)",
            pending.join(", ")
        )))
    }
}

/// Prometheus text exposition.
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let depths = storage::queue_depths(&mut conn)
        .await?
        .into_iter()
        .map(|d| (d.queue, d.status, d.count))
        .collect::<Vec<_>>();
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render(&depths)))
}
