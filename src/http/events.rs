//! Live flags for agents: Server-Sent Events read from the store after a sequence number, so
//! `Last-Event-ID` resumes exactly and a client that never reads holds at most one batch.
//! Streams end when graceful shutdown begins (clients reconnect with `Last-Event-ID`).

use super::triage::check_conversation_id;
use super::AppState;
use crate::error::{AppError, AppResult};
use crate::http::error::ErrorBody;
use crate::http::openapi::{BadInput, Guarded};
use crate::store::events::{EventFilter, StoredEvent};
use crate::store::Store;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume after this event (for clients that cannot set the `Last-Event-ID` header;
    /// `0` replays everything kept).
    #[serde(default)]
    pub last_event_id: Option<i64>,
    #[serde(default)]
    pub queue: Option<String>,
}

/// `GET /v1/conversations/{id}/events`: the conversation's events (it need not exist yet).
#[utoipa::path(
    get, path = "/v1/conversations/{id}/events", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id (it need not exist yet)"), EventsQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event")),
    responses((status = 200, description = "Server-Sent Events: `event: triage` (or `qa` for an agent reply's findings, on the quality queue), `id:` the event's sequence number, `data:` the event JSON", content_type = "text/event-stream", body = String),
        BadInput, Guarded)
)]
pub async fn conversation(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    check_conversation_id(&id)?;
    let Query(q) = q.map_err(|e| AppError::bad_request("query", e.body_text()))?;
    if q.queue.is_some() {
        return Err(AppError::invalid(
            "queue",
            "not accepted here: use /v1/events",
        ));
    }
    open(
        &state,
        EventFilter::Conversation(id),
        &headers,
        q.last_event_id,
    )
}

/// `GET /v1/events[?queue=NAME]`: every event, or one queue's.
#[utoipa::path(
    get, path = "/v1/events", tag = "events", security(("bearer" = [])),
    params(EventsQuery, ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event")),
    responses((status = 200, description = "Server-Sent Events: `event: triage` (or `qa` for an agent reply's findings, on the quality queue), `id:` the event's sequence number, `data:` the event JSON", content_type = "text/event-stream", body = String),
        (status = 404, description = "Unknown queue", body = ErrorBody), BadInput, Guarded)
)]
pub async fn all(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let Query(q) = q.map_err(|e| AppError::bad_request("query", e.body_text()))?;
    let filter = match q.queue {
        Some(name) => {
            let mut known = state.config.routing.queue_names();
            known.push(state.config.qa.queue.clone());
            if !known.contains(&name) {
                return Err(AppError::not_found(
                    "queue",
                    format!(
                        "unknown queue; the policy's queues and the quality queue: {}",
                        known.join(", ")
                    ),
                ));
            }
            EventFilter::Queue(name)
        }
        None => EventFilter::All,
    };
    open(&state, filter, &headers, q.last_event_id)
}

/// Decrements the open-stream count when the stream is dropped (client gone).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Cursor {
    store: Arc<Store>,
    filter: EventFilter,
    rx: tokio::sync::watch::Receiver<i64>,
    last: i64,
    buf: VecDeque<StoredEvent>,
    /// An `assist` frame to send after the `triage` frame of the same event.
    pending: Option<Event>,
    stop: tokio::sync::watch::Receiver<bool>,
    _slot: Slot,
}

fn open(
    state: &Arc<AppState>,
    filter: EventFilter,
    headers: &HeaderMap,
    query_last: Option<i64>,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let header_last = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    AppError::bad_request("Last-Event-ID", "must be a non-negative integer")
                })?,
        ),
    };
    if query_last.is_some_and(|n| n < 0) {
        return Err(AppError::invalid("last_event_id", "must be >= 0"));
    }
    let store = state.store()?;
    let cfg = &state.config.store;
    let open = state.subscribers.fetch_add(1, Ordering::SeqCst);
    let slot = Slot(state.subscribers.clone());
    if open >= cfg.max_subscribers {
        return Err(AppError::Unavailable {
            message: format!(
                "too many open event streams ({}; store.max_subscribers)",
                cfg.max_subscribers
            ),
        });
    }
    let rx = state.events.subscribe();
    let last = header_last.or(query_last).unwrap_or_else(|| *rx.borrow());
    let cursor = Cursor {
        store,
        filter,
        rx,
        last,
        buf: VecDeque::new(),
        pending: None,
        stop: state.shutdown.subscribe(),
        _slot: slot,
    };
    let stream = stream::unfold(cursor, next_event);
    let keep = KeepAlive::new().interval(Duration::from_secs(cfg.keepalive_secs));
    Ok(Sse::new(stream).keep_alive(keep))
}

/// The `assist` frame of an event whose route left the bot: the conversation, and the
/// knowledge base's suggestions for the message (`GET .../assist` has the rest). It has no id
/// of its own (it rides on the `triage` frame before it, whose id a resume starts after), so
/// clients counting ids see each event once.
fn assist_frame(e: &StoredEvent) -> Option<Event> {
    let v: serde_json::Value = serde_json::from_str(&e.data).ok()?;
    let a = v.get("assist")?;
    let data = serde_json::json!({
        "seq": e.seq,
        "conversation_id": v["conversation_id"],
        "url": a["url"],
        "suggestions": a["suggestions"],
    });
    Some(Event::default().event("assist").data(data.to_string()))
}

/// `qa` for an inspected agent reply's findings (`store/qa.rs`), else `triage`.
fn frame_name(data: &str) -> &'static str {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<&'a str>,
    }
    match serde_json::from_str::<Kind>(data) {
        Ok(Kind { kind: Some("qa") }) => "qa",
        _ => "triage",
    }
}

async fn next_event(mut c: Cursor) -> Option<(Result<Event, Infallible>, Cursor)> {
    loop {
        if *c.stop.borrow() {
            return None;
        }
        if let Some(ev) = c.pending.take() {
            return Some((Ok(ev), c));
        }
        if let Some(e) = c.buf.pop_front() {
            c.last = e.seq;
            c.pending = assist_frame(&e);
            let ev = Event::default()
                .id(e.seq.to_string())
                .event(frame_name(&e.data))
                .data(e.data);
            return Some((Ok(ev), c));
        }
        // Mark the current newest seen before reading, so a later event always wakes us.
        c.rx.borrow_and_update();
        let (store, filter, last) = (c.store.clone(), c.filter.clone(), c.last);
        let batch = tokio::task::spawn_blocking(move || store.events_after(&filter, last, 100))
            .await
            .ok()?;
        match batch {
            Ok(b) if !b.is_empty() => c.buf.extend(b),
            Ok(_) => {
                tokio::select! {
                    r = c.rx.changed() => r.ok()?,
                    _ = c.stop.wait_for(|s| *s) => return None,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "event stream: store read failed");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_that_left_the_bot_also_goes_out_as_assist() {
        let left = StoredEvent {
            seq: 7,
            data: serde_json::json!({
                "conversation_id": "c1",
                "flags": ["left_bot"],
                "assist": {"url": "/v1/conversations/c1/assist", "suggestions": [{"key": "kb:default/a"}]},
            })
            .to_string(),
        };
        assert!(assist_frame(&left).is_some());
        let stays = StoredEvent {
            seq: 8,
            data: r#"{"conversation_id": "c1", "flags": []}"#.into(),
        };
        assert!(assist_frame(&stays).is_none());
        let torn = StoredEvent {
            seq: 9,
            data: "{".into(),
        };
        assert!(assist_frame(&torn).is_none());
    }
}
