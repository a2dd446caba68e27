//! `triage qa eval-required`: the scorecard's `required` items (greeting, closing, apology)
//! against labelled replies (`models/qa/data/required.jsonl`): precision and recall of the
//! phrase lists alone and with encoder similarity to the examples, per item and language, and
//! on the train split the similarity threshold that maximises F1 (how the shipped one was chosen).

use crate::config::Config;
use crate::qa::scorecard::Check;
use crate::qa::similar::best_sentences;
use crate::qa::Inspector;
use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args)]
pub struct RequiredArgs {
    /// JSON lines `{"item", "lang", "positive", "text", "split"}`.
    #[arg(long, default_value = "models/qa/data/required.jsonl")]
    data: PathBuf,
    /// The split reported (`dev`, `train`, `all`); the threshold sweep is always on `train`.
    #[arg(long, default_value = "dev")]
    split: String,
    /// The server's config (its scorecard and default encoder).
    #[arg(long, env = "TRIAGE_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Row {
    item: String,
    lang: String,
    positive: bool,
    text: String,
    split: String,
}

/// (tp, fp, fn) -> (precision, recall, F1).
fn prf(c: [u32; 3]) -> (f64, f64, f64) {
    let p = f64::from(c[0]) / f64::from((c[0] + c[1]).max(1));
    let r = f64::from(c[0]) / f64::from((c[0] + c[2]).max(1));
    let f = if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    (p, r, f)
}

fn count(c: &mut [u32; 3], want: bool, got: bool) {
    match (want, got) {
        (true, true) => c[0] += 1,
        (false, true) => c[1] += 1,
        (true, false) => c[2] += 1,
        _ => {}
    }
}

pub fn run(a: RequiredArgs) -> Result<()> {
    let cfg = Config::load(a.config.as_deref(), &Default::default())?;
    let qa = Inspector::open(&cfg.qa)?;
    let text = std::fs::read_to_string(&a.data)
        .with_context(|| format!("cannot read {}", a.data.display()))?;
    let rows: Vec<Row> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}: line {}", a.data.display(), i + 1))
        })
        .collect::<Result<_>>()?;
    let models = crate::cli::load_models(&cfg)?;
    let rt = tokio::runtime::Runtime::new()?;
    println!("| item | language | phrases P | phrases R | + similarity P | + similarity R | F1 |");
    println!("|---|---|---|---|---|---|---|");
    let mut sweeps = Vec::new();
    for it in &qa.scorecard().items {
        let Check::Required(_, phrases, Some(ex)) = &it.check else {
            continue;
        };
        let mine: Vec<&Row> = rows.iter().filter(|r| r.item == it.id).collect();
        let texts: Vec<&str> = mine.iter().map(|r| r.text.as_str()).collect();
        let best = rt.block_on(best_sentences(
            &models,
            &texts,
            &ex.texts,
            std::time::Instant::now(),
        ))?;
        let found: Vec<(bool, f32)> = mine
            .iter()
            .zip(&best)
            .map(|(r, b)| {
                let phrase = !phrases.find(&r.text).is_empty();
                (phrase, b.as_ref().map_or(0.0, |b| b.0))
            })
            .collect();
        let mut table: BTreeMap<String, ([u32; 3], [u32; 3])> = BTreeMap::new();
        for (r, (phrase, cos)) in mine.iter().zip(&found) {
            if a.split != "all" && r.split != a.split {
                continue;
            }
            for lang in [r.lang.as_str(), "all"] {
                let e = table.entry(lang.to_string()).or_default();
                count(&mut e.0, r.positive, *phrase);
                count(&mut e.1, r.positive, *phrase || *cos >= ex.similarity);
            }
        }
        for (lang, (p, s)) in table {
            let ((pp, pr, _), (sp, sr, sf)) = (prf(p), prf(s));
            println!(
                "| {} | {lang} | {pp:.3} | {pr:.3} | {sp:.3} | {sr:.3} | {sf:.3} |",
                it.id
            );
        }
        // The train split's sweep.
        let train: Vec<(bool, bool, f32)> = mine
            .iter()
            .zip(&found)
            .filter(|(r, _)| r.split == "train")
            .map(|(r, (p, c))| (r.positive, *p, *c))
            .collect();
        let mut line = Vec::new();
        for k in 80..=96 {
            let t = k as f32 / 100.0;
            let mut c = [0u32; 3];
            for (want, phrase, cos) in &train {
                count(&mut c, *want, *phrase || *cos >= t);
            }
            line.push((t, prf(c).2));
        }
        sweeps.push((it.id.clone(), ex.similarity, line));
    }
    println!("\ntrain split: F1 of phrases + similarity by threshold\n");
    for (id, shipped, line) in sweeps {
        let best = line
            .iter()
            .copied()
            .fold((0.0, -1.0), |b, x| if x.1 > b.1 { x } else { b });
        let cells: Vec<String> = line.iter().map(|(t, f)| format!("{t:.2}:{f:.3}")).collect();
        println!(
            "{id} (shipped {shipped:.2}; best {:.2} F1 {:.3}): {}",
            best.0,
            best.1,
            cells.join(" ")
        );
    }
    Ok(())
}
