//! Admission control: at most `limits.max_concurrent_requests` API requests are handled at once;
//! one more gets 429 `overloaded` with `Retry-After` at once (no unbounded queue in front of the
//! models). Each admitted request carries its admission instant ([`Admitted`], an extension its
//! handler extracts and passes to the services); the engine sheds a model job not started within
//! `limits.queue_wait_ms` of it (or of the end of the request's OCR): 503 `queue_timeout`. Probes and metrics are outside this layer (`http::router`), so a loaded
//! server still reports.

use crate::config::LimitsConfig;
use crate::error::AppError;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

/// When the admission layer admitted a request: handlers pass it to the services, whose model
/// calls count their queue wait from it. Outside the layer (nothing sets it) it is now.
#[derive(Debug, Clone, Copy)]
pub struct Admitted(pub Instant);

impl<S: Send + Sync> FromRequestParts<S> for Admitted {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let now = || Admitted(Instant::now());
        Ok(parts
            .extensions
            .get::<Admitted>()
            .copied()
            .unwrap_or_else(now))
    }
}

/// The permits of one router.
pub struct Gate {
    permits: Arc<Semaphore>,
    max: usize,
    retry_after: u64,
}

impl Gate {
    pub fn new(limits: &LimitsConfig) -> Self {
        Gate {
            permits: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            max: limits.max_concurrent_requests,
            retry_after: limits.retry_after_secs,
        }
    }
}

/// The middleware: hold a permit while the handler runs (until the response head is ready;
/// streamed bodies such as SSE hold none), or answer 429.
pub async fn admit(State(gate): State<Arc<Gate>>, mut req: Request, next: Next) -> Response {
    match gate.permits.clone().try_acquire_owned() {
        Ok(permit) => {
            req.extensions_mut().insert(Admitted(Instant::now()));
            let resp = next.run(req).await;
            drop(permit);
            resp
        }
        Err(_) => AppError::Overloaded {
            retry_after: gate.retry_after,
            message: format!(
                "{} requests are in progress (limits.max_concurrent_requests)",
                gate.max
            ),
        }
        .into_response(),
    }
}
