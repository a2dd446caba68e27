//! Two replicas (two `Jobs` on one folder and one PostgreSQL database, each with its own store
//! connections and lease holder) running one batch job with a deterministic test summarizer:
//! a replica that dies mid-job keeps its lease until it expires, then the other resumes from
//! the output; a replica whose lease was taken over writes nothing more. Either way the output
//! holds every id exactly once and the two runners' lines never interleave. PostgreSQL only
//! (skipped with a message without `TRIAGE_TEST_DATABASE_URL`).

use super::jobs::{JobState, Jobs, INPUT, OUTPUT};
use super::lease::Shared;
use super::{BatchConfig, Conversation, Summarizer};
use crate::store::test_db::PgDb;
use crate::store::StoreConfig;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every summarizer call: the replica, its start and its end.
type Log = Arc<Mutex<Vec<(&'static str, Instant, Instant)>>>;

/// Summaries tagged with the replica that made them; every call logged with its start and end.
struct Tagged {
    name: &'static str,
    log: Log,
    calls: AtomicUsize,
    /// Blocks the call with this index until `open` is set.
    block_at: Option<usize>,
    blocked: AtomicBool,
    open: AtomicBool,
}

impl Tagged {
    fn new(name: &'static str, log: &Log) -> Self {
        Tagged {
            name,
            log: log.clone(),
            calls: AtomicUsize::new(0),
            block_at: None,
            blocked: AtomicBool::new(false),
            open: AtomicBool::new(false),
        }
    }
}

impl Summarizer for Tagged {
    fn summarize_batch(&self, convs: &[Conversation]) -> anyhow::Result<Vec<Value>> {
        let start = Instant::now();
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.block_at == Some(n) {
            self.blocked.store(true, Ordering::SeqCst);
            while !self.open.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
        self.log
            .lock()
            .unwrap()
            .push((self.name, start, Instant::now()));
        Ok(convs
            .iter()
            .map(|c| json!({"summary": c.turns[0].text, "by": self.name}))
            .collect())
    }
}

fn replica(
    db: &PgDb,
    dir: &Path,
    s: Arc<dyn Summarizer>,
    holder: &str,
    lease_ms: i64,
) -> Arc<Jobs> {
    let store = Arc::new(db.open(StoreConfig::default()).unwrap());
    let mut sh = Shared::new(store).expect("PostgreSQL shares jobs");
    sh.holder = holder.into();
    sh.lease_ms = lease_ms;
    sh.scan_every = Duration::from_millis(50);
    let cfg = BatchConfig {
        batch_size: 5,
        ..BatchConfig::default()
    };
    Jobs::open(dir.to_path_buf(), cfg, s, Some(sh)).unwrap()
}

fn submit(jobs: &Jobs, n: usize) -> String {
    let (id, d) = jobs.new_job_dir().unwrap();
    let mut input = String::new();
    for i in 0..n {
        let c = json!({"id": format!("c{i:04}"), "conversation": [{"role": "customer", "text": format!("text {i}")}]});
        input.push_str(&format!("{c}\n"));
    }
    std::fs::write(d.join(INPUT), &input).unwrap();
    jobs.enqueue(&id, input.len() as u64).unwrap();
    id
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every id of `n` exactly once; the lines of `first` all come before those of the other.
fn check_output(p: &Path, n: usize, first: &str) -> (usize, usize) {
    let out = lines(p);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for v in &out {
        *seen
            .entry(v["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(out.len(), n, "one line per conversation");
    assert_eq!(seen.len(), n);
    assert!(seen.values().all(|c| *c == 1), "an id written twice");
    let by: Vec<&str> = out.iter().map(|v| v["by"].as_str().unwrap()).collect();
    let k = by.iter().take_while(|b| **b == first).count();
    assert!(
        by[k..].iter().all(|b| *b != first),
        "runners interleaved: {by:?}"
    );
    (k, n - k)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("triage-{name}-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_dead_replicas_job_resumes_elsewhere_after_its_lease() {
    let Some(db) = PgDb::new("batch_replica_dies") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _enter = rt.enter();
    let dir = tmp("replica-dies");
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let lease = 800;
    let a = replica(&db, &dir, Arc::new(Tagged::new("a", &log)), "a", lease);
    let n = 200;
    let id = submit(&a, n);
    let out = dir.join(&id).join(OUTPUT);
    wait_until("a's first lines", Duration::from_secs(20), || {
        lines(&out).len() >= 40
    });
    a.abandon_and_wait(); // dies holding the lease
    let died = Instant::now();
    let partial = lines(&out).len();
    assert!(partial < n, "a finished before it died");
    assert_eq!(a.status(&id).unwrap().state, JobState::Running);

    let b = replica(&db, &dir, Arc::new(Tagged::new("b", &log)), "b", lease);
    wait_until("b to finish the job", Duration::from_secs(30), || {
        b.status(&id).is_some_and(|s| s.state == JobState::Done)
    });
    let (by_a, by_b) = check_output(&out, n, "a");
    assert_eq!(by_a, partial);
    assert!(by_b > 0);
    let log = log.lock().unwrap().clone();
    let a_last = log
        .iter()
        .filter(|c| c.0 == "a")
        .map(|c| c.2)
        .max()
        .unwrap();
    let b_first = log
        .iter()
        .filter(|c| c.0 == "b")
        .map(|c| c.1)
        .min()
        .unwrap();
    assert!(b_first > a_last, "the runs overlapped");
    // a's lease was renewed just before its last write: b waited for it to expire.
    assert!(
        b_first.duration_since(died) >= Duration::from_millis(lease as u64 / 2),
        "b took the job {:?} after a died, before its lease ended",
        b_first.duration_since(died)
    );
    // Both replicas answer for the job (a, stopped, from the shared files).
    let st = a.status(&id).unwrap();
    assert_eq!(st.state, JobState::Done);
    assert_eq!(st.written, n as u64);
    b.shutdown_and_wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_replica_that_lost_its_lease_writes_nothing_more() {
    let Some(db) = PgDb::new("batch_replica_fenced") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _enter = rt.enter();
    let dir = tmp("replica-fenced");
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let sa = Arc::new(Tagged {
        block_at: Some(3),
        ..Tagged::new("a", &log)
    });
    let a = replica(&db, &dir, sa.clone(), "a", 60_000);
    let n = 100;
    let id = submit(&a, n);
    wait_until("a to stall", Duration::from_secs(20), || {
        sa.blocked.load(Ordering::SeqCst)
    });
    // a stalls past its lease (made to expire here): b takes the job over.
    let taken = db
        .client()
        .execute(
            "UPDATE batch_leases SET holder = 'expired', until_ms = 0 WHERE job_id = $1 AND holder = 'a'",
            &[&id],
        )
        .unwrap();
    assert_eq!(taken, 1, "a held the lease");
    let b = replica(&db, &dir, Arc::new(Tagged::new("b", &log)), "b", 60_000);
    wait_until("b to finish the job", Duration::from_secs(30), || {
        b.status(&id).is_some_and(|s| s.state == JobState::Done)
    });
    // a wakes up and tries to write its batch: the fence stops it.
    sa.open.store(true, Ordering::SeqCst);
    wait_until("a to give up", Duration::from_secs(10), || {
        sa.calls.load(Ordering::SeqCst) == 4
            && log.lock().unwrap().iter().filter(|c| c.0 == "a").count() == 4
    });
    std::thread::sleep(Duration::from_millis(200));
    a.shutdown_and_wait();
    let out = dir.join(&id).join(OUTPUT);
    let (by_a, by_b) = check_output(&out, n, "a");
    assert_eq!(by_a, 15, "a wrote its first three batches only");
    assert_eq!(by_b, n - 15);
    assert_eq!(
        sa.calls.load(Ordering::SeqCst),
        4,
        "a ran no batch after the fence"
    );
    assert_eq!(
        a.status(&id).unwrap().state,
        JobState::Done,
        "a left b's record alone"
    );
    b.shutdown_and_wait();
    let _ = std::fs::remove_dir_all(&dir);
}
