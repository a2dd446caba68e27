//! `EncoderSummarizer`: embeds every sentence of a batch of conversations in one encoder call
//! (the app's default model, identical texts embedded once, sorted by length to save padding),
//! then runs the extractive summary (`crate::summarize`) per conversation. In a server it can hand the batch to
//! the model worker one forward pass at a time, so that live requests are not stuck behind it.

use super::{Conversation, Summarizer};
use crate::engine::Models;
use crate::error::AppError;
use crate::models::config::Overlong;
use anyhow::{anyhow, bail, Result};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a batch waits for a loading model or a full queue before it fails (shutdown ends
/// the wait at once: the job resumes at the next start).
const MAX_WAIT: Duration = Duration::from_secs(600);

pub struct EncoderSummarizer {
    models: Arc<Models>,
    /// Turns true when the server shuts down: waits end at once (None offline).
    shutdown: Option<tokio::sync::watch::Receiver<bool>>,
    rt: tokio::runtime::Handle,
    /// The model to embed with; None: the configured default.
    model: Option<String>,
    /// Most sequences handed to the model worker at once (None: the whole batch in one call).
    chunk: Option<usize>,
    /// Word budget of each summary.
    max_words: usize,
}

impl EncoderSummarizer {
    /// Summaries of at most `max_words` words (`summarize.max_words`) with `models`. `rt` runs
    /// the async encoder calls; `summarize_batch` must be called outside of it (a blocking
    /// thread or a plain thread).
    pub fn new(models: Arc<Models>, max_words: usize, rt: tokio::runtime::Handle) -> Self {
        EncoderSummarizer {
            models,
            shutdown: None,
            rt,
            model: None,
            chunk: None,
            max_words,
        }
    }

    /// In a server: stop waiting for the model as soon as `shutdown` turns true.
    pub fn stopping_on(mut self, shutdown: tokio::sync::watch::Receiver<bool>) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Embed with the configured model `name` instead of the default one.
    pub fn with_model(mut self, name: &str) -> Self {
        self.model = Some(name.to_string());
        self
    }

    /// In a server: hand the worker at most `seqs` sequences at a time (one forward pass, e.g.
    /// `batching.max_batch_size`), so that live requests queue behind one pass of a batch job,
    /// not behind the whole batch. The batch is still embedded together, in length order.
    pub fn yielding(mut self, seqs: usize) -> Self {
        self.chunk = Some(seqs.max(1));
        self
    }

    /// Embed `texts` with one encoder call; waits while the model loads or the queue is full.
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        let started = Instant::now();
        let wait = |e: AppError| -> Result<Duration> {
            if self.shutdown.as_ref().is_some_and(|s| *s.borrow()) {
                return Err(anyhow!("encoder: the server is shutting down"));
            }
            let waiting = match &e {
                AppError::Overloaded { retry_after, .. }
                | AppError::QueueTimeout { retry_after, .. } => Some((*retry_after).max(1)),
                AppError::Unavailable { .. } => self.loading().then_some(1),
                _ => None,
            };
            match waiting {
                Some(s) if started.elapsed() < MAX_WAIT => Ok(Duration::from_secs(s)),
                _ => Err(anyhow!("encoder: {e}")),
            }
        };
        let model = loop {
            match self.models.model(self.model.as_deref()) {
                Ok(m) => break m,
                Err(e) => tokio::time::sleep(wait(e)?).await,
            }
        };
        let prepared = model
            .prepare(texts, Overlong::Truncate, "turns")
            .await
            .map_err(|e| anyhow!("tokenizer: {e}"))?;
        // Similar lengths side by side: the worker's padded batches waste less.
        let mut order: Vec<usize> = (0..prepared.len()).collect();
        order.sort_by_key(|&i| prepared[i].ids.len());
        let mut slots: Vec<Option<Vec<u32>>> = prepared.into_iter().map(|p| Some(p.ids)).collect();
        let seqs: Vec<Vec<u32>> = order.iter().filter_map(|&i| slots[i].take()).collect();
        let step = self.chunk.unwrap_or(seqs.len()).max(1);
        let mut sorted = Vec::with_capacity(seqs.len());
        for part in seqs.chunks(step) {
            let v = loop {
                match model.embed(part.to_vec()).await {
                    Ok(v) => break v,
                    Err(e) => tokio::time::sleep(wait(e)?).await,
                }
            };
            sorted.extend(v);
        }
        if sorted.len() != order.len() {
            bail!(
                "encoder returned {} vectors for {} texts",
                sorted.len(),
                order.len()
            );
        }
        let mut out = vec![Vec::new(); order.len()];
        for (v, &i) in sorted.into_iter().zip(&order) {
            out[i] = v;
        }
        Ok(out)
    }

    fn loading(&self) -> bool {
        self.models.loading(self.model.as_deref())
    }
}

impl Summarizer for EncoderSummarizer {
    fn summarize_batch(&self, convs: &[Conversation]) -> Result<Vec<serde_json::Value>> {
        let mut unique: HashMap<String, usize> = HashMap::new();
        let mut texts: Vec<String> = Vec::new();
        let slots: Vec<Vec<usize>> = convs
            .iter()
            .map(|c| {
                crate::summarize::sentence_texts(&c.turns)
                    .into_iter()
                    .map(|t| {
                        *unique.entry(t.clone()).or_insert_with(|| {
                            texts.push(t);
                            texts.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        let emb = if texts.is_empty() {
            Vec::new()
        } else {
            self.rt.block_on(self.embed(texts))?
        };
        let mut out = Vec::with_capacity(convs.len());
        for (c, idx) in convs.iter().zip(&slots) {
            let e: Vec<Vec<f32>> = idx.iter().map(|&i| emb[i].clone()).collect();
            let s = crate::summarize::assemble(&c.turns, Some(&e), self.max_words);
            out.push(json!({
                "summary": s.summary,
                "key_turns": s.key_turns,
                "open_question": s.open_question,
                "entities": s.entities,
                "mode": s.mode,
            }));
        }
        Ok(out)
    }
}
