//! Graceful shutdown on SIGTERM / SIGINT: stop accepting, drain in-flight requests (SSE streams
//! end), bring the batch runner to a resumable point, let the webhook worker record the delivery
//! in progress, then checkpoint the store. `serve` bounds all of it by
//! `server.shutdown_timeout_secs`.

use super::tracker::Tracker;
use crate::http::AppState;
use anyhow::{anyhow, Context, Result};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// SIGTERM and SIGINT, registered at once (before the server listens), so that a signal that
/// comes early is never the default "terminate now".
pub struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate()).context("SIGTERM handler")?,
                int: signal(SignalKind::interrupt()).context("SIGINT handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next SIGTERM or SIGINT; its name.
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "ctrl-c"
        }
    }
}

/// The tasks shutdown waits for.
pub struct Running {
    /// `axum::serve` with graceful shutdown on `state.stopping()`.
    pub http: JoinHandle<std::io::Result<()>>,
    /// Handshakes and refusals of the listener.
    pub tracker: Arc<Tracker>,
    /// The webhook delivery worker, when webhooks are configured.
    pub webhooks: Option<JoinHandle<()>>,
}

/// Everything after the signal (`state.shutdown` is already true). Unbounded here: the caller
/// puts the deadline on it.
pub async fn drain(state: Arc<AppState>, run: Running) -> Result<()> {
    let s = state.clone();
    let batch = tokio::task::spawn_blocking(move || s.stop_jobs());
    let http = async {
        let r = run.http.await;
        run.tracker.idle().await;
        r
    };
    let (http, batch) = tokio::join!(http, batch);
    http.map_err(|e| anyhow!("server task: {e}"))?
        .context("serving")?;
    tracing::info!("shutdown: in-flight requests drained, listener closed");
    batch.map_err(|e| anyhow!("batch runner stop: {e}"))?;
    if let Some(w) = run.webhooks {
        w.await.map_err(|e| anyhow!("webhook worker: {e}"))?;
        tracing::info!("shutdown: webhook worker stopped (outbox state recorded)");
    }
    if let Ok(store) = state.store() {
        match tokio::task::spawn_blocking(move || store.checkpoint()).await {
            Ok(Ok(wal_bytes)) => tracing::info!(wal_bytes, "shutdown: store checkpointed"),
            // Not a loss: every acknowledged write is committed in the WAL.
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "shutdown: store checkpoint failed")
            }
            Err(e) => tracing::warn!(error = %e, "shutdown: store checkpoint task failed"),
        }
    }
    Ok(())
}
