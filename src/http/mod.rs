//! The HTTP API and the dashboard that uses it: the only module that imports actix-web.
//! Routes, error mapping, request metrics, security headers, JSON errors for malformed
//! requests and unknown routes.
//!
//! Owns: routing and the HTTP edge. Uses: `app::AppState`, domain modules.

mod accounts;
mod admin;
mod analyses;
mod audience;
pub mod auth;
pub mod error;
mod health;
mod imports;
mod input;
pub mod limits;
mod meta;
pub mod openapi;
pub mod pagination;
mod sharing;
mod usage;
pub mod web;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{App, HttpRequest, HttpServer, ResponseError, web as aweb};

use crate::app::AppState;
use error::ApiError;
pub use health::ProbeCache;

/// Adds every route and the JSON error handlers to an app (the tests build their app with it
/// too, so they exercise exactly what production serves).
pub fn configure(cfg: &mut aweb::ServiceConfig, max_body_bytes: usize) {
    cfg.app_data(
        aweb::JsonConfig::default().limit(max_body_bytes).error_handler(|err, _req| json_error(&err)),
    )
    .app_data(
        aweb::PathConfig::default()
            .error_handler(|err, _req| ApiError::NotFound(format!("no such resource: {err}")).into()),
    )
    .app_data(
        aweb::QueryConfig::default()
            .error_handler(|err, _req| ApiError::BadRequest(format!("bad query string: {err}")).into()),
    )
    .service(health::healthz)
    .service(health::readyz)
    .service(health::metrics)
    .service(
        aweb::scope("/api/v1")
            .wrap(actix_web::middleware::from_fn(limit_by_ip))
            .service(openapi::document)
            .service(meta::server)
            .service(meta::methodology)
            .service(auth::register)
            .service(auth::login)
            .service(auth::open_session)
            .service(auth::me)
            .service(auth::session_state)
            .service(auth::logout)
            .service(auth::change_password)
            .service(auth::refresh)
            .service(auth::create_api_key)
            .service(auth::list_api_keys)
            .service(auth::revoke_api_key)
            .service(accounts::create)
            .service(accounts::list)
            .service(accounts::get)
            .service(accounts::update)
            .service(accounts::remove)
            .service(analyses::start)
            .service(imports::upload)
            .service(analyses::list)
            .service(analyses::get)
            .service(analyses::cancel)
            .service(analyses::retry)
            .service(audience::latest)
            .service(audience::of_analysis)
            .service(audience::history)
            .service(audience::compare)
            .service(audience::overlap)
            .service(audience::overlap_matrix)
            .service(audience::commenters)
            .service(audience::export)
            .service(audience::export_commenters)
            .service(sharing::create)
            .service(sharing::list)
            .service(sharing::revoke)
            .service(sharing::open)
            .service(admin::erase_person)
            .service(admin::export_person)
            .service(usage::usage),
    )
    .route("/", aweb::get().to(dashboard))
    .route("/{path:.*}", aweb::get().to(dashboard));
}

/// The dashboard's files (`web/`, embedded); anything else is the JSON 404.
async fn dashboard(req: HttpRequest) -> actix_web::HttpResponse {
    match web::find(req.path().trim_start_matches('/')) {
        Some(asset) => web::respond(&req, asset),
        None => not_found(req).await,
    }
}

/// Headers every response carries: the dashboard's Content-Security-Policy (no inline script,
/// nothing from elsewhere), no MIME sniffing, no referrer, no framing.
fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add(("content-security-policy", web::CONTENT_SECURITY_POLICY))
        .add(("x-content-type-options", "nosniff"))
        .add(("referrer-policy", "no-referrer"))
        .add(("x-frame-options", "DENY"))
        .add(("cross-origin-opener-policy", "same-origin"))
}

/// Every API request counts against its client IP's quota first.
async fn limit_by_ip(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(limits) = req.app_data::<aweb::Data<limits::RateLimits>>() {
        limits.check_ip(auth::client_ip(req.request(), limits))?;
    }
    next.call(req).await
}

