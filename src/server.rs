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
use anyhow::{Context, Result};
use std::sync::Arc;

/// Build the state and start loading every configured model on the blocking pool.
/// `/health` answers at once; `/ready` turns 200 when all models are loaded.
pub fn start_loading(cfg: Config, heads: HeadRegistry) -> Arc<AppState> {
    let metrics = Arc::new(Metrics::default());
    let state = AppState::new(cfg, metrics.clone(), heads);
    let home = state.config.home();
    for mc in state.config.models.clone() {
        let (st, home, metrics) = (state.clone(), home.clone(), metrics.clone());
        tokio::task::spawn_blocking(move || {
            let t = std::time::Instant::now();
            match engine::load_model(&mc, &st.config.engine(), &home, metrics, &st.heads) {
                Ok(m) => {
                    tracing::info!(model = %mc.name, secs = t.elapsed().as_secs_f32(), "model ready");
                    st.set_slot(&mc.name, Slot::Ready(m));
                }
                Err(e) => {
                    tracing::error!(model = %mc.name, error = %format!("{e:#}"), "model failed to load");
                    st.set_slot(&mc.name, Slot::Failed(format!("{e:#}")));
                }
            }
        });
    }
    state
}

/// A state with every configured model loaded now (blocking): for offline commands and tests.
pub fn loaded_state(cfg: Config) -> Result<Arc<AppState>> {
    let heads = HeadRegistry::load(&cfg.intent, &cfg.emotion, &cfg.models)?;
    let metrics = Arc::new(Metrics::default());
    let state = AppState::new(cfg, metrics.clone(), heads);
    let home = state.config.home();
    for mc in state.config.models.clone() {
        let m = engine::load_model(
            &mc,
            &state.config.engine(),
            &home,
            metrics.clone(),
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
    let state = start_loading(cfg, heads);
    state.intents.load(&state.config.home(), &state.heads)?;
    let webhooks = open_store_worker(&state)?;
    crate::http::batch::start(&state)?;
    start_vision(&state)?;

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

/// Open the conversation store, enforce retention now and hourly, start the webhook worker.
pub fn open_store(state: &Arc<AppState>) -> Result<()> {
    open_store_worker(state).map(|_| ())
}

/// `open_store`, returning the webhook worker (it returns at graceful shutdown).
fn open_store_worker(state: &Arc<AppState>) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let cfg = &state.config;
    let path = cfg.store.resolved_path(&cfg.home());
    let store = Arc::new(crate::store::Store::open(&path, cfg.store.clone())?);
    state.set_store(store.clone())?;
    tracing::info!(path = %path.display(), "conversation store open");
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
        return Ok(None);
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
    Ok(Some(tokio::spawn(crate::webhook::worker::run(worker))))
}

/// Check the fault catalog (a malformed one stops the start) and start the OCR pool; a missing
/// Tesseract only disables `/v1/screenshot` (503 saying what to install).
pub fn start_vision(state: &Arc<AppState>) -> Result<()> {
    let cfg = &state.config.screenshot;
    let v = crate::vision::Vision::start(
        cfg,
        state.models.clone(),
        state.lang.clone(),
        state.config.limits.retry_after_secs,
    )?;
    if let Err(e) = crate::vision::ocr::OcrPool::probe(cfg.tessdata.as_deref(), &cfg.languages) {
        tracing::warn!(error = %e, "screenshot OCR unavailable");
        v.ocr.set_unavailable(e);
    }
    state.set_vision(Arc::new(v));
    Ok(())
}
