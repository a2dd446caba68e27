//! Load generator for `POST /v1/triage` on loopback (scripts/load.sh runs it against a release
//! server): a short closed-loop run measures capacity, then open-loop phases offer a multiple of
//! it (0.5x, 1x, 2x, 4x) at a fixed schedule. Per phase: offered and achieved throughput, p50/p99 of
//! 2xx answers (timed from the scheduled send, so queueing in the client counts), shares of 429
//! and 503, other 5xx, connection errors, and the server's RSS before, after and after a settle.
//!
//!     cargo bench --bench load -- --url http://127.0.0.1:8080[,URL2...] --pid PID[,PID2...] [--phase-secs 60]
//!         [--capacity-secs 20] [--multipliers 0.5,1,2,4] [--settle-secs 10] [--max-requests 200000]
//!         [--concurrency 64] [--queue-wait-ms 2000] [--screenshot FILE]
//! `--screenshot` attaches that image (base64) to every request. After each open phase the
//! server's own p50/p99 of request time, queue wait and forward pass are printed from its
//! `/metrics` histograms (`load/metrics.rs`), to show what the client's p99 is made of.
//! Exits 1 when a phase has a 5xx other than 503, a connection error, or a 2xx p99 over the
//! queue wait plus the service time: the p99 of the capacity run, whose clients fill one batch
//! (`--concurrency`, default 64 = `batching.max_batch_size`), so that a request there waits for
//! at most the batch in progress and its own, as an admitted request does once the model starts.

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "load/metrics.rs"]
mod metrics;

type Http = Client<HttpConnector, Full<Bytes>>;

/// `--screenshot`, base64, attached to every request when set.
static SCREENSHOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The first server's `/metrics` (empty on any error: the breakdown then says `-`).
async fn scrape(http: &Http, base: &str) -> metrics::Snapshot {
    let Ok(uri) = format!("{}/metrics", base.trim_end_matches('/')).parse::<hyper::Uri>() else {
        return metrics::Snapshot::default();
    };
    let Ok(resp) = http.get(uri).await else {
        return metrics::Snapshot::default();
    };
    match resp.into_body().collect().await {
        Ok(b) => metrics::parse(&String::from_utf8_lossy(&b.to_bytes())),
        Err(_) => metrics::Snapshot::default(),
    }
}

const TEXTS: &[&str] = &[
    "Where is my order {n}? It should have arrived {d} days ago.",
    "I was charged twice for order {n}, please refund the second payment.",
    "This is outrageous! {d} days and still no parcel. Your company is a disgrace!",
    "How do I change the delivery address for order {n}?",
    "I want to cancel my order {n} before it ships.",
    "Thanks, that solved it. Have a nice day!",
    "The app shows error E-PAY-{n} when I try to pay with my visa card.",
    "Can I talk to a human please? The bot does not understand me.",
    "I will take legal action and contact my lawyer if order {n} is not refunded.",
    "My password reset email never arrives, I tried {d} times.",
    "请问我的订单{n}什么时候发货？",
    "我非常生气，等了{d}天还没收到，你们的服务太差了！",
    "我想退货，订单号是{n}。",
    "付款失败了，错误码E-PAY-{n}，怎么办？",
    "Wo ist meine Bestellung {n}? Ich warte seit {d} Tagen.",
    "Quiero cancelar mi pedido {n}, por favor.",
    "Je n'ai pas reçu mon colis {n}, pouvez-vous vérifier ?",
    "Hi, do you ship to Canada? And how long does it take?",
    "The discount code did not apply at checkout, I paid full price for {n}.",
    "My account was locked after {d} login attempts, please help.",
];

