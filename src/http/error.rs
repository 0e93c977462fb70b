//! The one place domain failures become HTTP statuses. Every error body is JSON
//! `{"error": code, "message": text}`; a 5xx logs its whole cause chain and tells the client
//! nothing about internals.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("too many requests: retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal_error",
        }
    }
}

/// An error the framework or a middleware produced (not one of ours), in the one JSON shape:
/// its status, a code from the status, its message (none for a 5xx).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Framework {
    status: StatusCode,
    message: String,
}

impl Framework {
    #[must_use]
    pub fn new(status: StatusCode, message: &str) -> Self {
        let message = if status.is_server_error() {
            tracing::error!(error = %message, %status, "request failed");
            "internal error; the details are in the server log".to_owned()
        } else if message.is_empty() {
            status.canonical_reason().unwrap_or("error").to_lowercase()
        } else {
            message.to_owned()
        };
        Self { status, message }
    }
}

impl ResponseError for Framework {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self.status.as_u16() {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            409 => "conflict",
            413 => "payload_too_large",
            429 => "too_many_requests",
            503 => "unavailable",
            s if s >= 500 => "internal_error",
            _ => "error",
        };
        HttpResponse::build(self.status).json(ErrorBody { error: code, message: self.message.clone() })
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ApiError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Unavailable(format!("database unavailable: {}", pool_error_kind(&e)))
    }
}

fn pool_error_kind(e: &diesel_async::pooled_connection::deadpool::PoolError) -> &'static str {
    use deadpool::managed::PoolError;
    match e {
        PoolError::Timeout(_) => "timed out waiting for a connection",
        _ => "no connection",
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = if let Self::Internal(cause) = self {
            tracing::error!(error = %format!("{cause:#}"), "request failed");
            "internal error; the details are in the server log".to_owned()
        } else {
            self.to_string()
        };
        let mut response = HttpResponse::build(status);
        if let Self::TooManyRequests { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.insert_header((header::RETRY_AFTER, v));
        }
        if matches!(self, Self::MethodNotAllowed(_)) {
            response.insert_header((
                header::ALLOW,
                HeaderValue::from_static(crate::metrics::KNOWN_METHODS_HEADER),
            ));
        }
        if matches!(self, Self::Unauthorized) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.json(ErrorBody { error: self.code(), message })
    }
}
