//! The model worker thread: owns one backend, drains the queue into padded batches, replies.
//! Before each batch it sheds jobs past their deadline that it has not started, and drops jobs
//! whose caller is gone, so an overload costs no inference for answers nobody gets in time.
//! When it has had nothing to do for 1 s, and again at 5 s (by then the requests it answered
//! are gone too), it hands freed memory back to the OS (`malloc_trim`), so the resident size
//! returns to its baseline once a load peak has passed.

use super::batcher::{take_batch, Item};
use crate::metrics::{Metrics, LATENCY_BUCKETS, SIZE_BUCKETS, TOKEN_BUCKETS};
use crate::models::encoder::Backend;
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Idle waits after each of which freed memory is returned to the OS.
const TRIM_AFTER: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(4)];

/// Return the allocator's free memory to the OS (glibc keeps freed arena pages resident).
fn trim_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Per sequence, one embedding per requested branch.
pub type Embeddings = Vec<Vec<Vec<f32>>>;
pub type Reply = oneshot::Sender<Result<Embeddings, JobError>>;

/// Why a job got no embeddings.
#[derive(Debug, Clone, PartialEq)]
pub enum JobError {
    /// Not started before its deadline.
    Shed,
    /// The forward pass failed (the message is for the log).
    Failed(String),
}

/// One request's sequences and the branches (0: the plain encoder; `i`: a head's fine-tuned top
/// layers) it wants for each; shed when not started by `deadline` (None: never). `since`: when
/// its wait began (the request's admission).
pub struct Job {
    pub seqs: Vec<Vec<u32>>,
    pub branches: Vec<usize>,
    pub reply: Reply,
    pub since: Instant,
    pub deadline: Option<Instant>,
}

struct Pending {
    branches: Vec<usize>,
    results: Vec<Option<Vec<Vec<f32>>>>,
    left: usize,
    reply: Reply,
    since: Instant,
    deadline: Option<Instant>,
}

impl Pending {
    fn answer(self, result: Result<Embeddings, JobError>) {
        let _ = self.reply.send(result);
    }

    /// No sequence of it has been through a forward pass yet.
    fn unstarted(&self) -> bool {
        self.left == self.results.len()
    }
}

/// Drop the queued sequences of jobs whose caller is gone, and shed (answer `Shed`) the jobs
/// not started by their deadline. Returns how many were shed.
fn shed(queue: &mut VecDeque<Item>, jobs: &mut HashMap<u64, Pending>, now: Instant) -> usize {
    let gone: std::collections::HashSet<u64> = jobs
        .iter()
        .filter(|(_, p)| {
            p.reply.is_closed() || (p.unstarted() && p.deadline.is_some_and(|d| now > d))
        })
        .map(|(id, _)| *id)
        .collect();
    if gone.is_empty() {
        return 0;
    }
    queue.retain(|i| !gone.contains(&i.job));
    let mut n = 0;
    for id in gone {
        if let Some(p) = jobs.remove(&id) {
            if !p.reply.is_closed() {
                n += 1;
                p.answer(Err(JobError::Shed));
            }
        }
    }
    n
}

pub struct WorkerConfig {
    pub model: String,
    pub max_batch_tokens: usize,
    pub max_batch_size: usize,
}

/// Wait for the next job (None: every sender is gone); when `dirty`, trim memory at each idle
/// step of `TRIM_AFTER`.
fn idle_recv(rx: &Receiver<Job>, dirty: bool) -> Option<Job> {
    if dirty {
        for wait in TRIM_AFTER {
            match rx.recv_timeout(wait) {
                Ok(job) => return Some(job),
                Err(RecvTimeoutError::Timeout) => trim_memory(),
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
    rx.recv().ok()
}

/// Run until every sender is dropped. Errors of a batch fail only the jobs in that batch.
pub fn run(
    mut backend: Box<dyn Backend>,
    rx: Receiver<Job>,
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
                since: job.since,
                deadline: job.deadline,
            },
        );
    };
    let mut dirty = false;
    loop {
        if queue.is_empty() {
            match idle_recv(&rx, std::mem::take(&mut dirty)) {
                Some(job) => admit(job, &mut queue, &mut jobs),
                None => return,
            }
        }
        while let Ok(job) = rx.try_recv() {
            admit(job, &mut queue, &mut jobs);
        }
        let dropped = shed(&mut queue, &mut jobs, Instant::now());
        if dropped > 0 {
            metrics.inc(
                "triage_shed_total",
                "Requests answered 503 for waiting over limits.queue_wait_ms.",
                &[("model", model)],
                dropped as u64,
            );
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
            real as u64,
        );
        let started = Instant::now();
        let mut first: Vec<u64> = batch.iter().map(|i| i.job).collect();
        first.dedup();
        for p in first.iter().filter_map(|id| jobs.get(id)) {
            if p.unstarted() {
                metrics.observe(
                    "triage_queue_wait_seconds",
                    "From a request's admission to the first forward pass over it.",
                    LATENCY_BUCKETS,
                    &l,
                    (started - p.since).as_secs_f64(),
                );
            }
        }
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
        dirty = true;
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
                        p.answer(Err(JobError::Failed(msg.clone())));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pending(
        n: usize,
        deadline: Option<Instant>,
    ) -> (Pending, oneshot::Receiver<Result<Embeddings, JobError>>) {
        let (reply, rx) = oneshot::channel();
        let p = Pending {
            branches: vec![0],
            results: vec![None; n],
            left: n,
            reply,
            since: Instant::now(),
            deadline,
        };
        (p, rx)
    }

    fn item(job: u64, index: usize) -> Item {
        Item {
            job,
            index,
            ids: vec![1, 2],
        }
    }

    #[test]
    fn sheds_only_unstarted_jobs_past_their_deadline_and_drops_abandoned_ones() {
        let now = Instant::now();
        let past = Some(now - Duration::from_millis(1));
        let mut jobs = HashMap::new();
        let (late, mut late_rx) = pending(2, past);
        let (mut started, mut started_rx) = pending(2, past);
        started.results[0] = Some(vec![vec![1.0]]);
        started.left = 1;
        let (fresh, mut fresh_rx) = pending(1, Some(now + Duration::from_secs(5)));
        let (unbounded, _unbounded_rx) = pending(1, None);
        let (abandoned, abandoned_rx) = pending(1, Some(now + Duration::from_secs(5)));
        drop(abandoned_rx);
        for (id, p) in [late, started, fresh, unbounded, abandoned]
            .into_iter()
            .enumerate()
        {
            jobs.insert(id as u64, p);
        }
        let mut queue: VecDeque<Item> = [
            item(0, 0),
            item(0, 1),
            item(1, 1),
            item(2, 0),
            item(3, 0),
            item(4, 0),
        ]
        .into();
        assert_eq!(shed(&mut queue, &mut jobs, now), 1);
        assert_eq!(late_rx.try_recv(), Ok(Err(JobError::Shed)));
        assert!(started_rx.try_recv().is_err() && fresh_rx.try_recv().is_err());
        let left: Vec<u64> = queue.iter().map(|i| i.job).collect();
        assert_eq!(left, vec![1, 2, 3]);
        let mut ids: Vec<u64> = jobs.keys().copied().collect();
        ids.sort();
        assert_eq!(ids, vec![1, 2, 3]);
    }
}
