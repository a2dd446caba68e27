//! The model worker thread: owns one backend, drains the queue into padded batches, replies.

use super::batcher::{take_batch, Item};
use crate::metrics::{Metrics, LATENCY_BUCKETS, SIZE_BUCKETS, TOKEN_BUCKETS};
use crate::models::encoder::Backend;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

/// Per sequence, one embedding per requested branch.
pub type Embeddings = Vec<Vec<Vec<f32>>>;
pub type Reply = oneshot::Sender<Result<Embeddings, String>>;

/// One request's sequences and the branches (0: the plain encoder; `i`: a head's fine-tuned top
/// layers) it wants for each. The permit is released when the job is answered.
pub struct Job {
    pub seqs: Vec<Vec<u32>>,
    pub branches: Vec<usize>,
    pub reply: Reply,
    pub permit: Option<OwnedSemaphorePermit>,
}

struct Pending {
    branches: Vec<usize>,
    results: Vec<Option<Vec<Vec<f32>>>>,
    left: usize,
    reply: Reply,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Pending {
    /// Release the admission permit first, then reply: a client that sends its next request
    /// as soon as it has the answer must find the capacity free.
    fn answer(self, result: Result<Embeddings, String>) {
        drop(self._permit);
        let _ = self.reply.send(result);
    }
}

pub struct WorkerConfig {
    pub model: String,
    pub max_batch_tokens: usize,
    pub max_batch_size: usize,
}

/// Run until every sender is dropped. Errors of a batch fail only the jobs in that batch.
pub fn run(
    mut backend: Box<dyn Backend>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    cfg: WorkerConfig,
    metrics: Arc<Metrics>,
) {
    let mut queue: VecDeque<Item> = VecDeque::new();
    let mut jobs: HashMap<u64, Pending> = HashMap::new();
    let mut next_id = 0u64;
    let model = cfg.model.as_str();
    let mut admit = |job: Job, queue: &mut VecDeque<Item>, jobs: &mut HashMap<u64, Pending>| {
        let id = next_id;
        next_id += 1;
        let n = job.seqs.len();
        if n == 0 {
            let _ = job.reply.send(Ok(Vec::new()));
            return;
        }
        for (index, ids) in job.seqs.into_iter().enumerate() {
            queue.push_back(Item {
                job: id,
                index,
                ids,
            });
        }
        jobs.insert(
            id,
            Pending {
                branches: job.branches,
                results: vec![None; n],
                left: n,
                reply: job.reply,
                _permit: job.permit,
            },
        );
    };
    loop {
        if queue.is_empty() {
            match rx.blocking_recv() {
                Some(job) => admit(job, &mut queue, &mut jobs),
                None => return,
            }
        }
        while let Ok(job) = rx.try_recv() {
            admit(job, &mut queue, &mut jobs);
        }
        let batch = take_batch(&mut queue, cfg.max_batch_tokens, cfg.max_batch_size);
        metrics.set(
            "triage_queue_depth",
            "Sequences waiting for a batch.",
            &[("model", model)],
            queue.len() as f64,
        );
        if batch.is_empty() {
            continue;
        }
        let longest = batch.iter().map(|i| i.ids.len()).max().unwrap_or(0);
        let real: usize = batch.iter().map(|i| i.ids.len()).sum();
        let l = [("model", model)];
        metrics.observe(
            "triage_batch_size",
            "Sequences per forward pass.",
            SIZE_BUCKETS,
            &l,
            batch.len() as f64,
        );
        metrics.observe(
            "triage_batch_tokens",
            "Padded tokens per forward pass.",
            TOKEN_BUCKETS,
            &l,
            (longest * batch.len()) as f64,
        );
        metrics.inc(
            "triage_tokens_total",
            "Tokens embedded (without padding).",
            &l,
            real as f64,
        );
        let started = Instant::now();
        let seqs: Vec<&[u32]> = batch.iter().map(|i| i.ids.as_slice()).collect();
        let wants: Vec<&[usize]> = batch
            .iter()
            .map(|i| {
                jobs.get(&i.job)
                    .map(|p| p.branches.as_slice())
                    .unwrap_or(&[])
            })
            .collect();
        let out = backend.embed_branches(&seqs, &wants);
        metrics.observe(
            "triage_inference_seconds",
            "Time of one forward pass.",
            LATENCY_BUCKETS,
            &l,
            started.elapsed().as_secs_f64(),
        );
        match out {
            Ok(vecs) if vecs.len() == batch.len() => {
                for (item, v) in batch.into_iter().zip(vecs) {
                    let done = match jobs.get_mut(&item.job) {
                        Some(p) => {
                            p.results[item.index] = Some(v);
                            p.left -= 1;
                            p.left == 0
                        }
                        None => false,
                    };
                    if done {
                        if let Some(mut p) = jobs.remove(&item.job) {
                            let all = std::mem::take(&mut p.results).into_iter().flatten();
                            p.answer(Ok(all.collect()));
                        }
                    }
                }
            }
            other => {
                let msg = match other {
                    Err(e) => format!("{e:#}"),
                    Ok(v) => format!("backend returned {} results for {}", v.len(), batch.len()),
                };
                tracing::error!(model, error = %msg, "inference failed");
                // Fail every job that had a sequence in this batch and drop its other sequences.
                let failed: std::collections::HashSet<u64> = batch.iter().map(|i| i.job).collect();
                queue.retain(|i| !failed.contains(&i.job));
                for id in failed {
                    if let Some(p) = jobs.remove(&id) {
                        p.answer(Err(msg.clone()));
                    }
                }
            }
        }
    }
}
