//! Knowledge-base latency and memory at 1k, 10k and 100k passages (issue 21): for each size a
//! fresh store holds a generated knowledge base, the server state opens it (BM25 and dense
//! indexes rebuilt from the store), then sequential requests through the HTTP router measure
//! `POST /v1/kb/search` (query embedding included), the index search alone (embedding made
//! beforehand) and `POST /v1/triage` answering from it. Memory: resident set growth when the
//! index is built, per 10k passages. A second table puts the dense retriever's exact scan and
//! its ANN graph (HNSW) side by side at each size: the graph is built for it even below
//! `kb.ann_min_passages`, its recall is against the exact scan on the same queries.
//!
//!     cargo bench --bench kb -- [--sizes 1000,10000,100000] [--queries 200] [--intent-weight 0]
//! Needs the default pack (`triage models setup`). The generator: the shipped articles'
//! passages, embedded by the real encoder, then copies of them with a few words from a
//! vocabulary appended and their embeddings jittered (unit noise of 0.05, renormalised), so
//! that BM25 postings and cosine scores have realistic spread without embedding 100k texts.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use rand::{Rng, SeedableRng};
use std::time::Instant;
use tower::ServiceExt;
use triage::config::Config;
use triage::kb::{Mode, Query};
use triage::store::kb::KbRow;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i]
}

fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1 << 20) as f64
}

async fn post(app: &axum::Router, uri: &str, body: serde_json::Value) -> f64 {
    let t = Instant::now();
    let req = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let b = r.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{uri}: {status} {}",
        String::from_utf8_lossy(&b)
    );
    t.elapsed().as_secs_f64() * 1e3
}