fn arg(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn num<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    arg(args, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A realistic triage body: varied text, language, tier and channel; ~2000 conversations.
fn body(rng: &mut rand::rngs::StdRng, run: u64) -> Bytes {
    let t = TEXTS[rng.random_range(0..TEXTS.len())]
        .replace("{n}", &rng.random_range(10_000..99_999).to_string())
        .replace("{d}", &rng.random_range(2..30).to_string());
    let tier = ["standard", "standard", "vip"][rng.random_range(0..3)];
    let channel = ["chat", "email", "app"][rng.random_range(0..3)];
    let conv = format!("lt-{run:x}-{}", rng.random_range(0..2000));
    let mut v = serde_json::json!({"conversation_id": conv, "text": t, "channel": channel,
        "customer": {"id": format!("cust-{}", rng.random_range(0..5000)), "tier": tier}});
    if let Some(s) = SCREENSHOT.get() {
        v["screenshot"] = serde_json::Value::String(s.clone());
    }
    Bytes::from(v.to_string())
}

#[derive(Default)]
struct Tally {
    ok_ms: Vec<f64>,
    r429: usize,
    r503: usize,
    other_5xx: usize,
    other: usize,
    conn_err: usize,
    timeouts: usize,
    last_done: Option<Instant>,
}

/// Send one request; record its outcome, timed from `start` (the scheduled send).
async fn one(http: Http, url: hyper::Uri, body: Bytes, start: Instant, tally: Arc<Mutex<Tally>>) {
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(body));
    let Ok(req) = req else { return };
    let res = tokio::time::timeout(Duration::from_secs(30), async {
        let resp = http.request(req).await?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await?;
        Ok::<u16, Box<dyn std::error::Error + Send + Sync>>(status)
    })
    .await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let mut t = tally.lock();
    match res {
        Ok(Ok(s)) if (200..300).contains(&s) => t.ok_ms.push(ms),
        Ok(Ok(429)) => t.r429 += 1,
        Ok(Ok(503)) => t.r503 += 1,
        Ok(Ok(s)) if s >= 500 => t.other_5xx += 1,
        Ok(Ok(_)) => t.other += 1,
        Ok(Err(_)) => t.conn_err += 1,
        Err(_) => t.timeouts += 1,
    }
    t.last_done = Some(Instant::now());
}

fn rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

struct Phase {
    name: String,
    offered: f64,
    sent: usize,
    secs: f64,
    t: Tally,
    rss: [f64; 3],
}

impl Phase {
    fn row(&self) -> String {
        let mut ok = self.t.ok_ms.clone();
        ok.sort_by(f64::total_cmp);
        let share = |n: usize| 100.0 * n as f64 / self.sent.max(1) as f64;
        format!(
            "| {} | {} | {:.1} | {} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {} | {} | {:.0} / {:.0} / {:.0} |",
            self.name,
            if self.offered.is_finite() {
                format!("{:.1}", self.offered)
            } else {
                "closed loop".into()
            },
            ok.len() as f64 / self.secs,
            self.sent,
            ok.len(),
            pct(&ok, 50.0),
            pct(&ok, 99.0),
            share(self.t.r429),
            share(self.t.r503),
            self.t.other_5xx + self.t.other,
            self.t.conn_err + self.t.timeouts,
            self.rss[0],
            self.rss[1],
            self.rss[2],
        )
    }
}

/// The servers under load, taken in turn (several replicas without a proxy in front).
struct Targets {
    urls: Vec<hyper::Uri>,
    next: AtomicUsize,
}

impl Targets {
    fn pick(&self) -> hyper::Uri {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.urls[i % self.urls.len()].clone()
    }
}

/// Resident memory of all the servers, summed.
fn rss_all(pids: &[u32]) -> f64 {
    pids.iter().map(|p| rss_mib(*p)).sum()
}

/// Closed loop: `conc` clients back to back for `secs`.
async fn capacity(http: &Http, url: &Arc<Targets>, conc: usize, secs: f64, run: u64) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..conc {
        let (http, url, tally) = (http.clone(), url.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(run ^ c as u64);
            while Instant::now() < end {
                let b = body(&mut rng, run);
                one(http.clone(), url.pick(), b, Instant::now(), tally.clone()).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Arc::try_unwrap(tally)
        .map(Mutex::into_inner)
        .unwrap_or_default()
}

/// Open loop: `rate` requests a second on a fixed schedule for `secs` (at most `max` requests;
/// at most 4096 in flight, past which a send counts as a connection error).
async fn open_loop(
    http: &Http,
    url: &Arc<Targets>,
    rate: f64,
    secs: f64,
    max: usize,
    run: u64,
) -> (usize, f64, Tally) {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let inflight = Arc::new(AtomicUsize::new(0));
    let mut rng = rand::rngs::StdRng::seed_from_u64(run ^ rate.to_bits());
    let t0 = Instant::now();
    let n = ((rate * secs) as usize).min(max);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let at = t0 + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
        if inflight.load(Ordering::SeqCst) >= 4096 {
            tally.lock().conn_err += 1;
            continue;
        }
        let (http, url, tally, inflight) =
            (http.clone(), url.pick(), tally.clone(), inflight.clone());
        let b = body(&mut rng, run);
        inflight.fetch_add(1, Ordering::SeqCst);
        tasks.push(tokio::spawn(async move {
            one(http, url, b, at, tally).await;
            inflight.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let t = Arc::try_unwrap(tally)
        .map(Mutex::into_inner)
        .unwrap_or_default();
    let secs = t
        .last_done
        .map_or(secs, |d| (d - t0).as_secs_f64().max(secs));
    (n, secs, t)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(base) = arg(&args, "--url") else {
        eprintln!("load bench: needs --url and --pid (run scripts/load.sh)");
        return Ok(());
    };
    // `--url` and `--pid` may list several servers (comma-separated): requests go round-robin.
    let mut urls = Vec::new();
    for b in base.split(',') {
        let url: hyper::Uri = format!("{}/v1/triage", b.trim().trim_end_matches('/')).parse()?;
        let host = url.host().unwrap_or("");
        anyhow::ensure!(
            host == "localhost" || host == "[::1]" || host.starts_with("127."),
            "the load generator only targets loopback addresses, not {host}"
        );
        urls.push(url);
    }
    let url = Arc::new(Targets {
        urls,
        next: AtomicUsize::new(0),
    });
    let pid: Vec<u32> = arg(&args, "--pid")
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    let phase_secs: f64 = num(&args, "--phase-secs", 60.0);
    let cap_secs: f64 = num(&args, "--capacity-secs", 20.0);
    let settle: f64 = num(&args, "--settle-secs", 10.0);
    let max: usize = num(&args, "--max-requests", 200_000);
    let conc: usize = num(&args, "--concurrency", 64);
    let queue_wait: f64 = num(&args, "--queue-wait-ms", 2000.0);
    let mults: Vec<f64> = arg(&args, "--multipliers")
        .unwrap_or_else(|| "0.5,1,2,4".into())
        .split(',')
        .filter_map(|m| m.trim().parse().ok())
        .collect();
    if let Some(f) = arg(&args, "--screenshot") {
        use base64::Engine;
        let bytes = std::fs::read(&f).map_err(|e| anyhow::anyhow!("--screenshot {f}: {e}"))?;
        let _ = SCREENSHOT.set(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    let first_base = base.split(',').next().unwrap_or("").trim().to_string();
    let run = rand::rng().random::<u64>();
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(conn);

    // Warm-up, and the unloaded answer time: sequential requests.
    let seq = capacity(&http, &url, 1, 5.0, run).await;
    let mut s = seq.ok_ms.clone();
    s.sort_by(f64::total_cmp);
    eprintln!(
        "unloaded: {} answers, p50 {:.0} ms, p99 {:.0} ms",
        s.len(),
        pct(&s, 50.0),
        pct(&s, 99.0)
    );

    let before = rss_all(&pid);
    let cap = capacity(&http, &url, conc, cap_secs, run).await;
    let capacity_rps = cap.ok_ms.len() as f64 / cap_secs;
    let mut c = cap.ok_ms.clone();
    c.sort_by(f64::total_cmp);
    let service = pct(&c, 99.0);
    eprintln!("capacity: {capacity_rps:.1} triage/s ({conc} closed-loop clients, {cap_secs} s)");
    anyhow::ensure!(
        capacity_rps > 0.0,
        "no request succeeded in the capacity run"
    );
    let mut phases = vec![Phase {
        name: format!("capacity (closed, {conc})"),
        offered: f64::NAN,
        sent: cap.ok_ms.len()
            + cap.r429
            + cap.r503
            + cap.other_5xx
            + cap.other
            + cap.conn_err
            + cap.timeouts,
        secs: cap_secs,
        rss: [before, rss_all(&pid), rss_all(&pid)],
        t: cap,
    }];
    let mut breakdowns = Vec::new();
    for m in mults {
        let rate = capacity_rps * m;
        let before = rss_all(&pid);
        let m0 = scrape(&http, &first_base).await;
        let (sent, secs, t) = open_loop(&http, &url, rate, phase_secs, max, run).await;
        let after = rss_all(&pid);
        let breakdown = metrics::line(&m0, &scrape(&http, &first_base).await);
        tokio::time::sleep(Duration::from_secs_f64(settle)).await;
        let p = Phase {
            name: format!("open {m}x"),
            offered: sent as f64 / phase_secs,
            sent,
            secs,
            t,
            rss: [before, after, rss_all(&pid)],
        };
        eprintln!("{}", p.row());
        eprintln!("  {breakdown}");
        breakdowns.push(format!("{}: {breakdown}", p.name));
        phases.push(p);
    }
    println!("\n| phase | offered/s | achieved 2xx/s | sent | 2xx | p50 ms | p99 ms | 429 % | 503 % | other 4xx/5xx | conn err/timeout | RSS MiB before / after / settled |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for p in &phases {
        println!("{}", p.row());
    }
    println!();
    for b in &breakdowns {
        println!("{b}");
    }
    let bound = queue_wait + service;
    let mut bad = Vec::new();
    for p in &phases {
        let mut ok = p.t.ok_ms.clone();
        ok.sort_by(f64::total_cmp);
        if p.t.other_5xx > 0 || p.t.conn_err + p.t.timeouts > 0 {
            bad.push(format!("{}: other 5xx or connection errors", p.name));
        }
        if p.offered.is_finite() && pct(&ok, 99.0) > bound {
            bad.push(format!(
                "{}: 2xx p99 {:.0} ms over {bound:.0} ms",
                p.name,
                pct(&ok, 99.0)
            ));
        }
    }
    println!("\nbound on 2xx p99: queue_wait {queue_wait:.0} ms + service time (p99 at capacity) {service:.0} ms = {bound:.0} ms");
    if bad.is_empty() {
        println!("CHECK ok: no 5xx but 503, no connection errors, p99 within the bound");
        Ok(())
    } else {
        println!("CHECK failed: {}", bad.join("; "));
        std::process::exit(1)
    }
}
