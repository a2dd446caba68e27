//! `triage kb import` (JSON lines, CSV, Markdown files or a folder of them, into the configured
//! store) and `triage kb eval` (retrieval quality of BM25, dense and hybrid search on labelled
//! questions; fitting the confidence and choosing the answer threshold on tuning questions).

use crate::config::{Config, Overrides};
use crate::heads::registry::HeadRegistry;
use crate::kb::confidence::{confidence, fit, threshold_for, WEIGHTS};
use crate::kb::import::{parse, Format};
use crate::kb::index::KbIndex;
use crate::kb::{Article, Kb, Mode, Query};
use crate::store::Store;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Subcommand)]
pub enum KbCmd {
    /// Import articles into the configured store (all of a file or none; ids replace).
    Import(ImportArgs),
    /// Measure retrieval (recall@1, recall@5, MRR@10) and bot answers on labelled questions.
    Eval(EvalArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    /// A .jsonl, .csv or .md file, or a folder of them.
    path: PathBuf,
    /// The knowledge base (default: `kb.default_kb`).
    #[arg(long)]
    kb: Option<String>,
    #[arg(long, env = "TRIAGE_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, env = "TRIAGE_HOME")]
    home: Option<PathBuf>,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Articles (JSON lines) to index; each article's first tag is the intent it answers.
    #[arg(long, required = true)]
    articles: Vec<PathBuf>,
    /// Held-out questions, `NAME=FILE` (JSON lines of `{"text", "intent"}`).
    #[arg(long, required = true)]
    queries: Vec<String>,
    /// Tuning questions (same form) to fit the confidence and choose the threshold on.
    #[arg(long)]
    tune: Vec<PathBuf>,
    /// The precision the answer threshold is chosen for.
    #[arg(long, default_value_t = 0.95)]
    target: f32,
    /// Write each question's answer-search hits here (JSON lines), for studying the confidence.
    #[arg(long)]
    dump: Option<PathBuf>,
    /// A SQLite file that keeps the indexed articles between runs (default: a temporary one).
    #[arg(long)]
    store: Option<PathBuf>,
    #[arg(long, env = "TRIAGE_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, env = "TRIAGE_HOME")]
    home: Option<PathBuf>,
}

pub fn run(cmd: KbCmd) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cmd {
        KbCmd::Import(a) => rt.block_on(import(a)),
        KbCmd::Eval(a) => rt.block_on(eval(a)),
    }
}

fn config(config: Option<PathBuf>, home: Option<PathBuf>) -> Result<Config> {
    let ov = Overrides {
        home,
        ..Overrides::default()
    };
    Config::load(config.as_deref(), &ov)
}

/// The configured models, loaded with the heads' fine-tuned layers (`kb.branch` embeds with
/// them).
fn models_with_heads(cfg: &Config) -> Result<(Arc<crate::engine::Models>, HeadRegistry)> {
    let heads = HeadRegistry::load(&cfg.intent, &cfg.emotion, &cfg.models)?;
    Ok((super::load_models_with(cfg, &heads)?, heads))
}

/// The articles of `path` (a file, or every .jsonl/.csv/.md file of a folder), checked.
pub fn read_articles(path: &Path, cfg: &crate::kb::KbConfig) -> Result<Vec<Article>> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| Format::of_path(p).is_some())
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Vec::new();
    for f in files {
        let format = Format::of_path(&f)
            .with_context(|| format!("{}: not .jsonl, .csv or .md", f.display()))?;
        let text = std::fs::read_to_string(&f)
            .with_context(|| format!("cannot read {} as UTF-8 text", f.display()))?;
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let articles =
            parse(&text, format, stem, cfg).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        out.extend(articles);
    }
    Ok(out)
}

async fn import(a: ImportArgs) -> Result<()> {
    let cfg = config(a.config, a.home)?;
    let articles = read_articles(&a.path, &cfg.kb)?;
    let (models, heads) = models_with_heads(&cfg)?;
    let store = Arc::new(Store::open_configured(cfg.store.clone(), &cfg.home())?);
    let lang = Arc::new(crate::lang::LangId::default());
    let kb = Kb::open(cfg.kb.clone(), store, lang, &heads, &cfg.default_model)?;
    let name = a.kb.unwrap_or_else(|| cfg.kb.default_kb.clone());
    let t = Instant::now();
    let w = kb.put(&models, &name, articles, "articles").await?;
    println!(
        "kb {}: {} created, {} replaced, {} passages, {:.1} s",
        w.kb,
        w.created,
        w.replaced,
        w.chunks,
        t.elapsed().as_secs_f32()
    );
    Ok(())
}

