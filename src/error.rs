//! The one error type of the services: what went wrong and which part of the input is at fault,
//! without HTTP types. `http::error` maps it to a status and a JSON body, in one place.

/// Why an input is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// The value is not acceptable (HTTP 422).
    Unacceptable,
    /// The input cannot be read as the expected format (400).
    Malformed,
    /// Over a configured size limit (413).
    TooLarge,
    /// Did not arrive within its deadline (408).
    Timeout,
    /// Conflicts with the current state (409).
    Conflict,
    /// A media type that is not supported (415).
    UnsupportedMedia,
    /// An operation the target does not offer (405).
    NotAllowed,
}

/// Every failure a request can meet. `field` names the part of the request at fault.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input is malformed, unacceptable or violates a limit (400 / 408 / 409 / 413 / 415 / 422).
    #[error("{message}")]
    Invalid {
        kind: InvalidKind,
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
    /// The database cannot be reached (PostgreSQL down, restarting, or every connection busy):
    /// 503 with `Retry-After`; the replica recovers by itself once it answers again.
    #[error("the database is unavailable: {message}")]
    StoreDown { message: String },
    /// A bug or an inference failure: logged, answered as 500 without internals.
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// 422: the value of `field` is not acceptable.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid {
            kind: InvalidKind::Unacceptable,
            field: field.into(),
            message: message.into(),
        }
    }

    /// 400: the request body cannot be read as the expected JSON.
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid {
            kind: InvalidKind::Malformed,
            field: field.into(),
            message: message.into(),
        }
    }

    /// 413: `field` is over a configured size limit.
    pub fn too_large(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid {
            kind: InvalidKind::TooLarge,
            field: field.into(),
            message: message.into(),
        }
    }

    /// 408: the request body did not arrive within its deadline (`http::deadline`).
    pub fn body_timeout(message: impl Into<String>) -> Self {
        AppError::Invalid {
            kind: InvalidKind::Timeout,
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

    /// 409: `field` conflicts with the current state.
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid {
            kind: InvalidKind::Conflict,
            field: field.into(),
            message: message.into(),
        }
    }

    /// 415: `field` is not of a supported media type.
    pub fn unsupported_media(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid {
            kind: InvalidKind::UnsupportedMedia,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The `kind` of the JSON error body: a stable name clients can match on.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Invalid { kind, .. } => match kind {
                InvalidKind::TooLarge => "too_large",
                InvalidKind::Malformed => "bad_request",
                InvalidKind::Timeout => "timeout",
                _ => "invalid",
            },
            AppError::NotFound { .. } => "not_found",
            AppError::Overloaded { .. } => "overloaded",
            AppError::QueueTimeout { .. } => "queue_timeout",
            AppError::ShuttingDown { .. } => "shutting_down",
            AppError::Unauthorized { .. } => "unauthorized",
            AppError::Forbidden { .. } => "forbidden",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Unavailable { .. } => "unavailable",
            AppError::StoreDown { .. } => "database_unavailable",
            AppError::Internal(_) => "internal",
        }
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        AppError::Internal(anyhow::Error::new(e).context("store"))
    }
}

impl From<postgres::Error> for AppError {
    fn from(e: postgres::Error) -> Self {
        if connection_lost(&e) {
            AppError::StoreDown {
                message: e.to_string(),
            }
        } else {
            AppError::Internal(anyhow::Error::new(e).context("store"))
        }
    }
}

/// Whether a PostgreSQL error means the server is unreachable or going away (so the request may
/// be retried) rather than a bad statement: a closed connection, an I/O error, SQLSTATE class 08
/// (connection exception) or 57P01-57P03 (shutting down, crashed, starting up).
pub fn connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        return c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03");
    }
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

pub type AppResult<T> = Result<T, AppError>;
