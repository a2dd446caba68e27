//! Request-body deadline: a client must finish sending its body within `limits.body_timeout_secs`
//! (batch uploads: `batch.upload_timeout_secs`). Past it the body read fails, and whatever the
//! handler made of that failure is answered as 408 `timeout` on `body`. A slow sender thus cannot
//! hold one of the `max_concurrent_requests` permits (taken before the body is read) for longer.
//! Kept hand-written (issue 19): tower-http's `RequestBodyTimeoutLayer` restarts its timer at
//! every frame, so a sender trickling bytes never trips it; this is one deadline for the whole
//! body, with its own limit for batch uploads and the 408 answer above.

use crate::error::AppError;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// `inner`, failing once the deadline passes before its last frame (and setting `fired`).
struct Deadline {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    fired: Arc<AtomicBool>,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.fired.load(Ordering::Relaxed) {
            return Poll::Ready(None); // already failed: nothing more
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.fired.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err("request body deadline passed".into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.fired.load(Ordering::Relaxed) || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `body` with a deadline `secs` from now, and the flag that says it passed.
fn limit(body: Body, secs: u64) -> (Body, Arc<AtomicBool>) {
    let fired = Arc::new(AtomicBool::new(false));
    if http_body::Body::is_end_stream(&body) {
        return (body, fired); // nothing to wait for (GET, empty body)
    }
    let body = Body::new(Deadline {
        inner: body,
        sleep: Box::pin(tokio::time::sleep(Duration::from_secs(secs))),
        fired: fired.clone(),
    });
    (body, fired)
}

/// The middleware: the request's body gets the deadline `secs` (config key `key`); a request
/// whose body missed it is answered 408, whatever its handler answered.
pub async fn apply(
    State((secs, key)): State<(u64, &'static str)>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let (body, fired) = limit(body, secs);
    let resp = next.run(Request::from_parts(parts, body)).await;
    if fired.load(Ordering::Relaxed) {
        return AppError::body_timeout(format!(
            "the request body did not arrive within {secs} s ({key})"
        ))
        .into_response();
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_stalled_body_fails_at_the_deadline_and_a_prompt_one_passes() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
            );
        tx.send(Ok(Bytes::from_static(b"{\"te"))).await.unwrap();
        let (body, fired) = limit(Body::from_stream(stream), 1);
        let err = body.collect().await.unwrap_err();
        assert!(err.to_string().contains("deadline passed"), "{err}");
        assert!(fired.load(Ordering::Relaxed));
        drop(tx);

        let (body, fired) = limit(Body::from("{\"texts\": []}"), 5);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\"texts\": []}");
        assert!(!fired.load(Ordering::Relaxed));
    }
}