const VOCAB: &[&str] = &[
    "parcel",
    "voucher",
    "warranty",
    "courier",
    "receipt",
    "exchange",
    "coupon",
    "membership",
    "points",
    "gift",
    "card",
    "bank",
    "transfer",
    "wallet",
    "fee",
    "delay",
    "damaged",
    "missing",
    "包裹",
    "优惠券",
    "保修",
    "快递",
    "发票",
    "会员",
    "积分",
    "礼品卡",
    "退货",
    "换货",
    "延迟",
];

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = arg(&args, "--sizes")
        .unwrap_or_else(|| "1000,10000,100000".into())
        .split(',')
        .map(|s| s.parse().expect("--sizes: numbers"))
        .collect();
    let n_queries: usize = arg(&args, "--queries").map_or(200, |s| s.parse().unwrap());
    // `--intent-weight 0`: the search without the intent prior, for a before/after.
    let intent_weight: Option<f32> = arg(&args, "--intent-weight").map(|s| s.parse().unwrap());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut queries: Vec<String> = Vec::new();
    for f in [
        "models/kb/zh/dev_queries.jsonl",
        "models/data/zh/intents.dev.jsonl",
    ] {
        for l in std::fs::read_to_string(root.join(f)).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            queries.push(v["text"].as_str().unwrap().to_string());
        }
    }
    let en = [
        "How do I cancel my order?",
        "where is my parcel",
        "I want my money back",
        "can I pay with a gift card",
        "I forgot my password",
        "how long does delivery take",
    ];
    // Alternate English and Chinese questions.
    let mut mixed = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        mixed.push(q.clone());
        mixed.push(en[i % en.len()].to_string());
    }
    mixed.truncate(n_queries);

    let mut ann_rows = Vec::new();
    println!("| passages | build s | RSS +MB | MB per 10k | dense MB | index search p50 / p99 ms | /v1/kb/search p50 / p99 ms | /v1/triage + answer p50 / p99 ms |");
    println!("|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.models.retain(|m| m.name == "multilingual-e5-small");
        cfg.store.path = Some(dir.path().join("triage.sqlite"));
        cfg.kb.answer_threshold = 0.0;
        cfg.kb.answer_thresholds.clear();
        if let Some(w) = intent_weight {
            cfg.kb.intent_weight = w;
        }
        cfg.limits.queue_wait_ms = 60_000;
        cfg.validate().unwrap();
        let state = tokio::task::spawn_blocking(move || {
            triage::server::loaded(cfg, triage::state::Open::STORE).unwrap()
        })
        .await
        .unwrap();
        let kb = state.kb().unwrap();
        // The base: the shipped articles' passages, embedded for real.
        kb.seed_builtin(&state.models).await.unwrap();
        let store = state.store().unwrap();
        let rows = store.kb_articles("default").unwrap();
        let passages: Vec<(String, Vec<f32>)> = rows
            .iter()
            .flat_map(|r| r.chunks.iter().cloned().zip(r.vectors.iter().cloned()))
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
        let model = rows[0].model.clone();
        let t = Instant::now();
        let mut made = 0usize;
        let mut batch = Vec::new();
        while made < n {
            let (text, v) = &passages[made % passages.len()];
            let extra: Vec<&str> = (0..4)
                .map(|_| VOCAB[rng.random_range(0..VOCAB.len())])
                .collect();
            let mut w: Vec<f32> = v
                .iter()
                .map(|x| x + 0.05 * (rng.random::<f32>() - 0.5))
                .collect();
            let norm = w.iter().map(|x| x * x).sum::<f32>().sqrt();
            w.iter_mut().for_each(|x| *x /= norm);
            let text = format!("{text} {}", extra.join(" "));
            let article = serde_json::json!({
                "id": format!("g{made}"), "title": text.lines().next().unwrap_or(""),
                "body": text, "language": if text.chars().any(|c| c > '\u{2e80}') { "zh" } else { "en" },
                "tags": ["generated"], "steps": []
            });
            batch.push(KbRow {
                kb: "bench".into(),
                id: format!("g{made}"),
                article: article.to_string(),
                model: model.clone(),
                chunks: vec![text],
                vectors: vec![w],
                updated_ms: 0,
            });
            made += 1;
            if batch.len() == 5000 || made == n {
                let b = std::mem::take(&mut batch);
                let s = store.clone();
                tokio::task::spawn_blocking(move || s.kb_put("bench", &b).unwrap())
                    .await
                    .unwrap();
            }
        }
        let written = t.elapsed().as_secs_f64();
        let before = rss_mb();
        let t = Instant::now();
        let k2 = kb.clone();
        tokio::task::spawn_blocking(move || k2.reload("bench").unwrap())
            .await
            .unwrap();
        let build = t.elapsed().as_secs_f64();
        let grown = rss_mb() - before;
        let (_, index) = kb.index(Some("bench"), "kb").unwrap();
        let dense_mb = index.dense_bytes() as f64 / (1 << 20) as f64;
        eprintln!(
            "{n} passages: written to the store in {written:.1} s, index built in {build:.1} s"
        );

        let vecs = kb.embed(&state.models, mixed.clone()).await.unwrap();
        let mut alone = Vec::new();
        for (q, v) in mixed.iter().zip(&vecs) {
            let t = Instant::now();
            let query = Query {
                text: q,
                vec: v,
                top_k: 5,
                language: None,
                mode: Mode::Hybrid,
                intent: None,
            };
            kb.search_embedded(&index, &query).unwrap();
            alone.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let app = triage::app(state.clone());
        let mut search = Vec::new();
        let mut tri = Vec::new();
        for q in &mixed {
            let body = serde_json::json!({"query": q, "kb": "bench", "top_k": 5});
            search.push(post(&app, "/v1/kb/search", body).await);
        }
        // Triage answers from the default knowledge base: make the generated one the default.
        let k3 = kb.clone();
        let s2 = store.clone();
        tokio::task::spawn_blocking(move || {
            let rows = s2.kb_articles("bench").unwrap();
            s2.kb_drop("default").unwrap();
            let rows: Vec<KbRow> = rows
                .into_iter()
                .map(|r| KbRow {
                    kb: "default".into(),
                    ..r
                })
                .collect();
            for part in rows.chunks(5000) {
                s2.kb_put("default", part).unwrap();
            }
            k3.reload("default").unwrap();
            k3.reload("bench").unwrap();
        })
        .await
        .unwrap();
        for (i, q) in mixed.iter().enumerate() {
            let body = serde_json::json!({"conversation_id": format!("bench-{n}-{i}"), "text": q});
            tri.push(post(&app, "/v1/triage", body).await);
        }
        println!(
            "| {n} | {build:.1} | {grown:.0} | {:.1} | {dense_mb:.1} | {:.2} / {:.2} | {:.1} / {:.1} | {:.1} / {:.1} |",
            grown / n as f64 * 10_000.0,
            pct(&mut alone, 50.0),
            pct(&mut alone, 99.0),
            pct(&mut search, 50.0),
            pct(&mut search, 99.0),
            pct(&mut tri, 50.0),
            pct(&mut tri, 99.0),
        );
        ann_rows.push(dense_side_by_side(&index, &vecs, kb.cfg.candidates));
        let s = state.clone();
        drop(app);
        tokio::task::spawn_blocking(move || drop(s)).await.unwrap();
        drop(state);
    }
    println!();
    println!("| passages | ANN build s | graph MB | exact dense p50 / p99 ms | ANN dense p50 / p99 ms | recall@10 | recall@candidates | scan fallbacks |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in ann_rows {
        println!("{r}");
    }
}

