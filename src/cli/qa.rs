//! `triage qa eval`: the scorecard's reply items against labelled agent replies
//! (`models/qa/data/replies.jsonl`): precision and recall per item and language, and the recall
//! of lexicon items on each kind of evasion. `triage qa run`: the scorecard over a JSONL file of
//! historical conversations (resumable, like `triage batch summarize`); `triage qa synth`: test
//! conversations with violations at known rates.

use super::batch::{default_rejects, Progress};
use crate::batch::run::{check_paths, run as run_batch, RunOptions, Stats};
use crate::config::{Config, Overrides};
use crate::qa::batch::{output_totals, QaBatch, Totals};
use crate::qa::{Inspector, QaConfig, ReplyScores};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

#[derive(Subcommand)]
pub enum QaCmd {
    /// Precision and recall of the scorecard's reply items on labelled replies.
    Eval(EvalArgs),
    /// Precision and recall of the `required` items (phrases, and encoder similarity to their
    /// examples) on labelled replies, with the train split's threshold sweep.
    EvalRequired(super::qa_required::RequiredArgs),
    /// Inspect a JSONL file of conversations against the scorecard into a JSONL file of results.
    /// Rerun with the same output to resume: ids already written are skipped.
    Run(RunArgs),
    /// Write synthetic conversations (Chinese and English, 2-12 turns, timestamps, agent ids)
    /// with scorecard violations at known rates, as JSONL.
    Synth(SynthArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// Conversations, one JSON object a line:
    /// {"id", "turns": [{"role", "text", "at_ms"?: epoch ms, "agent_id"?}]}.
    #[arg(long)]
    input: PathBuf,
    /// Results, one a line: {"id", "agent_id", "score", "fatal", "items", "timings", "replies",
    /// ...}.
    #[arg(long)]
    output: PathBuf,
    /// Rejected lines: {"line", "id"?, "reason"} (default: <output stem>.rejects.jsonl).
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Conversations per write (default: batch.batch_size of the config).
    #[arg(long)]
    batch_size: Option<usize>,
    /// TOML config file (see triage.example.toml): `qa.scorecard`, `batch.*`.
    #[arg(long, env = "TRIAGE_CONFIG")]
    config: Option<PathBuf>,
    /// A scorecard instead of the configured or shipped one.
    #[arg(long)]
    scorecard: Option<PathBuf>,
}

#[derive(Args)]
pub struct SynthArgs {
    /// Valid conversations to write (ids c000001, c000002, ...).
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Deliberately bad lines to add (as `triage batch synth --bad`).
    #[arg(long, default_value_t = 0)]
    bad: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output file (default: stdout).
    #[arg(long)]
    output: Option<PathBuf>,
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
    /// Also run the abuse head (the `model` items), as the server does; its figures are
    /// measured against the `abusive_language` labels.
    #[arg(long)]
    models: bool,
    /// The server's config (for `--models`: which abuse head, which encoder).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// The abuse head's score of each text, as the server computes it (the head's own encoder and
/// tuned layers, calibrated for the detected language).
fn abuse_scores(config: Option<&std::path::Path>, texts: &[String]) -> Result<Vec<f32>> {
    let cfg = crate::config::Config::load(config, &Default::default())?;
    let reg = crate::heads::registry::HeadRegistry::load(&cfg.intent, &cfg.emotion, &cfg.models)?;
    let head = reg
        .abuse
        .as_deref()
        .context("no abuse head is configured (emotion.abuse_head)")?;
    let enc = crate::cli::heads::head_encoder(config, head)?;
    let x = enc.embed_all(texts, "agent replies")?;
    let langid = crate::lang::LangId::default();
    Ok(texts
        .iter()
        .zip(&x)
        .map(|(t, v)| {
            let lang = langid.detect(t).language;
            head.label_score(v, Some(&lang), crate::heads::registry::ABUSIVE)
        })
        .collect())
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
        QaCmd::EvalRequired(a) => super::qa_required::run(a),
        QaCmd::Run(a) => run_file(a),
        QaCmd::Synth(a) => synth(a),
    }
}

fn synth(a: SynthArgs) -> Result<()> {
    super::batch::write_to(a.output.as_deref(), &mut |w| {
        crate::qa::synth::write(w, a.count, a.bad, a.seed)
    })
}

fn run_file(a: RunArgs) -> Result<()> {
    let cfg = Config::load(a.config.as_deref(), &Overrides::default())?;
    let opts = RunOptions {
        rejects: a.rejects.unwrap_or_else(|| default_rejects(&a.output)),
        input: a.input,
        output: a.output,
        batch_size: a.batch_size.unwrap_or(cfg.batch.batch_size),
        max_line_bytes: cfg.batch.max_line_bytes,
    };
    check_paths(&opts)?;
    let inspector = Inspector::open(&QaConfig {
        enabled: true,
        scorecard: a.scorecard.or(cfg.qa.scorecard.clone()),
        ..cfg.qa.clone()
    })?;
    if cfg.server.threads > 0 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", cfg.server.threads.to_string());
    }
    let qa = QaBatch::new(inspector);
    let mut progress = Progress::new("qa");
    let stop = AtomicBool::new(false);
    let stats = run_batch(&opts, &qa, &stop, &mut |s| progress.update(s));
    progress.bar.finish_and_clear();
    let stats = stats?;
    let all = output_totals(&opts.output)?;
    report(&stats, &opts, &qa.totals(), &all);
    Ok(())
}