fn cors(origins: &[String]) -> actix_cors::Cors {
    origins.iter().fold(
        actix_cors::Cors::default()
            .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
            .allowed_headers([actix_web::http::header::AUTHORIZATION, actix_web::http::header::CONTENT_TYPE])
            .max_age(3600),
        |cors, origin| cors.allowed_origin(origin),
    )
}

fn json_error(err: &actix_web::error::JsonPayloadError) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge(format!("request body is larger than {limit} bytes")).into()
        }
        E::ContentType => ApiError::BadRequest("expected Content-Type: application/json".into()).into(),
        other => ApiError::BadRequest(format!("invalid JSON body: {other}")).into(),
    }
}

/// A raw request body of at most `limit` bytes (`server.max_body_bytes`), for handlers that
/// read their body themselves; a larger one is refused with the JSON 413 the JSON extractor
/// gives.
async fn read_body(mut payload: aweb::Payload, limit: usize) -> Result<aweb::BytesMut, ApiError> {
    use futures_util::StreamExt as _;
    let mut body = aweb::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading the request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!("request body is larger than {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn not_found(req: HttpRequest) -> actix_web::HttpResponse {
    ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())).error_response()
}

/// Makes every error answer the one JSON shape, also those written as text by the framework
/// or a middleware (a CORS refusal), keeping their status and headers.
async fn json_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
    let response = match next.call(req).await {
        Ok(response) => response,
        // Ours (already JSON, with their headers) pass as they are.
        Err(e) if e.as_error::<ApiError>().is_some() || e.as_error::<error::Framework>().is_some() => {
            return Err(e);
        }
        Err(e) => {
            let r = e.as_response_error();
            return Err(error::Framework::new(r.status_code(), &e.to_string()).into());
        }
    };
    let status = response.status();
    let json =
        response.headers().get(CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return Ok(response.map_into_left_body());
    }
    let message = response.response().error().map(ToString::to_string);
    let (req, old) = response.into_parts();
    let mut new = error::Framework::new(status, message.as_deref().unwrap_or_default()).error_response();
    for (name, value) in old.headers() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(ServiceResponse::new(req, new).map_into_right_body())
}

/// Counts requests and their latency by matched route pattern (never the raw path).
async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let state = req.app_data::<aweb::Data<AppState>>().cloned();
    if crate::metrics::method_label(&method) == "other" {
        let refused = ApiError::MethodNotAllowed(format!(
            "method not allowed; this API answers {}",
            crate::metrics::KNOWN_METHODS_HEADER
        ));
        if let Some(state) = &state {
            state.metrics.http_request(&method, "unmatched", 405, started.elapsed().as_secs_f64());
        }
        return Ok(req.error_response(refused).map_into_right_body());
    }
    let response = next.call(req).await?.map_into_left_body();
    if let Some(state) = state {
        let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        state.metrics.http_request(
            &method,
            &route,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(response)
}

/// Binds and starts the server; returns it running (await it, or stop it through its handle)
/// and the addresses it listens on (port 0 in the configuration picks a free port).
///
/// # Errors
/// When the address cannot be bound.
pub fn serve(state: AppState) -> std::io::Result<(actix_web::dev::Server, Vec<std::net::SocketAddr>)> {
    let settings = state.config.settings.server.clone();
    let max_body_bytes = settings.max_body_bytes;
    let limits = aweb::Data::new(limits::RateLimits::new(&settings));
    let origins = settings.cors_origins.clone();
    let data = aweb::Data::new(state);
    let sweeper = limits.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_mins(1)).await;
            sweeper.shrink();
        }
    });
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(limits.clone())
            .wrap(cors(&origins))
            .wrap(actix_web::middleware::from_fn(json_errors))
            .wrap(security_headers())
            .wrap(actix_web::middleware::from_fn(input::refuse_control_characters))
            .wrap(actix_web::middleware::from_fn(record_metrics))
            .configure(|cfg| configure(cfg, max_body_bytes))
            .default_service(aweb::to(not_found))
    })
    .disable_signals()
    .shutdown_timeout(10);
    if settings.workers > 0 {
        server = server.workers(settings.workers);
    }
    let server = server.bind((settings.host.as_str(), settings.port))?;
    let addrs = server.addrs();
    tracing::info!(addresses = ?addrs, "HTTP API listening");
    Ok((server.run(), addrs))
}
