//! Admission control: at most `limits.max_concurrent_requests` API requests are handled at once;
//! one more gets 429 `overloaded` with `Retry-After` at once (no unbounded queue in front of the
//! models). Admitted requests that the model has not started within `limits.queue_wait_ms` of
//! their admission (or the end of their OCR) are shed by the engine (503 `queue_timeout`; see
//! `engine::ADMITTED`). Probes and metrics are outside this layer (`http::router`), so a loaded
//! server still reports.

use crate::config::LimitsConfig;
use crate::error::AppError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tokio::sync::Semaphore;

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
pub async fn admit(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    match gate.permits.clone().try_acquire_owned() {
        Ok(permit) => {
            let admitted = std::time::Instant::now();
            let resp = crate::engine::ADMITTED
                .scope(std::cell::Cell::new(admitted), next.run(req))
                .await;
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
