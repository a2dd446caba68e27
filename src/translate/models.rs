//! The seq2seq model cache (translation and abstractive summarization): each model loads once,
//! on first use, on a blocking thread; generation runs one job at a time with a bounded queue.

use super::segment::segments;
use crate::error::{AppError, AppResult};
use crate::models::source::Source;
use crate::seq2seq::{GenerateOptions, Seq2Seq};
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Jobs allowed to wait for the generation slot before 429.
const MAX_WAITING: usize = 16;

pub struct Seq2SeqModels {
    home: PathBuf,
    /// The configured device, or why it cannot be opened (said when a model is first needed,
    /// never replaced by the CPU).
    device: Result<candle_core::Device, String>,
    loaded: Mutex<HashMap<String, Arc<Seq2Seq>>>,
    /// One generation at a time (it uses every core already).
    gate: tokio::sync::Semaphore,
    waiting: AtomicUsize,
    retry_after: u64,
}

impl Seq2SeqModels {
    pub fn new(
        home: PathBuf,
        device: Result<candle_core::Device, String>,
        retry_after: u64,
    ) -> Self {
        Seq2SeqModels {
            home,
            device,
            loaded: Mutex::new(HashMap::new()),
            gate: tokio::sync::Semaphore::new(1),
            waiting: AtomicUsize::new(0),
            retry_after,
        }
    }

    /// The model named by `source` (config string), loading it if needed. Not installed:
    /// 503 saying how to install it.
    pub async fn get(&self, source: &str, what: &str) -> AppResult<Arc<Seq2Seq>> {
        if let Some(m) = self.lock().get(source) {
            return Ok(m.clone());
        }
        let device = self.device.clone().map_err(|e| AppError::Unavailable {
            message: format!("the {what} model `{source}` cannot run: server.device: {e}"),
        })?;
        let (src, home) = (source.to_string(), self.home.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            let dir = Source::parse(&src)?.resolve_seq2seq(&home)?;
            Seq2Seq::load(&dir, &device)
        })
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("model load task: {e}")))?;
        let model = Arc::new(loaded.map_err(|e| AppError::Unavailable {
            message: format!(
                "the {what} model `{source}` is not available: {e:#}. Install it with \
                 `triage models fetch {source}` where the Hugging Face hub is reachable; for an \
                 air-gapped server, run `triage models bundle {source} --out FILE` there and \
                 `triage models install FILE` here; or point the config at a local folder with \
                 config.json, model.safetensors (or pytorch_model.bin) and tokenizer.json (or \
                 source.spm + vocab.json)"
            ),
        })?);
        self.lock().insert(source.to_string(), model.clone());
        Ok(model)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Seq2Seq>>> {
        self.loaded.lock()
    }

    /// Run `f` on a blocking thread when the generation slot is free (429 when too many wait).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> AppResult<T> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(AppError::Overloaded {
                retry_after: self.retry_after,
                message: format!("{MAX_WAITING} generation jobs are waiting"),
            });
        }
        let permit = self.gate.acquire().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let _permit = permit.map_err(|e| AppError::Internal(anyhow::anyhow!("gate: {e}")))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("generation task: {e}")))?
            .map_err(AppError::Internal)
    }
}

/// Translate `texts` sentence by sentence with one model: sentences sorted by length, batched,
/// reassembled with their original separators. Errors carry the index of the text at fault
/// (a sentence over `max_tokens`, an untokenizable text) when there is one.
pub fn translate_with(
    model: &Seq2Seq,
    texts: &[String],
    opts: &GenerateOptions,
    batch: usize,
    max_tokens: usize,
) -> Result<Vec<String>, (Option<usize>, anyhow::Error)> {
    let pieces: Vec<Vec<(String, String)>> = texts.iter().map(|t| segments(t)).collect();
    // (text index, piece index, token ids)
    let mut jobs: Vec<(usize, usize, Vec<u32>)> = Vec::new();
    for (ti, ps) in pieces.iter().enumerate() {
        for (pi, (s, _)) in ps.iter().enumerate() {
            if s.trim().is_empty() {
                continue;
            }
            let f = || Some(ti);
            let ids = model
                .encode_texts(&[s.trim()], usize::MAX)
                .map_err(|e| (f(), e))?
                .into_iter()
                .next()
                .unwrap_or_default();
            if ids.len() > max_tokens {
                return Err((
                    f(),
                    anyhow::anyhow!(
                        "a sentence is {} tokens long, over translate.max_input_tokens ({max_tokens}): split it",
                        ids.len()
                    ),
                ));
            }
            jobs.push((ti, pi, ids));
        }
    }
    jobs.sort_by_key(|j| j.2.len());
    let mut out: Vec<Vec<String>> = pieces
        .iter()
        .map(|ps| ps.iter().map(|(s, _)| s.clone()).collect())
        .collect();
    for chunk in jobs.chunks(batch.max(1)) {
        let inputs: Vec<Vec<u32>> = chunk.iter().map(|j| j.2.clone()).collect();
        let ids = model.generate_ids(&inputs, opts).map_err(|e| (None, e))?;
        for (j, o) in chunk.iter().zip(ids) {
            let text = model.decode(&o).map_err(|e| (None, e))?;
            let orig = &pieces[j.0][j.1].0;
            let lead = &orig[..orig.len() - orig.trim_start().len()];
            out[j.0][j.1] = format!("{lead}{}", text.trim());
        }
    }
    Ok(out
        .into_iter()
        .zip(&pieces)
        .map(|(sent, ps)| {
            sent.iter()
                .zip(ps)
                .map(|(s, (_, sep))| format!("{s}{sep}"))
                .collect()
        })
        .collect())
}
