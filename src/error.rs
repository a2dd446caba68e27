//! The one error type of the server and the one place that maps it to an HTTP status + JSON body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every failure a request can meet. `field` names the part of the request at fault.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or violates a limit (400 / 408 / 413 / 422).
    #[error("{message}")]
    Invalid {
        status: StatusCode,
        field: String,
        message: String,
    },
    /// The named thing (model, route, ...) does not exist.
    #[error("{message}")]
    NotFound { field: String, message: String },
    /// Too many requests are waiting: try again after `retry_after` seconds.
    #[error("server is at capacity: {message}")]
    Overloaded { retry_after: u64, message: String },
    /// Admitted, but the model did not start on it within `limits.queue_wait_ms` (503).
    #[error(
        "waited {waited_ms} ms for model `{model}`, over limits.queue_wait_ms: try again later"
    )]
    QueueTimeout {
        retry_after: u64,
        waited_ms: u64,
        model: String,
    },
    /// The server is shutting down and takes no new work (503).
    #[error("the server is shutting down: try again later")]
    ShuttingDown { retry_after: u64 },
    /// No API key, or an unknown one (401 with `WWW-Authenticate: Bearer`).
    #[error("{message}")]
    Unauthorized { message: String },
    /// The API key lacks the scope the endpoint needs (403).
    #[error("this API key lacks the `{scope}` scope this endpoint needs")]
    Forbidden { scope: &'static str },
    /// The API key is over its rate limit: try again after `retry_after` seconds.
    #[error("this API key is over its rate limit: retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// The server cannot answer yet (models loading, model not installed).
    #[error("{message}")]
    Unavailable { message: String },
    /// A bug or an inference failure: logged, answered as 500 without internals.
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// 422: the value of `field` is not acceptable.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: field.into(),
            message: message.into(),
        }
    }

    /// 400: the request body cannot be read as the expected JSON.
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid {
            status: StatusCode::BAD_REQUEST,
            field: field.into(),
            message: message.into(),
        }
    }

    /// 413: `field` is over a configured size limit.
    pub fn too_large(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            field: field.into(),
            message: message.into(),
        }
    }

    /// 408: the request body did not arrive within its deadline (`http::deadline`).
    pub fn body_timeout(message: impl Into<String>) -> Self {
        AppError::Invalid {
            status: StatusCode::REQUEST_TIMEOUT,
            field: "body".into(),
            message: message.into(),
        }
    }

    pub fn not_found(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::NotFound {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Invalid { status, .. } => *status,
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable { .. }
            | AppError::QueueTimeout { .. }
            | AppError::ShuttingDown { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            AppError::Invalid { status, .. } if *status == StatusCode::PAYLOAD_TOO_LARGE => {
                "too_large"
            }
            AppError::Invalid { status, .. } if *status == StatusCode::BAD_REQUEST => "bad_request",
            AppError::Invalid { status, .. } if *status == StatusCode::REQUEST_TIMEOUT => "timeout",
            AppError::Invalid { .. } => "invalid",
            AppError::NotFound { .. } => "not_found",
            AppError::Overloaded { .. } => "overloaded",
            AppError::QueueTimeout { .. } => "queue_timeout",
            AppError::ShuttingDown { .. } => "shutting_down",
            AppError::Unauthorized { .. } => "unauthorized",
            AppError::Forbidden { .. } => "forbidden",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Unavailable { .. } => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: String,
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
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
            kind: self.kind(),
            field,
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
        if let AppError::Unauthorized { .. } = &self {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"triage\""),
            );
        }
        resp
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        AppError::Internal(anyhow::Error::new(e).context("store"))
    }
}

pub type AppResult<T> = Result<T, AppError>;
