//! Inference engine: model handles (tokenizer + queue + worker thread), loading, and the queue
//! wait bound: a job the worker has not started within `limits.queue_wait_ms` of the instant
//! its caller passes (`admitted`: the request's admission, given by the HTTP layer, or the end
//! of work with its own bound such as OCR) is shed with 503.

pub mod batcher;
pub mod config;
pub mod device;
pub mod models;
pub mod worker;

use crate::error::{AppError, AppResult};
use crate::heads::registry::HeadRegistry;
use crate::metrics::Metrics;
use crate::models::branch::Branch;
use crate::models::config::{ModelConfig, Overlong};
use crate::models::encoder::{Backend, Prepared, TextPrep};
pub use crate::models::open::{open_model, sentence_transformers_max_len, token_limit, OpenModel};
use anyhow::{Context, Result};
pub use config::EngineConfig;
pub use models::{Models, Slot, Usage};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What `/v1/models` says about a model.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelInfo {
    pub name: String,
    pub task: String,
    pub source: String,
    pub dim: usize,
    pub device: String,
    pub dtype: String,
    pub max_length: usize,
    pub prefix: String,
}

/// Text -> token ids. The real one is `TextPrep`; HTTP-layer tests use a mock.
pub trait Tokenize: Send + Sync + 'static {
    fn prepare(&self, text: &str, policy: Overlong) -> Result<Result<Prepared, usize>>;
}

impl Tokenize for TextPrep {
    fn prepare(&self, text: &str, policy: Overlong) -> Result<Result<Prepared, usize>> {
        TextPrep::prepare(self, text, policy)
    }
}

/// A served embedding model: its tokenizer, and the queue to its worker thread.
pub struct EmbedModel {
    pub info: ModelInfo,
    /// Fine-tuned branches by key (the sha256 of their layers) -> backend branch index.
    branches: HashMap<String, usize>,
    tok: Arc<dyn Tokenize>,
    /// Bounded in practice: HTTP admission (`limits.max_concurrent_requests`) caps the jobs
    /// that can be waiting, and the worker sheds those past their deadline.
    tx: std::sync::mpsc::Sender<worker::Job>,
    queue_wait: Duration,
    retry_after: u64,
}

