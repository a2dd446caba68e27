//! Request-body deadline: a client must finish sending its body within `limits.body_timeout_secs`
//! (batch uploads: `batch.upload_timeout_secs`), else the read fails and the request gets 408
//! `timeout` on `body`. A slow sender thus cannot hold one of the `max_concurrent_requests`
//! permits (taken before the body is read) for longer than that.

use crate::error::AppError;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The error a body read fails with once its deadline has passed.
#[derive(Debug)]
pub struct BodyTimeout {
    secs: u64,
    key: &'static str,
}

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} s ({})",
            self.secs, self.key
        )
    }
}

impl Error for BodyTimeout {}

/// `inner`, failing with `BodyTimeout` once the deadline passes before its last frame.
struct Deadline {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    timeout: Option<BodyTimeout>,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.timeout.is_none() {
            return Poll::Ready(None); // already failed: nothing more
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(this.timeout.take().map(|t| Err(t.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.timeout.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `body` with a deadline `secs` from now; the error names the config `key`.
pub fn limit(body: Body, secs: u64, key: &'static str) -> Body {
    if http_body::Body::is_end_stream(&body) {
        return body; // nothing to wait for (GET, empty body)
    }
    Body::new(Deadline {
        inner: body,
        sleep: Box::pin(tokio::time::sleep(Duration::from_secs(secs))),
        timeout: Some(BodyTimeout { secs, key }),
    })
}

/// The middleware: the request's body gets the deadline `(secs, key)`.
pub async fn apply(
    State((secs, key)): State<(u64, &'static str)>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    next.run(Request::from_parts(parts, limit(body, secs, key)))
        .await
}

/// 408 when a body read failed because its deadline passed (`e` or any error under it).
pub fn timed_out(e: &(dyn Error + 'static)) -> Option<AppError> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<BodyTimeout>() {
            return Some(AppError::body_timeout(t.to_string()));
        }
        cur = err.source();
    }
    None
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
        let body = limit(Body::from_stream(stream), 1, "limits.body_timeout_secs");
        let err = body.collect().await.unwrap_err();
        let e = timed_out(&err).expect("a timeout");
        assert_eq!(e.status(), axum::http::StatusCode::REQUEST_TIMEOUT);
        assert!(
            e.to_string().contains("1 s (limits.body_timeout_secs)"),
            "{e}"
        );
        drop(tx);

        let body = limit(Body::from("{\"texts\": []}"), 5, "k");
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\"texts\": []}");
        assert!(timed_out(&std::io::Error::other("x")).is_none());
    }
}
