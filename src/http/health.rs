//! Liveness, readiness and metrics. Readiness and metrics have a per-IP quota of their own
//! (the API's size, in a separate bucket), and their database answers are reused for a second
//! ([`ProbeCache`]): a flood of probes costs the database one query a second, not one each.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde_json::json;
use tokio::sync::Mutex;

use super::error::ApiError;
use crate::app::AppState;
use crate::db;
use crate::queue::storage;

/// How long a readiness or queue-depth answer is reused.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// Queue depths as (queue, status, count).
type Depths = Vec<(String, String, i64)>;

/// A stored answer: when it was loaded, and what it was.
type Slot<T> = Arc<Mutex<Option<(Instant, Result<T, String>)>>>;

/// The last answers of the database queries behind `/readyz` (pending migrations) and
/// `/metrics` (queue depths), failures included. One caller at a time refreshes a stale
/// answer; callers arriving meanwhile wait for it instead of querying too.
#[derive(Debug, Default)]
pub struct ProbeCache {
    pending_migrations: Slot<Vec<String>>,
    depths: Slot<Depths>,
}

/// How long a probe's database query may take. Callers wait for a load in flight, so one query
/// hanging on a dead connection would otherwise hold every later probe until TCP gives up.
const LOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// `slot`'s answer if younger than [`FRESH_FOR`], else `load`'s (stored for the next caller).
/// A failure is kept as the message a client may see: 503 with it. The load runs in a task of
/// its own holding the slot, so a caller that gives up (a probe's short timeout) neither
/// cancels it nor leaves the next caller to start another wait.
async fn reuse_or_load<T, F>(slot: &Slot<T>, load: F) -> Result<T, ApiError>
where
    T: Clone + Send + Sync + 'static,
    F: Future<Output = Result<T, ApiError>> + Send + 'static,
{
    reuse_or_load_within(slot, LOAD_TIMEOUT, load).await
}

/// [`reuse_or_load`] with a load that fails after `limit`.
async fn reuse_or_load_within<T, F>(slot: &Slot<T>, limit: Duration, load: F) -> Result<T, ApiError>
where
    T: Clone + Send + Sync + 'static,
    F: Future<Output = Result<T, ApiError>> + Send + 'static,
{
    let mut held = slot.clone().lock_owned().await;
    if let Some((at, answer)) = held.as_ref()
        && at.elapsed() < FRESH_FOR
    {
        return answer.clone().map_err(ApiError::Unavailable);
    }
    let task = tokio::spawn(async move {
        let loaded = tokio::time::timeout(limit, load).await.unwrap_or_else(|_| {
            tracing::warn!(limit_secs = limit.as_secs_f64(), "probe query timed out");
            Err(ApiError::Unavailable("database query timed out".to_owned()))
        });
        let answer = loaded.map_err(|e| match e {
            ApiError::Unavailable(message) => message,
            other => {
                tracing::warn!(error = %other, "probe query failed");
                "database query failed".to_owned()
            }
        });
        *held = Some((Instant::now(), answer.clone()));
        answer
    });
    task.await.map_err(|e| ApiError::Internal(e.into()))?.map_err(ApiError::Unavailable)
}

/// The client IP's probe quota.
fn count_against_quota(req: &HttpRequest) -> Result<(), ApiError> {
    match req.app_data::<web::Data<super::limits::RateLimits>>() {
        Some(limits) => limits.check_probe(super::auth::client_ip(req, limits)),
        None => Ok(()),
    }
}

/// The process is up and serving.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers and has every migration this binary embeds.
#[get("/readyz")]
pub async fn readyz(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    count_against_quota(&req)?;
    let pool = state.pool.clone();
    let pending = reuse_or_load(&state.probes.pending_migrations, async move {
        let mut conn = pool.get().await?;
        let applied = db::applied_migration_versions(&mut conn).await.unwrap_or_default();
        Ok(db::embedded_migration_versions().into_iter().filter(|v| !applied.contains(v)).collect::<Vec<_>>())
    })
    .await?;
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
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    count_against_quota(&req)?;
    let pool = state.pool.clone();
    let depths = reuse_or_load(&state.probes.depths, async move {
        let mut conn = pool.get().await?;
        Ok(storage::queue_depths(&mut conn)
            .await?
            .into_iter()
            .map(|d| (d.queue, d.status, d.count))
            .collect::<Depths>())
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render(&depths)))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn callers_together_share_one_load_and_a_failure_is_reused_too() {
        let slot: Slot<u32> = Slot::default();
        let loads = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..20)
            .map(|_| {
                let (slot, loads) = (slot.clone(), loads.clone());
                tokio::spawn(async move {
                    reuse_or_load(&slot, async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(7)
                    })
                    .await
                    .ok()
                })
            })
            .collect();
        for c in callers {
            assert_eq!(c.await.unwrap(), Some(7));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "one query for everyone");

        let failing: Slot<u32> = Slot::default();
        let first =
            reuse_or_load(&failing, async { Err(ApiError::Unavailable("database unavailable".into())) });
        assert!(matches!(first.await, Err(ApiError::Unavailable(m)) if m == "database unavailable"));
        let again = reuse_or_load(&failing, async { Ok(1) }).await;
        assert!(matches!(again, Err(ApiError::Unavailable(_))), "the failure is reused while fresh");
        let hidden = Slot::default();
        let internal =
            reuse_or_load::<u32, _>(&hidden, async { Err(ApiError::Internal(anyhow::anyhow!("secret"))) });
        assert!(matches!(internal.await, Err(ApiError::Unavailable(m)) if m == "database query failed"));
    }

    #[tokio::test]
    async fn a_stale_answer_is_loaded_again() {
        let slot: Slot<u32> = Arc::new(Mutex::new(Some((
            Instant::now().checked_sub(FRESH_FOR).expect("uptime over a second"),
            Ok(1),
        ))));
        assert_eq!(reuse_or_load(&slot, async { Ok(2) }).await.ok(), Some(2));
        assert_eq!(reuse_or_load(&slot, async { Ok(3) }).await.ok(), Some(2), "fresh now");
    }

    #[tokio::test]
    async fn a_query_that_hangs_fails_in_time_and_the_next_probe_loads_again() {
        let slot: Slot<u32> = Slot::default();
        let hung = reuse_or_load_within(&slot, Duration::from_millis(50), std::future::pending());
        let answer = tokio::time::timeout(Duration::from_secs(5), hung).await.expect("not held forever");
        assert!(matches!(answer, Err(ApiError::Unavailable(m)) if m == "database query timed out"));
        tokio::time::sleep(FRESH_FOR).await;
        assert_eq!(reuse_or_load(&slot, async { Ok(4) }).await.ok(), Some(4), "the slot was let go");
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_leaves_the_answer_for_the_next() {
        let slot: Slot<u32> = Slot::default();
        let abandoned = reuse_or_load(&slot, async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(5)
        });
        assert!(tokio::time::timeout(Duration::from_millis(10), abandoned).await.is_err(), "gave up");
        let next = reuse_or_load(&slot, async { Ok(6) }).await;
        assert_eq!(next.ok(), Some(5), "the abandoned load finished and its answer was kept");
    }
}