#[derive(serde::Deserialize)]
struct Question {
    text: String,
    intent: String,
}

fn questions(path: &Path) -> Result<Vec<Question>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}: line {}", path.display(), i + 1))
        })
        .collect()
}

/// What one question got: the hits of each mode, and the answer search's hits.
struct Graded {
    ranks: [Option<usize>; 4],
    answer: Option<(crate::kb::confidence::Features, bool)>,
    /// The question's detected language.
    lang: String,
    /// The hybrid search's candidates, for `--dump`.
    hits: Vec<serde_json::Value>,
    /// The answer search's hits: (cosine, BM25 rank, dense rank, relevant), for `--dump`.
    top: Vec<serde_json::Value>,
}

/// The retrievers measured, and whether the question's intent (from the default intent set's
/// head) is given to the search.
const MODES: [(Mode, &str, bool); 4] = [
    (Mode::Bm25, "bm25", false),
    (Mode::Dense, "dense", false),
    (Mode::Hybrid, "hybrid, no intent", false),
    (Mode::Hybrid, "hybrid", true),
];

async fn grade(
    kb: &Kb,
    index: &KbIndex,
    models: &crate::engine::Models,
    lang: &crate::lang::LangId,
    qs: &[Question],
    dump: bool,
) -> Result<Vec<Graded>> {
    let mut out = Vec::with_capacity(qs.len());
    for batch in qs.chunks(64) {
        let texts: Vec<String> = batch.iter().map(|q| q.text.clone()).collect();
        let vecs = kb.embed(models, texts).await?;
        for (q, v) in batch.iter().zip(&vecs) {
            let l = lang.detect(&q.text).language;
            // As /v1/kb/search finds it: the default intent set's label when in scope.
            let predicted = kb.intent_of(v, &l);
            let mut ranks = [None; 4];
            for (i, (mode, _, with_intent)) in MODES.iter().enumerate() {
                let query = Query {
                    text: &q.text,
                    vec: v,
                    top_k: 10,
                    language: None,
                    mode: *mode,
                    intent: predicted.as_deref().filter(|_| *with_intent),
                };
                let hits = kb.search_embedded(index, &query)?;
                ranks[i] = hits.iter().position(|h| h.tags.first() == Some(&q.intent));
            }
            let query = Query {
                text: &q.text,
                vec: v,
                top_k: 3,
                language: crate::kb::answer::answer_language(&l),
                mode: Mode::Hybrid,
                intent: predicted.as_deref(),
            };
            let hits = kb.search_embedded(index, &query)?;
            let answer = hits
                .first()
                .map(|h| (h.features, h.tags.first() == Some(&q.intent)));
            let top = hits
                .iter()
                .map(|h| {
                    let ok = h.tags.first() == Some(&q.intent);
                    serde_json::json!([h.cosine, h.bm25_rank, h.dense_rank, ok, h.confidence])
                })
                .collect();
            // Every fused candidate, only for `--dump` (a search of 100 per question).
            let hits = if dump {
                let all = Query {
                    text: &q.text,
                    vec: v,
                    top_k: 100,
                    language: None,
                    mode: Mode::Hybrid,
                    intent: predicted.as_deref(),
                };
                kb.search_embedded(index, &all)?
                    .iter()
                    .map(|h| {
                        let same = h.language.as_deref() == Some(l.as_str());
                        let ok = h.tags.first() == Some(&q.intent);
                        serde_json::json!([
                            h.cosine,
                            h.bm25_rank,
                            h.dense_rank,
                            h.bm25_share,
                            same,
                            ok
                        ])
                    })
                    .collect()
            } else {
                Vec::new()
            };
            out.push(Graded {
                lang: l.clone(),
                ranks,
                answer,
                hits,
                top,
            });
        }
    }
    Ok(out)
}