fn report(s: &Stats, o: &RunOptions, run: &Totals, all: &Totals) {
    let secs = s.elapsed_secs.max(1e-9);
    eprintln!(
        "qa: read {}, inspected {}, skipped (already done) {}, rejected {} ({} new)",
        s.read, s.written, s.skipped, s.rejected, s.rejected_new
    );
    eprintln!(
        "qa: {:.1} conv/s, {:.1} turns/s, wall {:.2} s (inspection {:.2} s)",
        s.written as f64 / secs,
        s.turns as f64 / secs,
        s.elapsed_secs,
        s.summarize_secs
    );
    for (what, t) in [("this run", run), ("whole output", all)] {
        eprintln!(
            "qa: {what}: {} conversations, mean score {:.2}, fatal share {:.2}%",
            t.conversations,
            t.mean_score(),
            100.0 * t.fatal_share()
        );
    }
    eprintln!(
        "qa: results in {}, rejects in {}",
        o.output.display(),
        o.rejects.display()
    );
}

fn eval(a: EvalArgs) -> Result<()> {
    let cfg = QaConfig {
        scorecard: a.scorecard,
        ..QaConfig::default()
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
    let scores = match a.models {
        true => {
            let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
            abuse_scores(a.config.as_deref(), &texts)?
                .into_iter()
                .map(Some)
                .collect()
        }
        false => vec![None; rows.len()],
    };
    let model_items: BTreeSet<&str> = qa
        .scorecard()
        .items
        .iter()
        .filter(|i| i.check.name() == "model")
        .map(|i| i.id.as_str())
        .collect();
    // The model items and the rules together against the abusive label: (lang) -> counts.
    let mut model_counts: BTreeMap<(String, String), [u32; 3]> = BTreeMap::new();
    for (r, s) in rows.iter().zip(&scores) {
        let found: BTreeSet<String> = qa
            .inspect_scored(&r.text, ReplyScores { abusive: *s })
            .findings
            .into_iter()
            .map(|f| f.item)
            .collect();
        if a.models {
            let want = r.labels.iter().any(|l| l == "abusive_language");
            let by_model = found.iter().any(|f| model_items.contains(f.as_str()));
            let by_any = by_model || found.contains("abusive_language");
            if by_model != want {
                let what = if want { "missed" } else { "false flag" };
                eprintln!("model items, {what}: {:.2} {}", s.unwrap_or(0.0), r.text);
            }
            for (what, got) in [("model items", by_model), ("model or word list", by_any)] {
                for lang in [r.lang.as_str(), "all"] {
                    let c = model_counts
                        .entry((what.to_string(), lang.to_string()))
                        .or_default();
                    match (want, got) {
                        (true, true) => c[0] += 1,
                        (false, true) => c[1] += 1,
                        (true, false) => c[2] += 1,
                        _ => {}
                    }
                }
            }
        }
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
    if a.models {
        println!(
            "\nabusive replies (label `abusive_language`) found by:\n\n\
             | found by | language | TP | FP | FN | precision | recall | F1 |\n|---|---|---|---|---|---|---|---|"
        );
        for ((what, lang), [tp, fp, fn_]) in &model_counts {
            let p = f64::from(*tp) / f64::from((tp + fp).max(1));
            let r = f64::from(*tp) / f64::from((tp + fn_).max(1));
            let f1 = if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            };
            println!("| {what} | {lang} | {tp} | {fp} | {fn_} | {p:.3} | {r:.3} | {f1:.3} |");
        }
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
