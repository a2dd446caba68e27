//! The one place that maps the services' error (`crate::error::AppError`) to HTTP: its status,
//! the JSON body `{error, kind, field}`, and the `Retry-After` / `WWW-Authenticate` headers.

use crate::error::{AppError, InvalidKind};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// `Retry-After` of a 503 for an unreachable database: a restart takes seconds, and the pool
/// reconnects on the next request.
pub const STORE_RETRY_AFTER_SECS: u64 = 2;

impl AppError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Invalid { kind, .. } => match kind {
                InvalidKind::Unacceptable => StatusCode::UNPROCESSABLE_ENTITY,
                InvalidKind::Malformed => StatusCode::BAD_REQUEST,
                InvalidKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                InvalidKind::Timeout => StatusCode::REQUEST_TIMEOUT,
                InvalidKind::Conflict => StatusCode::CONFLICT,
                InvalidKind::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                InvalidKind::NotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            },
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable { .. }
            | AppError::StoreDown { .. }
            | AppError::QueueTimeout { .. }
            | AppError::ShuttingDown { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The JSON body of every error answer (4xx and 5xx).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// The error's class, for a program: `invalid`, `too_large`, `bad_request`, `timeout`,
    /// `not_found`, `overloaded`, `queue_timeout`, `shutting_down`, `unauthorized`, `forbidden`,
    /// `rate_limited`, `unavailable` or `internal`.
    #[schema(value_type = String, example = "invalid")]
    pub kind: &'static str,
    /// The request part at fault (`texts[2]`, `conversation_id`, `authorization`...), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "texts[0]")]
    pub field: Option<String>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let field = match &self {
            AppError::Invalid { field, .. } | AppError::NotFound { field, .. } => {
                Some(field.as_str())
            }
            AppError::Unauthorized { .. } | AppError::Forbidden { .. } => Some("authorization"),
            AppError::RateLimited { .. } => Some("rate"),
            _ => None,
        };
        let error = match &self {
            // Internals stay in the log, never in the answer.
            AppError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error,
            kind: self.code(),
            field: field.map(str::to_string),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let AppError::Overloaded { retry_after, .. }
        | AppError::RateLimited { retry_after }
        | AppError::QueueTimeout { retry_after, .. }
        | AppError::ShuttingDown { retry_after } = &self
        {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if let AppError::StoreDown { .. } = &self {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(STORE_RETRY_AFTER_SECS),
            );
        }
        if let AppError::Unauthorized { .. } = &self {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"triage\""),
            );
        }
        resp
    }
}