/// The dense retriever alone, exact scan against the ANN graph (built now if the size did not
/// build it): latency of `candidates` passages per query, recall of the graph's top 10 and of
/// its candidates against the scan's, and how often the graph fell short (the scan answered).
fn dense_side_by_side(index: &triage::kb::index::KbIndex, vecs: &[Vec<f32>], n: usize) -> String {
    let passages = index.size().1;
    let mut exact_ms = Vec::new();
    let mut exact = Vec::new();
    for v in vecs {
        let t = Instant::now();
        exact.push(index.dense_exact(v, n));
        exact_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (took, bytes) = match index.ann_stats() {
        Some(s) => s,
        None => (index.build_ann(), index.ann_stats().map_or(0, |s| s.1)),
    };
    let mut ann_ms = Vec::new();
    let (mut fallbacks, mut hit10, mut hit_n, mut total_n) = (0, 0, 0, 0);
    let same = |a: &triage::kb::dense::Near, b: &triage::kb::dense::Near| {
        (a.key, a.chunk) == (b.key, b.chunk)
    };
    for (v, e) in vecs.iter().zip(&exact) {
        let t = Instant::now();
        let got = index.dense_ann(v, n).unwrap_or_else(|| {
            fallbacks += 1;
            index.dense_exact(v, n)
        });
        ann_ms.push(t.elapsed().as_secs_f64() * 1e3);
        hit_n += got.iter().filter(|a| e.iter().any(|x| same(a, x))).count();
        total_n += e.len();
        let top10 = index.dense_ann(v, 10).unwrap_or_default();
        hit10 += top10
            .iter()
            .filter(|a| e[..10.min(e.len())].iter().any(|x| same(a, x)))
            .count();
    }
    eprintln!(
        "{passages} passages: ANN graph built in {:.1} s",
        took.as_secs_f64()
    );
    format!(
        "| {passages} | {:.1} | {:.1} | {:.2} / {:.2} | {:.2} / {:.2} | {:.3} | {:.3} | {fallbacks} / {} |",
        took.as_secs_f64(),
        bytes as f64 / (1 << 20) as f64,
        pct(&mut exact_ms, 50.0),
        pct(&mut exact_ms, 99.0),
        pct(&mut ann_ms, 50.0),
        pct(&mut ann_ms, 99.0),
        hit10 as f64 / (10 * vecs.len()) as f64,
        hit_n as f64 / total_n.max(1) as f64,
        vecs.len(),
    )
}
