//! The delivery worker: takes due rows from the outbox, fixes each body once (decision +
//! handoff package as of that turn), POSTs it signed with its idempotency key, and retries
//! failures with exponential backoff and jitter. Deliveries survive restarts in the outbox.
//! At graceful shutdown it finishes (and records) the delivery in progress, then returns.
//! The backoff stays hand-written (issue 19): each failure stores the row's next due time in the
//! outbox (`WebhookConfig::backoff_ms` plus jitter), so the schedule survives restarts; retry
//! crates (`backoff`, `backon`) drive an in-memory loop around one call and keep no such state.

use super::WebhookConfig;
use crate::engine::Models;
use crate::error::AppResult;
use crate::metrics::Metrics;
use crate::store::{now_ms, outbox::OutboxRow, Store};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Rows claimed at once. With several replicas a claim is a lease that must outlast delivering
/// them all (each bounded by `webhooks.timeout_secs`), and a replica that dies holding it delays
/// those rows (and later ones of their conversations) until it ends: a few rows keep it short.
const CLAIM: u32 = 4;

/// What the delivery worker needs: the outbox, the models for handoff summaries, and the signals
/// that wake it (a queued delivery) and stop it (graceful shutdown).
pub struct Worker {
    pub config: WebhookConfig,
    pub store: Arc<Store>,
    pub models: Arc<Models>,
    pub metrics: Arc<Metrics>,
    /// Notified when a delivery is queued.
    pub wake: Arc<Notify>,
    /// Turns true when graceful shutdown begins.
    pub shutdown: watch::Receiver<bool>,
    /// `summarize.max_words` of the handoff package's summary.
    pub summary_words: usize,
}

impl Worker {
    fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    async fn stopping(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// Run until graceful shutdown (spawned once per server when webhooks are configured).
pub async fn run(state: Worker) {
    let state = Arc::new(state);
    let cfg = state.config.clone();
    let Some(key) = cfg.key() else { return };
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(cfg.timeout_secs))
        .redirects(0)
        .build();
    let lease_ms = i64::from(CLAIM) * (cfg.timeout_secs as i64 * 1000 + 1000) + 5000;
    while !state.shutting_down() {
        let store = state.store.clone();
        let due = tokio::task::spawn_blocking(move || store.outbox_due(now_ms(), CLAIM, lease_ms))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("outbox task: {e}").into()));
        let rows = match due {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "webhook outbox unreadable; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = state.stopping() => {}
                }
                continue;
            }
        };
        for row in &rows {
            if state.shutting_down() {
                break;
            }
            if let Err(e) = deliver(&state, &agent, &key, row).await {
                tracing::warn!(error = %e, "webhook bookkeeping failed");
            }
        }
        if rows.is_empty() {
            wait_for_work(&state).await;
        }
    }
}

/// Sleep until the next row falls due, a new row is queued, or 5 s pass.
async fn wait_for_work(state: &Arc<Worker>) {
    let s = state.store.clone();
    let next = tokio::task::spawn_blocking(move || s.outbox_next_due())
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    let wait = next.map_or(5000, |n| (n - now_ms()).clamp(0, 5000)) as u64;
    tokio::select! {
        _ = state.wake.notified() => {}
        _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
        _ = state.stopping() => {}
    }
}

async fn deliver(
    state: &Arc<Worker>,
    agent: &ureq::Agent,
    key: &str,
    row: &OutboxRow,
) -> AppResult<()> {
    let store = state.store.clone();
    let body = match &row.body {
        Some(b) => b.clone(),
        None => {
            let b = body_for(state, row).await;
            let (s, id, b2) = (store.clone(), row.id, b.clone());
            tokio::task::spawn_blocking(move || s.outbox_set_body(id, &b2))
                .await
                .map_err(|e| anyhow::anyhow!("outbox task: {e}"))??;
            b
        }
    };
    // A body written with its row (a quality inspection's fatal finding) names its event.
    let event = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(v) if v["event"] == "qa.fatal" => "qa.fatal",
        _ => "route.changed",
    };
    let (agent, url, idem, secret) = (
        agent.clone(),
        row.url.clone(),
        row.key.clone(),
        key.to_string(),
    );
    let attempt = row.attempts + 1;
    let sent = tokio::task::spawn_blocking(move || {
        let t = now_ms() / 1000;
        agent
            .post(&url)
            .set("Content-Type", "application/json")
            .set("Idempotency-Key", &idem)
            .set("X-Triage-Event", event)
            .set("X-Triage-Attempt", &attempt.to_string())
            .set(
                "X-Triage-Signature",
                &super::sign::signature(&secret, t, &body),
            )
            .send_string(&body)
            .map(|r| r.status())
            .map_err(|e| match e {
                ureq::Error::Status(code, _) => format!("HTTP {code}"),
                ureq::Error::Transport(t) => format!("transport: {}", t.kind()),
            })
    })
    .await
    .map_err(|e| anyhow::anyhow!("webhook task: {e}"))?;
    let cfg = &state.config;
    let (id, now) = (row.id, now_ms());
    let store2 = store.clone();
    match sent {
        Ok(_) => {
            tokio::task::spawn_blocking(move || store2.outbox_delivered(id, now))
                .await
                .map_err(|e| anyhow::anyhow!("outbox task: {e}"))??;
            state.metrics.inc(
                "triage_webhook_deliveries_total",
                "Webhook deliveries by outcome.",
                &[("outcome", "delivered")],
                1,
            );
        }
        Err(err) => {
            let dead = attempt >= cfg.max_attempts;
            let base = cfg.backoff_ms(attempt);
            let jitter = rand::rng().random_range(0..=base / 4 + 1);
            let next = now + (base + jitter) as i64;
            tracing::warn!(attempt, dead, error = %err, "webhook delivery failed");
            tokio::task::spawn_blocking(move || store2.outbox_failed(id, next, dead, &err))
                .await
                .map_err(|e| anyhow::anyhow!("outbox task: {e}"))??;
            let outcome = if dead { "dead" } else { "retry" };
            state.metrics.inc(
                "triage_webhook_deliveries_total",
                "Webhook deliveries by outcome.",
                &[("outcome", outcome)],
                1,
            );
        }
    }
    Ok(())
}

/// `{"event", "idempotency_key", "conversation_id", "turn", "decision", "handoff"}`; the
/// package is `null` (with `handoff_error`) when it cannot be built, e.g. after retention.
async fn body_for(state: &Arc<Worker>, row: &OutboxRow) -> String {
    let decision: serde_json::Value =
        serde_json::from_str(&row.decision).unwrap_or(serde_json::Value::Null);
    let (handoff, error) = match crate::handoff::build(
        &state.store,
        &state.models,
        state.summary_words,
        &row.conversation_id,
        Some(row.turn),
        std::time::Instant::now(),
    )
    .await
    {
        Ok(p) => (serde_json::to_value(p).unwrap_or_default(), None),
        Err(e) => (serde_json::Value::Null, Some(e.to_string())),
    };
    serde_json::json!({
        "event": "route.changed",
        "idempotency_key": row.key,
        "conversation_id": row.conversation_id,
        "turn": row.turn,
        "decision": decision,
        "handoff": handoff,
        "handoff_error": error,
    })
    .to_string()
}