impl EmbedModel {
    /// Start a worker thread around `backend` (no fine-tuned branches).
    pub fn start(
        info: ModelInfo,
        tok: Arc<dyn Tokenize>,
        backend: Box<dyn Backend>,
        cfg: &EngineConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>> {
        Self::start_with_branches(info, tok, backend, HashMap::new(), cfg, metrics)
    }

    /// Start a worker thread around `backend`, whose fine-tuned branches are named in `branches`.
    pub fn start_with_branches(
        info: ModelInfo,
        tok: Arc<dyn Tokenize>,
        backend: Box<dyn Backend>,
        branches: HashMap<String, usize>,
        cfg: &EngineConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let wcfg = worker::WorkerConfig {
            model: info.name.clone(),
            max_batch_tokens: cfg.batching.max_batch_tokens,
            max_batch_size: cfg.batching.max_batch_size,
        };
        std::thread::Builder::new()
            .name(format!("model-{}", info.name))
            .spawn(move || worker::run(backend, rx, wcfg, metrics))
            .context("spawning the model thread")?;
        Ok(Arc::new(EmbedModel {
            info,
            branches,
            tok,
            tx,
            queue_wait: Duration::from_millis(cfg.queue_wait_ms),
            retry_after: cfg.retry_after_secs,
        }))
    }

    /// Tokenize `texts` (on the blocking pool). `field` names the request field for errors.
    pub async fn prepare(
        &self,
        texts: Vec<String>,
        policy: Overlong,
        field: &str,
    ) -> AppResult<Vec<Prepared>> {
        let tok = self.tok.clone();
        let max = self.info.max_length;
        let out = tokio::task::spawn_blocking(move || {
            texts
                .iter()
                .map(|t| tok.prepare(t, policy))
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("tokenizer task: {e}")))??;
        out.into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.map_err(|n| {
                    AppError::too_large(
                        format!("{field}[{i}]"),
                        format!("text has {n} tokens, over the model's limit of {max} (limits.overlong = \"reject\")"),
                    )
                })
            })
            .collect()
    }

    /// Embed token sequences with the plain encoder; 503 when not started within the queue wait
    /// (counted from this call: batch work has no request to count from).
    pub async fn embed(&self, seqs: Vec<Vec<u32>>) -> AppResult<Vec<Vec<f32>>> {
        let out = self.embed_branches(seqs, vec![0], Instant::now()).await?;
        Ok(out.into_iter().map(|mut v| v.remove(0)).collect())
    }

    /// The backend index of a fine-tuned branch (None: the plain encoder).
    pub fn branch(&self, key: Option<&str>) -> AppResult<usize> {
        match key {
            None => Ok(0),
            Some(k) => self.branches.get(k).copied().ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!(
                    "model `{}` has no fine-tuned layers {k}",
                    self.info.name
                ))
            }),
        }
    }

    /// One trunk pass per sequence; per sequence, one embedding for each of `branches`. The
    /// job is shed (503 `queue_timeout`) when the worker has not started it within the queue
    /// wait of `admitted` (waits before the model, e.g. for the blocking pool under overload,
    /// count too); a dropped caller's job is dropped unrun.
    pub async fn embed_branches(
        &self,
        seqs: Vec<Vec<u32>>,
        branches: Vec<usize>,
        admitted: Instant,
    ) -> AppResult<worker::Embeddings> {
        let (reply, rx) = oneshot::channel();
        let queued = admitted;
        let job = worker::Job {
            seqs,
            branches,
            reply,
            since: queued,
            deadline: Some(queued + self.queue_wait),
        };
        self.tx.send(job).map_err(|_| AppError::Unavailable {
            message: "model worker has stopped".into(),
        })?;
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(worker::JobError::Shed)) => Err(AppError::QueueTimeout {
                retry_after: self.retry_after,
                waited_ms: queued.elapsed().as_millis() as u64,
                model: self.info.name.clone(),
            }),
            Ok(Err(worker::JobError::Failed(e))) => {
                Err(AppError::Internal(anyhow::anyhow!("inference: {e}")))
            }
            Err(_) => Err(AppError::Unavailable {
                message: "model worker has stopped".into(),
            }),
        }
    }
}

/// Load one configured model with the fine-tuned layers of the heads trained on it, and start
/// its worker.
pub fn load_model(
    mc: &ModelConfig,
    cfg: &EngineConfig,
    home: &Path,
    metrics: Arc<Metrics>,
    heads: &HeadRegistry,
) -> Result<Arc<EmbedModel>> {
    let spec = cfg.device;
    let dev = device::open(spec)?;
    let mut m = open_model(mc, home, &dev, cfg.precision)?;
    let mut branches = HashMap::new();
    for h in heads.all().filter(|h| h.meta.encoder == mc.name) {
        if let (Some(t), Some(bytes)) = (&h.meta.tuned_layers, &h.layers) {
            if !branches.contains_key(&t.sha256) {
                let b = Branch::from_bytes(bytes, m.embedder.model(), t.first, t.count, &dev)
                    .with_context(|| format!("fine-tuned layers of head `{}`", h.meta.name))?;
                branches.insert(t.sha256.clone(), m.embedder.add_branch(b)?);
            }
        }
    }
    let info = ModelInfo {
        name: mc.name.clone(),
        task: "embed".into(),
        source: mc.source.clone(),
        dim: m.embedder.config().hidden_size,
        device: device::describe(spec),
        dtype: m.embedder.precision().into(),
        max_length: m.max_length,
        prefix: mc.prefix.clone(),
    };
    EmbedModel::start_with_branches(
        info,
        Arc::new(m.prep),
        Box::new(m.embedder),
        branches,
        cfg,
        metrics,
    )
}
