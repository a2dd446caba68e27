//! Embedding throughput/latency of triage's encoder (tokenize + forward + pool per batch call),
//! in the same JSONL schema as scripts/bench_torch.py; scripts/bench.sh runs both side by side.
//!
//!     cargo bench --bench embed -- --model-dir DIR --texts FILE [--prefix "query: "]
//!         [--min-seconds 5] [--min-iters 3] [--precision f32|bf16|auto|candle]
//!         [--device cpu|cuda:N] [--dump FILE]
//! Threads: RAYON_NUM_THREADS (candle's CPU pool), set by scripts/bench.sh. On a GPU (a build
//! with `--features cuda`) the encoder runs through candle's CUDA ops in f32 (`--precision` is
//! ignored there); each call ends with the embeddings copied back to the host, so it is timed
//! to completion. `--dump` writes the embeddings of each case of batch <= 32 (last call) as JSON
//! `{case: [[f32]]}`, for comparing systems (scripts/gpu_bench.sh).

use std::time::Instant;
use triage::config::Overlong;
use triage::models::encoder::{Embedder, TextPrep};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.len() == 1 {
        return sorted[0];
    }
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && arg(&args, "--model-dir").is_none() {
        eprintln!("embed bench: needs --model-dir and --texts (run scripts/bench.sh)");
        return Ok(());
    }
    let dir = std::path::PathBuf::from(arg(&args, "--model-dir").expect("--model-dir"));
    let texts: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        arg(&args, "--texts").expect("--texts"),
    )?)?;
    let prefix = arg(&args, "--prefix").unwrap_or_default();
    let min_secs: f64 = arg(&args, "--min-seconds").map_or(5.0, |s| s.parse().unwrap_or(5.0));
    let min_iters: usize = arg(&args, "--min-iters").map_or(3, |s| s.parse().unwrap_or(3));
    let precision = arg(&args, "--precision").unwrap_or_else(|| "f32".into());
    let fast = match precision.as_str() {
        "candle" => None,
        p => Some(triage::models::fast::Precision::parse(p)?),
    };
    let spec = triage::engine::device::parse_device(
        &arg(&args, "--device").unwrap_or_else(|| "cpu".into()),
    )?;
    let device = triage::engine::device::open(spec)?;
    let emb = Embedder::load_with(&dir, &device, fast)?;
    let system = match spec {
        triage::engine::device::DeviceSpec::Cpu if fast.is_some() => {
            let amx = emb.precision() == "bf16" && triage::models::fast::amx::available();
            format!(
                "triage-{}{}",
                emb.precision(),
                if amx { "-amx" } else { "" }
            )
        }
        triage::engine::device::DeviceSpec::Cpu => "triage-candle".to_string(),
        gpu => format!("triage-{}-f32", triage::engine::device::describe(gpu)),
    };
    let max = triage::engine::token_limit(None, &dir, emb.config().max_tokens());
    let prep = TextPrep::load(&dir, &prefix, max)?;
    let call = |batch: &[String]| -> anyhow::Result<(usize, Vec<Vec<f32>>)> {
        let mut ids = Vec::with_capacity(batch.len());
        for t in batch {
            ids.push(
                prep.prepare(t, Overlong::Truncate)?
                    .map_err(|n| anyhow::anyhow!("{n}"))?
                    .ids,
            );
        }
        let refs: Vec<&[u32]> = ids.iter().map(|v| v.as_slice()).collect();
        let out = emb.embed_batch(&refs)?;
        Ok((ids.iter().map(Vec::len).sum(), out))
    };
    let mut dump = serde_json::Map::new();
    for case in texts["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().unwrap_or("?");
        let batch: Vec<String> = case["texts"]
            .as_array()
            .expect("texts")
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect();
        let (tokens, _) = call(&batch)?;
        let (_, vecs) = call(&batch)?;
        if batch.len() <= 32 {
            dump.insert(name.to_string(), serde_json::json!(vecs));
        }
        let mut lat = Vec::new();
        let start = Instant::now();
        while lat.len() < min_iters || start.elapsed().as_secs_f64() < min_secs {
            let t = Instant::now();
            call(&batch)?;
            lat.push(t.elapsed().as_secs_f64());
        }
        let total: f64 = lat.iter().sum();
        lat.sort_by(|a, b| a.total_cmp(b));
        let line = serde_json::json!({
            "system": system,
            "case": name,
            "batch": batch.len(),
            "tokens": tokens as f64 / batch.len() as f64,
            "iters": lat.len(),
            "emb_per_s": (batch.len() * lat.len()) as f64 / total,
            "p50_ms": percentile(&lat, 50.0) * 1e3,
            "p99_ms": percentile(&lat, 99.0) * 1e3,
        });
        println!("{line}");
        eprintln!("{line}");
    }
    if let Some(path) = arg(&args, "--dump") {
        std::fs::write(path, serde_json::Value::Object(dump).to_string())?;
    }
    Ok(())
}
