//! `triage eval --task screenshot --data DIR`: the whole screenshot path (decode, OCR, match)
//! over labelled images: accuracy, unknown rate, confident wrong answers, a per-fault table and
//! the latency per screenshot.

use crate::config::Config;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

#[derive(Deserialize)]
struct Row {
    file: String,
    fault: Option<String>,
    /// For negatives: `success` or `neutral` screens, else an unrelated image.
    #[serde(default)]
    kind: Option<String>,
    /// The language of the image's text (`null` for textless images).
    #[serde(default)]
    language: Option<String>,
}

#[derive(Default, serde::Serialize)]
struct PerFault {
    n: usize,
    correct: usize,
    unknown: usize,
    wrong: usize,
}

/// `customer_language`: sent with every image (`label`: each image's own `language`).
pub fn run(
    dir: &Path,
    config: Option<&Path>,
    json: bool,
    customer_language: Option<&str>,
) -> Result<()> {
    let labels = dir.join("labels.jsonl");
    let text = std::fs::read_to_string(&labels)
        .with_context(|| format!("cannot read {}", labels.display()))?;
    let rows: Vec<Row> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("labels.jsonl line {}", i + 1))
        })
        .collect::<Result<_>>()?;
    let mut cfg = Config::load(config, &Default::default())?;
    let model = cfg.default_model.clone();
    cfg.models.retain(|m| m.name == model);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let models = super::load_models(&cfg)?;
        let lang = std::sync::Arc::new(crate::lang::LangId::default());
        let retry = cfg.limits.retry_after_secs;
        let vision = crate::vision::Vision::start(&cfg.screenshot, models, lang, retry)?;
        let mut table: BTreeMap<String, PerFault> = BTreeMap::new();
        let (mut correct, mut unknown_pos, mut wrong_pos, mut false_pos) = (0, 0, 0, 0);
        let (mut pos, mut neg) = (0, 0);
        let mut ms = Vec::new();
        let mut cpu = Vec::new();
        let mut errors = Vec::new();
        let mut details = Vec::new();
        for r in &rows {
            let bytes = std::fs::read(dir.join(&r.file)).with_context(|| format!("cannot read {}", r.file))?;
            let t = Instant::now();
            let cpu0 = cpu_ms();
            let language = match customer_language {
                Some("label") => r.language.clone(),
                other => other.map(str::to_string),
            };
            let got = match crate::vision::analyze(&vision, bytes, None, language).await {
                Ok(a) => {
                    let top = a.candidates.first();
                    details.push(serde_json::json!({
                        "file": r.file, "want": r.fault, "got": a.fault.as_ref().map(|f| &f.id),
                        "top": top.map(|c| &c.id), "top_score": top.map(|c| c.score),
                        "second_score": a.candidates.get(1).map(|c| c.score),
                        "top_codes": a.top_evidence.0, "top_keywords": a.top_evidence.1,
                        "timings_ms": a.timings_ms, "layout": a.ocr.layout,
                        "tesseract": a.ocr.tesseract, "confidence": a.ocr.confidence,
                        "preprocessing": a.ocr.preprocessing,
                        "failure": a.evidence.failure, "success": a.evidence.success,
                        "text": a.ocr.text.chars().take(400).collect::<String>(),
                        "ms": t.elapsed().as_secs_f64() * 1000.0, "cpu_ms": cpu_ms() - cpu0,
                    }));
                    a.fault.map(|f| f.id)
                }
                Err(e) => {
                    errors.push(format!("{}: {e}", r.file));
                    None
                }
            };
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            cpu.push(cpu_ms() - cpu0);
            let key = r.fault.clone().unwrap_or_else(|| {
                format!("({})", r.kind.as_deref().unwrap_or("unrelated"))
            });
            let e = table.entry(key).or_default();
            e.n += 1;
            match (&r.fault, &got) {
                (Some(want), Some(g)) if want == g => {
                    correct += 1;
                    pos += 1;
                    e.correct += 1;
                }
                (Some(_), None) => {
                    pos += 1;
                    unknown_pos += 1;
                    e.unknown += 1;
                }
                (Some(_), Some(_)) => {
                    pos += 1;
                    wrong_pos += 1;
                    e.wrong += 1;
                }
                (None, None) => {
                    correct += 1;
                    neg += 1;
                    e.correct += 1;
                }
                (None, Some(_)) => {
                    neg += 1;
                    false_pos += 1;
                    e.wrong += 1;
                }
            }
            if !json && (got.as_deref() != r.fault.as_deref()) {
                eprintln!("  {}: want {:?}, got {:?}", r.file, r.fault, got);
            }
        }
        ms.sort_by(f64::total_cmp);
        let q = |p: f64| ms.get(((ms.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
        let n = rows.len().max(1) as f64;
        let cpu_mean = cpu.iter().fold((0.0, 0.0, 0.0), |a, c: &Cpu| {
            (a.0 + (c.user + c.system) / n, a.1 + c.user / n, a.2 + c.system / n)
        });
        let report = serde_json::json!({
            "images": rows.len(),
            "accuracy": correct as f64 / n,
            "positives": pos, "negatives": neg,
            "positive_accuracy": (pos - unknown_pos - wrong_pos) as f64 / pos.max(1) as f64,
            "unknown_rate": unknown_pos as f64 / pos.max(1) as f64,
            "confident_wrong_on_positives": wrong_pos,
            "confident_answers_on_negatives": false_pos,
            "latency_ms_p50": q(0.5), "latency_ms_p90": q(0.9), "latency_ms_max": q(1.0),
            "cpu_ms_mean": cpu_mean.0, "cpu_user_ms_mean": cpu_mean.1, "cpu_system_ms_mean": cpu_mean.2,
            "errors": errors,
            "per_fault": table,
            "rows": details,
        });
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "images {}  accuracy {:.3}  (positives {}: correct {:.3}, unknown {:.3}, wrong {}; negatives {}: confident answers {})",
                rows.len(), correct as f64 / n, pos, report["positive_accuracy"].as_f64().unwrap_or(0.0),
                report["unknown_rate"].as_f64().unwrap_or(0.0), wrong_pos, neg, false_pos
            );
            println!("latency per screenshot: p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms", q(0.5), q(0.9), q(1.0));
            println!(
                "CPU per screenshot (whole process, all threads): {:.0} ms (user {:.0}, system {:.0})",
                cpu_mean.0, cpu_mean.1, cpu_mean.2
            );
            println!("{:<20} {:>4} {:>8} {:>8} {:>6}", "fault", "n", "correct", "unknown", "wrong");
            for (k, v) in &table {
                println!("{k:<20} {:>4} {:>8} {:>8} {:>6}", v.n, v.correct, v.unknown, v.wrong);
            }
            for e in &errors {
                println!("error: {e}");
            }
        }
        Ok(())
    })
}

/// The process's user and system CPU time so far, in ms.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Cpu {
    user: f64,
    system: f64,
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, o: Cpu) -> Cpu {
        Cpu {
            user: self.user - o.user,
            system: self.system - o.system,
        }
    }
}

fn cpu_ms() -> Cpu {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    Cpu {
        user: ms(u.ru_utime),
        system: ms(u.ru_stime),
    }
}
