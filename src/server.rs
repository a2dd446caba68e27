//! `triage serve`: load models in the background, bind (HTTP, or HTTPS with `[server.tls]`),
//! serve until SIGINT/SIGTERM, then shut down gracefully within `server.shutdown_timeout_secs`.

mod listener;
mod shutdown;
mod tracker;

use crate::config::Config;
use crate::engine;
use crate::heads::registry::HeadRegistry;
use crate::http::{self, AppState, Slot};
use crate::metrics::Metrics;
use crate::state::Open;
use anyhow::{Context, Result};
use std::sync::Arc;

/// Start loading every configured model of `state` on the blocking pool.
/// `/health` answers at once; `/ready` turns 200 when all models are loaded.
pub fn start_loading(state: &Arc<AppState>) {
    let home = state.config.home();
    for mc in state.config.models.clone() {
        let (st, home) = (state.clone(), home.clone());
        tokio::task::spawn_blocking(move || {
            let t = std::time::Instant::now();
            let metrics = st.metrics.clone();
            match engine::load_model(&mc, &st.config.engine(), &home, metrics, &st.heads) {
                Ok(m) => {
                    tracing::info!(model = %mc.name, secs = t.elapsed().as_secs_f32(), "model ready");
                    // Marked before the slot is ready, so /ready never answers 200 in between.
                    let seed = mc.name == st.models.default_name()
                        && st.kb().is_ok_and(|k| k.mark_seeding());
                    st.set_slot(&mc.name, Slot::Ready(m));
                    if seed {
                        seed_kb(st);
                    }
                }
                Err(e) => {
                    tracing::error!(model = %mc.name, error = %format!("{e:#}"), "model failed to load");
                    st.set_slot(&mc.name, Slot::Failed(format!("{e:#}")));
                }
            }
        });
    }
}

