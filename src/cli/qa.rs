//! `triage qa eval`: the scorecard's reply items against labelled agent replies
//! (`models/qa/data/replies.jsonl`): precision and recall per item and language, and the recall
//! of lexicon items on each kind of evasion.

use crate::qa::{Inspector, QaConfig};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum QaCmd {
    /// Precision and recall of the scorecard's reply items on labelled replies.
    Eval(EvalArgs),
}

#[derive(Args)]
pub struct EvalArgs {
    /// JSON lines `{"text", "lang", "labels": [item ids], "evasion", "split"}`.
    #[arg(long, default_value = "models/qa/data/replies.jsonl")]
    data: PathBuf,
    /// Only rows of this split (`dev`, `train`; `all` for every row).
    #[arg(long, default_value = "dev")]
    split: String,
    /// A scorecard instead of the shipped one.
    #[arg(long)]
    scorecard: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Row {
    text: String,
    lang: String,
    labels: Vec<String>,
    #[serde(default)]
    evasion: String,
    /// `paraphrase`: an insult no word list holds (measured apart from the evasions).
    #[serde(default)]
    kind: String,
    #[serde(default)]
    split: String,
}

pub fn run(cmd: QaCmd) -> Result<()> {
    match cmd {
        QaCmd::Eval(a) => eval(a),
    }
}

fn eval(a: EvalArgs) -> Result<()> {
    let cfg = QaConfig {
        enabled: true,
        scorecard: a.scorecard,
    };
    let qa = Inspector::open(&cfg)?;
    let text = std::fs::read_to_string(&a.data)
        .with_context(|| format!("cannot read {}", a.data.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: Row = serde_json::from_str(line)
            .with_context(|| format!("{}: line {}", a.data.display(), i + 1))?;
        if a.split == "all" || r.split == a.split {
            rows.push(r);
        }
    }
    // Items any row is labelled with: the ones measured.
    let items: BTreeSet<String> = rows.iter().flat_map(|r| r.labels.clone()).collect();
    // (item, lang) -> (tp, fp, fn); (evasion) -> (found, total) for lexicon-labelled rows.
    let mut counts: BTreeMap<(String, String), [u32; 3]> = BTreeMap::new();
    let mut evasions: BTreeMap<String, [u32; 2]> = BTreeMap::new();
    let lexicon: BTreeSet<&str> = qa
        .scorecard()
        .items
        .iter()
        .filter(|i| i.check.name() == "lexicon")
        .map(|i| i.id.as_str())
        .collect();
    for r in &rows {
        let found: BTreeSet<String> = qa
            .inspect(&r.text)
            .findings
            .into_iter()
            .map(|f| f.item)
            .collect();
        for item in &items {
            let (want, got) = (r.labels.contains(item), found.contains(item));
            for lang in [r.lang.as_str(), "all"] {
                let c = counts.entry((item.clone(), lang.to_string())).or_default();
                match (want, got) {
                    (true, true) => c[0] += 1,
                    (false, true) => c[1] += 1,
                    (true, false) => c[2] += 1,
                    _ => {}
                }
            }
            if want && lexicon.contains(item.as_str()) && !r.evasion.is_empty() {
                let key = if r.kind == "paraphrase" {
                    "(paraphrase: in no word list)".to_string()
                } else {
                    r.evasion.clone()
                };
                let e = evasions.entry(key).or_default();
                e[0] += u32::from(got);
                e[1] += 1;
            }
        }
    }
    println!("{} replies ({} split)\n", rows.len(), a.split);
    println!(
        "| item | language | TP | FP | FN | precision | recall |\n|---|---|---|---|---|---|---|"
    );
    for ((item, lang), [tp, fp, fn_]) in &counts {
        let p = f64::from(*tp) / f64::from((tp + fp).max(1));
        let r = f64::from(*tp) / f64::from((tp + fn_).max(1));
        println!("| {item} | {lang} | {tp} | {fp} | {fn_} | {p:.3} | {r:.3} |");
    }
    println!("\nlexicon items by evasion:\n\n| evasion | found | recall |\n|---|---|---|");
    for (e, [got, n]) in &evasions {
        println!(
            "| {e} | {got} / {n} | {:.3} |",
            f64::from(*got) / f64::from((*n).max(1))
        );
    }
    Ok(())
}
