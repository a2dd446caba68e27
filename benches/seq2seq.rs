//! Seq2seq generation throughput of triage (Marian / T5, greedy and beam search), in the JSONL
//! schema of scripts/bench_seq2seq.py; scripts/bench_seq2seq.sh runs both side by side.
//!
//!     cargo bench --bench seq2seq -- --model-dir DIR --inputs FILE [--new-tokens 64]
//!         [--cases greedy-b1,greedy-b16,beam4-b1,beam4-b16] [--min-seconds 2] [--min-iters 1]
//! `--inputs` is a JSON list of source id rows (fed as ids: no tokenizer work is timed); a case
//! `greedy-bN` / `beamK-bN` takes the first N rows. Output is forced to `--new-tokens` tokens
//! per row (`min_new_tokens = max_new_tokens`); the line records the lengths produced. One short
//! warm-up call per process, then every call is timed (mean over `--min-iters` / `--min-seconds`).
//! Threads: RAYON_NUM_THREADS (candle's CPU pool).

use std::time::Instant;
use triage::seq2seq::{GenerateOptions, Seq2Seq};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// `greedy-b16` -> (1, 16); `beam4-b1` -> (4, 1).
fn parse_case(case: &str) -> anyhow::Result<(usize, usize)> {
    let (search, batch) = case
        .split_once("-b")
        .ok_or_else(|| anyhow::anyhow!("case {case:?}: expected greedy-bN or beamK-bN"))?;
    let beams = match search {
        "greedy" => 1,
        s => s.strip_prefix("beam").unwrap_or(s).parse()?,
    };
    Ok((beams, batch.parse()?))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(inputs)) = (arg(&args, "--model-dir"), arg(&args, "--inputs")) else {
        eprintln!("seq2seq bench: needs --model-dir and --inputs (run scripts/bench_seq2seq.sh)");
        return Ok(());
    };
    let rows: Vec<Vec<u32>> = serde_json::from_str(&std::fs::read_to_string(inputs)?)?;
    let new_tokens: usize = arg(&args, "--new-tokens").map_or(Ok(64), |s| s.parse())?;
    let min_secs: f64 = arg(&args, "--min-seconds").map_or(Ok(2.0), |s| s.parse())?;
    let min_iters: usize = arg(&args, "--min-iters").map_or(Ok(1), |s| s.parse())?;
    let cases =
        arg(&args, "--cases").unwrap_or_else(|| "greedy-b1,greedy-b16,beam4-b1,beam4-b16".into());
    let model = Seq2Seq::load(std::path::Path::new(&dir), &candle_core::Device::Cpu)?;
    let warm = GenerateOptions {
        max_new_tokens: 4,
        ..GenerateOptions::default()
    };
    model.generate_ids(&rows[..1], &warm)?; // warm-up (page in the weights)
    for case in cases.split(',') {
        let (beams, batch) = parse_case(case)?;
        anyhow::ensure!(
            batch <= rows.len(),
            "case {case}: only {} inputs",
            rows.len()
        );
        let batch_rows = &rows[..batch];
        let opts = GenerateOptions {
            max_new_tokens: new_tokens,
            min_new_tokens: new_tokens,
            num_beams: beams,
            ..model.default_options()
        };
        let mut lengths = Vec::new();
        let mut times = Vec::new();
        let start = Instant::now();
        while times.len() < min_iters || start.elapsed().as_secs_f64() < min_secs {
            let t = Instant::now();
            let out = model.generate_ids(batch_rows, &opts)?;
            times.push(t.elapsed().as_secs_f64());
            lengths = out.iter().map(Vec::len).collect();
        }
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let line = serde_json::json!({
            "system": "triage",
            "model": model.kind(),
            "case": case,
            "batch": batch,
            "beams": beams,
            "iters": times.len(),
            "seconds": mean,
            "tokens_per_s": (batch * new_tokens) as f64 / mean,
            "lengths": lengths,
        });
        println!("{line}");
        eprintln!("{line}");
    }
    Ok(())
}
