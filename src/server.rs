//! `triage serve`: load models in the background, bind, serve until SIGINT/SIGTERM.

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
            match engine::load_model(&mc, &st.config, &home, metrics, &st.heads) {
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
    let heads = HeadRegistry::load(&cfg)?;
    let metrics = Arc::new(Metrics::default());
    let state = AppState::new(cfg, metrics.clone(), heads);
    let home = state.config.home();
    for mc in state.config.models.clone() {
        let m = engine::load_model(&mc, &state.config, &home, metrics.clone(), &state.heads)?;
        state.set_slot(&mc.name, Slot::Ready(m));
    }
    Ok(state)
}

pub async fn serve(cfg: Config) -> Result<()> {
    // Heads are small and checked before anything listens: a bad one stops the start.
    let heads = HeadRegistry::load(&cfg)?;
    let bind = cfg.server.bind.clone();
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let state = start_loading(cfg, heads);
    state.intents.load(&state.config, &state.heads)?;
    open_store(&state)?;
    crate::http::batch::start(&state)?;
    start_vision(&state)?;
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Open the conversation store, enforce retention now and hourly, start the webhook worker.
pub fn open_store(state: &Arc<AppState>) -> Result<()> {
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
    tokio::spawn(async move {
        loop {
            let s = store.clone();
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
    if !cfg.webhooks.urls.is_empty() {
        tokio::spawn(crate::webhook::worker::run(state.clone()));
    }
    Ok(())
}

/// Check the fault catalog (a malformed one stops the start) and start the OCR pool; a missing
/// Tesseract only disables `/v1/screenshot` (503 saying what to install).
pub fn start_vision(state: &Arc<AppState>) -> Result<()> {
    let cfg = &state.config.screenshot;
    let v = crate::vision::Vision::start(cfg)?;
    if let Err(e) = crate::vision::ocr::OcrPool::probe(cfg.tessdata.as_deref(), &cfg.languages) {
        tracing::warn!(error = %e, "screenshot OCR unavailable");
        v.ocr.set_unavailable(e);
    }
    state.set_vision(Arc::new(v));
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: draining in-flight requests");
}