async fn eval(a: EvalArgs) -> Result<()> {
    let cfg = config(a.config, a.home)?;
    let (models, heads) = models_with_heads(&cfg)?;
    let tmp = tempfile::tempdir()?;
    let path = a.store.unwrap_or_else(|| tmp.path().join("kb_eval.db"));
    let store = Arc::new(Store::open(&path, cfg.store.clone())?);
    let lang = Arc::new(crate::lang::LangId::default());
    let kb = Kb::open(
        cfg.kb.clone(),
        store,
        lang.clone(),
        &heads,
        &cfg.default_model,
    )?;
    let mut articles = Vec::new();
    for p in &a.articles {
        articles.extend(read_articles(p, &cfg.kb)?);
    }
    let name = "eval";
    let held = kb
        .index(Some(name), "kb")
        .map(|(_, i)| i.size().0)
        .unwrap_or(0);
    if held != articles.len() {
        let t = Instant::now();
        for (i, part) in articles.chunks(500).enumerate() {
            kb.put(&models, name, part.to_vec(), "articles").await?;
            eprintln!(
                "indexed {} articles, {:.0} s",
                i * 500 + part.len(),
                t.elapsed().as_secs_f32()
            );
        }
    }
    let (_, index) = kb.index(Some(name), "kb")?;
    println!("intent prior: kb.intent_weight {}", cfg.kb.intent_weight);
    let (n_articles, n_chunks) = index.size();
    println!("index: {n_articles} articles, {n_chunks} passages");

    let mut weights = WEIGHTS;
    let mut kcfg = cfg.kb.clone();
    if !a.tune.is_empty() {
        let mut data: Vec<(String, crate::kb::confidence::Features, bool)> = Vec::new();
        for p in &a.tune {
            let g = grade(&kb, &index, &models, &lang, &questions(p)?, false).await?;
            data.extend(
                g.into_iter()
                    .filter_map(|g| g.answer.map(|(f, y)| (g.lang, f, y))),
            );
        }
        let all: Vec<_> = data.iter().map(|(_, f, y)| (*f, *y)).collect();
        weights = fit(&all);
        println!(
            "fitted on {} tuning questions: weights {weights:?}",
            data.len()
        );
        let mut langs: Vec<&str> = data.iter().map(|d| d.0.as_str()).collect();
        langs.sort();
        langs.dedup();
        for l in langs {
            let scored: Vec<(f32, bool)> = data
                .iter()
                .filter(|d| d.0 == l)
                .map(|(_, f, y)| (confidence(f, &weights), *y))
                .collect();
            if scored.len() < 50 {
                continue;
            }
            let Some((t, p, share)) = threshold_for(&scored, a.target) else {
                bail!(
                    "no threshold reaches precision {} on the {l} tuning questions",
                    a.target
                );
            };
            kcfg.answer_thresholds.insert(l.to_string(), t);
            println!(
                "threshold {l}: {t:.4} ({} tuning questions: precision {p:.3}, answered {share:.3})",
                scored.len()
            );
        }
    }
    println!("\n| questions | n | method | recall@1 | recall@5 | MRR@10 |");
    println!("|---|---|---|---|---|---|");
    let mut answers = Vec::new();
    for spec in &a.queries {
        let (qname, file) = spec
            .split_once('=')
            .with_context(|| format!("--queries {spec}: expected NAME=FILE"))?;
        let qs = questions(Path::new(file))?;
        let g = grade(&kb, &index, &models, &lang, &qs, a.dump.is_some()).await?;
        if let Some(d) = &a.dump {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(d)?;
            for (q, x) in qs.iter().zip(&g) {
                let line = serde_json::json!({"set": qname, "text": q.text, "hits": x.top, "candidates": x.hits});
                writeln!(f, "{line}")?;
            }
        }
        let n = g.len() as f32;
        for (i, (_, mname, _)) in MODES.iter().enumerate() {
            let r1 = g.iter().filter(|x| x.ranks[i] == Some(0)).count() as f32 / n;
            let r5 = g
                .iter()
                .filter(|x| x.ranks[i].is_some_and(|r| r < 5))
                .count() as f32
                / n;
            let mrr = g
                .iter()
                .filter_map(|x| x.ranks[i])
                .map(|r| 1.0 / (r + 1) as f32)
                .sum::<f32>()
                / n;
            println!("| {qname} | {n} | {mname} | {r1:.3} | {r5:.3} | {mrr:.3} |");
        }
        let scored: Vec<(f32, f32, bool)> = g
            .iter()
            .filter_map(|x| {
                let t = kcfg.threshold(Some(&x.lang));
                x.answer.map(|(f, y)| (confidence(&f, &weights), t, y))
            })
            .collect();
        let answered: Vec<&(f32, f32, bool)> = scored.iter().filter(|(c, t, _)| c >= t).collect();
        let right = answered.iter().filter(|(_, _, y)| *y).count();
        answers.push((qname.to_string(), answered.len(), right, g.len()));
    }
    println!("\nbot answers (thresholds {:?}, else {}):\n\n| questions | answered | share | precision |\n|---|---|---|---|", kcfg.answer_thresholds, kcfg.answer_threshold);
    for (q, answered, right, n) in answers {
        let p = if answered == 0 {
            0.0
        } else {
            right as f32 / answered as f32
        };
        println!(
            "| {q} | {answered} / {n} | {:.3} | {p:.3} |",
            answered as f32 / n as f32
        );
    }
    Ok(())
}