/// Fill the default knowledge base with the shipped articles (it was empty; `/ready` waits).
fn seed_kb(st: Arc<AppState>) {
    let Ok(kb) = st.kb() else { return };
    tokio::runtime::Handle::current().spawn(async move {
        match kb.seed_builtin(&st.models).await {
            Ok(Some(w)) => tracing::info!(kb = %w.kb, articles = w.created + w.replaced, chunks = w.chunks, "knowledge base seeded"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot seed the default knowledge base"),
        }
    });
}

/// A state with neither store nor vision and every configured model loaded now (blocking):
/// for offline commands and tests.
pub fn loaded_state(cfg: Config) -> Result<Arc<AppState>> {
    loaded(cfg, Open::default())
}

/// A state that opens what `open` says, with every configured model loaded now (blocking).
pub fn loaded(cfg: Config, open: Open) -> Result<Arc<AppState>> {
    let heads = HeadRegistry::load(&cfg.intent, &cfg.emotion, &cfg.models)?;
    let state = AppState::open(cfg, Arc::new(Metrics::default()), heads, open)?;
    let home = state.config.home();
    for mc in state.config.models.clone() {
        let m = engine::load_model(
            &mc,
            &state.config.engine(),
            &home,
            state.metrics.clone(),
            &state.heads,
        )?;
        state.set_slot(&mc.name, Slot::Ready(m));
    }
    Ok(state)
}

pub async fn serve(cfg: Config) -> Result<()> {
    let mut signals = shutdown::Signals::new()?;
    // Heads and TLS files are checked before anything listens: a bad one stops the start.
    let heads = HeadRegistry::load(&cfg.intent, &cfg.emotion, &cfg.models)?;
    let tls = cfg
        .server
        .tls
        .as_ref()
        .map(listener::acceptor)
        .transpose()?;
    let bind = cfg.server.bind.clone();
    let tcp = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(addr = %tcp.local_addr()?, scheme, "listening");
    // Everything the handlers share is built before the listener serves a request.
    // Blocking (the store connects and migrates; PostgreSQL's client must not run on a task).
    let state = tokio::task::spawn_blocking(move || {
        AppState::open(cfg, Arc::new(Metrics::default()), heads, Open::ALL)
    })
    .await
    .context("state task")??;
    start_loading(&state);
    // Blocking: with PostgreSQL the intents are read from the shared store.
    let st = state.clone();
    tokio::task::spawn_blocking(move || st.intents.load(&st.config.home(), &st.heads))
        .await
        .context("intents task")??;
    let webhooks = start_store_workers(&state);
    crate::http::batch::start(&state)?;

    let drain = listener::Drain {
        tracker: tracker::Tracker::new(),
        answer: listener::refusal(state.config.limits.retry_after_secs).await,
    };
    let app = http::router(state.clone());
    let st = state.clone();
    let stopping = async move { st.stopping().await };
    let mut http = match tls {
        None => {
            let l = listener::Plain::new(tcp, drain.clone());
            tokio::spawn(async move { axum::serve(l, app).with_graceful_shutdown(stopping).await })
        }
        Some(acceptor) => {
            let l = listener::Tls::new(tcp, acceptor, drain.clone())?;
            tokio::spawn(async move { axum::serve(l, app).with_graceful_shutdown(stopping).await })
        }
    };
    let signal = tokio::select! {
        r = &mut http => {
            r.map_err(|e| anyhow::anyhow!("server task: {e}"))??;
            anyhow::bail!("the server stopped by itself");
        }
        s = signals.recv() => s,
    };
    let secs = state.config.server.shutdown_timeout_secs;
    tracing::info!(
        signal,
        timeout_secs = secs,
        "shutting down: draining in-flight requests"
    );
    state.shutdown.send_replace(true);
    let running = shutdown::Running {
        http,
        tracker: drain.tracker,
        webhooks,
    };
    let deadline = std::time::Duration::from_secs(secs);
    tokio::select! {
        r = tokio::time::timeout(deadline, shutdown::drain(state.clone(), running)) => match r {
            Ok(r) => r.map(|()| tracing::info!("stopped")),
            Err(_) => {
                tracing::error!(timeout_secs = secs, "shutdown deadline passed with work still running (server.shutdown_timeout_secs): exiting non-zero");
                anyhow::bail!("shutdown took longer than server.shutdown_timeout_secs ({secs} s)")
            }
        },
        s = signals.recv() => {
            tracing::error!(signal = s, "second signal during shutdown: exiting non-zero");
            anyhow::bail!("interrupted by {s} during shutdown")
        }
    }
}

/// Enforce the store's retention now and hourly, and start the webhook worker (returned: it
/// returns at graceful shutdown). Nothing to start without a store.
pub fn start_store_workers(state: &Arc<AppState>) -> Option<tokio::task::JoinHandle<()>> {
    let cfg = &state.config;
    let store = state.store().ok()?;
    let unknown = cfg.routing.unknown_intents(&|name| {
        state
            .heads
            .intents
            .values()
            .any(|h| h.meta.labels.iter().any(|l| l == name))
    });
    if !unknown.is_empty() {
        tracing::warn!(intents = ?unknown, "the routing policy names intents no trained set has (few-shot intents may add them)");
    }
    let kept = store.clone();
    tokio::spawn(async move {
        loop {
            let s = kept.clone();
            match tokio::task::spawn_blocking(move || s.enforce_retention(crate::store::now_ms()))
                .await
            {
                Ok(Ok(n)) if n > 0 => {
                    tracing::info!(deleted = n, "retention: conversations deleted")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "retention failed"),
                _ => {}
            }
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
    if cfg.webhooks.urls.is_empty() {
        return None;
    }
    let worker = crate::webhook::worker::Worker {
        config: cfg.webhooks.clone(),
        store,
        models: state.models.clone(),
        metrics: state.metrics.clone(),
        wake: state.webhook_wake.clone(),
        shutdown: state.shutdown.subscribe(),
        summary_words: cfg.summarize.max_words,
    };
    Some(tokio::spawn(crate::webhook::worker::run(worker)))
}
