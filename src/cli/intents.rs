//! `triage intents eval | extend-eval | discover-eval`: measuring few-shot intents (accuracy
//! with k examples per label, the out-of-scope threshold), the rule that merges them with a
//! trained head, and discovery's cluster purity. Sampling is deterministic (sha256 of seed and
//! text); embeddings are cached like the heads' (`$TRIAGE_HOME/cache/embeddings`).

use crate::config::Config;
use crate::heads::data::{self, Example};
use crate::heads::embed_cache::DatasetEncoder;
use crate::intents::classify::{scores, Scoring, SetView};
use crate::intents::cluster::{by_centrality, cluster};
use crate::intents::keyterms::{suggest_name, Pool};
use crate::intents::store::Embedded;
use anyhow::Result;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The dataset encoder for a configured model.
pub fn encoder(config: Option<&Path>, model: &str) -> Result<(Config, DatasetEncoder)> {
    let cfg = Config::load(config, &Default::default())?;
    let mc = cfg.model(model)?.clone();
    let m = crate::engine::open_model(
        &mc,
        &cfg.home(),
        &candle_core::Device::Cpu,
        cfg.server.precision,
    )?;
    let enc = DatasetEncoder::new(
        &mc.name,
        &mc.prefix,
        m,
        &cfg.home().join("cache/embeddings"),
    );
    Ok((cfg, enc))
}

fn rank(seed: u64, text: &str) -> Vec<u8> {
    Sha256::digest(format!("{seed}:{text}").as_bytes()).to_vec()
}

/// Up to `k` texts per label (those with the smallest hash), labels sorted.
pub fn sample(rows: &[Example], k: usize, seed: u64) -> BTreeMap<String, Vec<String>> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rows {
        by.entry(r.labels[0].clone())
            .or_default()
            .push(r.text.clone());
    }
    for v in by.values_mut() {
        v.sort_by_key(|t| rank(seed, t));
        v.dedup();
        v.truncate(k);
    }
    by
}

/// `n` labels chosen by hash (all when `n` is 0 or more than there are), sorted.
pub fn pick_labels(rows: &[Example], n: usize, seed: u64) -> Vec<String> {
    let mut labels = data::label_set(rows);
    if n > 0 && n < labels.len() {
        labels.sort_by_key(|l| rank(seed, l));
        labels.truncate(n);
        labels.sort();
    }
    labels
}

/// The few-shot intents of a sample: (label, embeddings of its first `k` texts).
fn intents_of(
    sample: &BTreeMap<String, Vec<String>>,
    emb: &BTreeMap<String, Vec<f32>>,
    k: usize,
    enc: &DatasetEncoder,
) -> Vec<(String, Arc<Embedded>)> {
    sample
        .iter()
        .map(|(l, texts)| {
            let v = texts.iter().take(k).map(|t| emb[t].clone()).collect();
            (
                l.clone(),
                Arc::new(Embedded::new(&enc.name, &enc.prefix, v)),
            )
        })
        .collect()
}

fn embed_map(
    enc: &DatasetEncoder,
    texts: Vec<String>,
    what: &str,
) -> Result<BTreeMap<String, Vec<f32>>> {
    let v = enc.embed_all(&texts, what)?;
    Ok(texts.into_iter().zip(v).collect())
}

/// Scores of one way of matching on a dataset: per row, the best intent and its similarity.
struct Scored {
    gold: Vec<Option<String>>,
    best: Vec<(String, f32)>,
}

impl Scored {
    fn at(&self, t: f32) -> (f32, f32, f32, f32) {
        let (mut ok, mut inn, mut rej, mut oos_ok, mut oos) = (0, 0, 0, 0, 0);
        for (g, (l, s)) in self.gold.iter().zip(&self.best) {
            match g {
                Some(g) => {
                    inn += 1;
                    if *s < t {
                        rej += 1;
                    } else if g == l {
                        ok += 1;
                    }
                }
                None => {
                    oos += 1;
                    if *s < t {
                        oos_ok += 1;
                    }
                }
            }
        }
        let top1 = self
            .gold
            .iter()
            .zip(&self.best)
            .filter(|(g, (l, _))| g.as_deref() == Some(l.as_str()))
            .count() as f32
            / inn.max(1) as f32;
        let inn = inn.max(1) as f32;
        let recall = if oos > 0 {
            oos_ok as f32 / oos as f32
        } else {
            f32::NAN
        };
        (top1, ok as f32 / inn, rej as f32 / inn, recall)
    }
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Labelled data the examples come from (k per label).
    #[arg(long)]
    pub train: PathBuf,
    /// Held-out labelled data to answer.
    #[arg(long)]
    pub data: PathBuf,
    /// Examples per label (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "5,10")]
    pub k: Vec<usize>,
    /// Labels that are out of scope: not made intents, answered right when out of scope.
    #[arg(long, value_delimiter = ',')]
    pub oos_labels: Vec<String>,
    /// Similarity threshold (default: fewshot.threshold of the config).
    #[arg(long)]
    pub threshold: Option<f32>,
    #[arg(long, default_value = "multilingual-e5-small")]
    pub model: String,
    /// Read the texts through this head's fine-tuned layers (its encoder replaces `--model`).
    #[arg(long)]
    pub layers_of: Option<String>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Also print accuracy and out-of-scope recall at a few thresholds.
    #[arg(long)]
    pub sweep: bool,
    #[arg(long, env = "TRIAGE_CONFIG")]
    pub config: Option<PathBuf>,
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let (cfg, enc) = encoder(a.config.as_deref(), &a.model)?;
    let enc = match &a.layers_of {
        Some(dir) => {
            let head = crate::heads::registry::load_head(dir)?;
            crate::cli::heads::head_encoder(a.config.as_deref(), &head)?
        }
        None => enc,
    };
    let t = a.threshold.unwrap_or(cfg.fewshot.threshold);
    let train: Vec<Example> = data::read(&a.train)?
        .into_iter()
        .filter(|r| !a.oos_labels.contains(&r.labels[0]))
        .collect();
    let rows = data::read(&a.data)?;
    let kmax = a.k.iter().copied().max().unwrap_or(5);
    let s = sample(&train, kmax, a.seed);
    let emb = embed_map(&enc, s.values().flatten().cloned().collect(), "examples")?;
    let xs = enc.embed_all(
        &rows.iter().map(|r| r.text.clone()).collect::<Vec<_>>(),
        "data",
    )?;
    let gold: Vec<Option<String>> = rows
        .iter()
        .map(|r| (!a.oos_labels.contains(&r.labels[0])).then(|| r.labels[0].clone()))
        .collect();
    println!(
        "{} labels, {} rows ({} out of scope); threshold {t}",
        s.len(),
        rows.len(),
        gold.iter().filter(|g| g.is_none()).count()
    );
    println!("k   scoring    top1   acc@t  rejected@t  oos_recall@t | best_t  acc    oos_recall  | keep95_t");
    for &k in &a.k {
        let intents = intents_of(&s, &emb, k, &enc);
        let names: Vec<&String> = intents.iter().map(|i| &i.0).collect();
        let e: Vec<Arc<Embedded>> = intents.iter().map(|i| i.1.clone()).collect();
        let near = scores(&xs, &e, Scoring::Nearest)?;
        let proto = scores(&xs, &e, Scoring::Prototype)?;
        let mix = |f: fn(f32, f32) -> f32| -> Vec<Vec<f32>> {
            near.iter()
                .zip(&proto)
                .map(|(a, b)| a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect())
                .collect()
        };
        let blend = mix(|a, b| (a + b) / 2.0);
        let maxed = scores(&xs, &e, Scoring::Max)?;
        for (how, sims) in [
            ("nearest", &near),
            ("prototype", &proto),
            ("blend", &blend),
            ("max", &maxed),
        ] {
            let best = sims
                .iter()
                .map(|r| {
                    let (i, s) = r
                        .iter()
                        .enumerate()
                        .fold(
                            (0, f32::NEG_INFINITY),
                            |b, (i, s)| if *s > b.1 { (i, *s) } else { b },
                        );
                    (names[i].clone(), s)
                })
                .collect();
            let sc = Scored {
                gold: gold.clone(),
                best,
            };
            let (top1, acc, rej, rec) = sc.at(t);
            // Best balanced accuracy (in-scope accuracy and out-of-scope recall) over thresholds.
            let sweep: Vec<f32> = (0..=60).map(|i| 0.70 + i as f32 * 0.005).collect();
            let best_t = sweep
                .iter()
                .map(|&u| {
                    let (_, a, _, r) = sc.at(u);
                    (u, a, r, if r.is_nan() { a } else { (a + r) / 2.0 })
                })
                .fold((0.0, 0.0, 0.0, -1.0), |b, x| if x.3 > b.3 { x } else { b });
            // Threshold that keeps 95% of the right in-scope answers.
            let mut right: Vec<f32> = sc
                .gold
                .iter()
                .zip(&sc.best)
                .filter(|(g, (l, _))| g.as_deref() == Some(l.as_str()))
                .map(|(_, (_, s))| *s)
                .collect();
            right.sort_by(f32::total_cmp);
            let keep95 = right.get(right.len() / 20).copied().unwrap_or(f32::NAN);
            println!(
                "{k:<3} {how:<10} {top1:.3}  {acc:.3}  {rej:.3}       {rec:.3}        | {:.3}   {:.3}  {:.3}       | {keep95:.3}",
                best_t.0, best_t.1, best_t.2
            );
            if a.sweep {
                for u in (0..=16).map(|i| 0.86 + i as f32 * 0.005) {
                    let (_, acc, rej, rec) = sc.at(u);
                    println!("      at {u:.3}: acc {acc:.3} rejected {rej:.3} oos_recall {rec:.3}");
                }
            }
        }
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ExtendArgs {
    /// The trained set: `builtin:NAME` or a head folder.
    #[arg(long, default_value = "builtin:bitext")]
    pub head: String,
    /// Held-out data of the trained set.
    #[arg(long)]
    pub base: PathBuf,
    /// Data the new few-shot intents come from (k examples per label).
    #[arg(long)]
    pub new_train: PathBuf,
    /// Held-out data of the new intents' dataset (labels not added must not be captured).
    #[arg(long)]
    pub new_data: PathBuf,
    /// How many labels of --new-train become few-shot intents (chosen by hash).
    #[arg(long, default_value_t = 5)]
    pub labels: usize,
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    #[arg(long, value_delimiter = ',', default_value = "0.905")]
    pub thresholds: Vec<f32>,
    #[arg(long, value_delimiter = ',', default_value = "0.5")]
    pub low_confidence: Vec<f32>,
    /// A few-shot match at least this similar wins even over a confident head (2: never).
    #[arg(long, value_delimiter = ',', default_value = "0.95,2")]
    pub strong: Vec<f32>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, env = "TRIAGE_CONFIG")]
    pub config: Option<PathBuf>,
}

pub fn extend_eval(a: ExtendArgs) -> Result<()> {
    let head = Arc::new(crate::heads::registry::load_head(&a.head)?);
    let (_, enc) = encoder(a.config.as_deref(), &head.meta.encoder)?;
    let base = data::read(&a.base)?;
    let new_train = data::read(&a.new_train)?;
    let new_rows = data::read(&a.new_data)?;
    let added = pick_labels(&new_train, a.labels, a.seed);
    let chosen: Vec<Example> = new_train
        .into_iter()
        .filter(|r| added.contains(&r.labels[0]))
        .collect();
    let s = sample(&chosen, a.k, a.seed);
    let emb = embed_map(&enc, s.values().flatten().cloned().collect(), "examples")?;
    let xb = enc.embed_all(
        &base.iter().map(|r| r.text.clone()).collect::<Vec<_>>(),
        "base",
    )?;
    let xn = enc.embed_all(
        &new_rows.iter().map(|r| r.text.clone()).collect::<Vec<_>>(),
        "new",
    )?;
    // A head with fine-tuned layers reads embeddings through them (as the server does).
    let (hxb, hxn) = if head.meta.tuned_layers.is_some() {
        let henc = crate::cli::heads::head_encoder(a.config.as_deref(), &head)?;
        let texts = |rows: &[Example]| rows.iter().map(|r| r.text.clone()).collect::<Vec<_>>();
        (
            henc.embed_all(&texts(&base), "base (tuned layers)")?,
            henc.embed_all(&texts(&new_rows), "new (tuned layers)")?,
        )
    } else {
        (xb.clone(), xn.clone())
    };
    println!(
        "trained set {} + few-shot intents {:?} ({} examples each)",
        head.meta.name, added, a.k
    );
    println!("threshold low_conf | base_acc (without) base_captured | new_recall (head oos before) | other_captured");
    for &t in &a.thresholds {
        for (&lc, &strong) in a
            .low_confidence
            .iter()
            .flat_map(|l| a.strong.iter().map(move |s| (l, s)))
        {
            let view = |with: bool| SetView {
                name: head.meta.name.clone(),
                head: Some(head.clone()),
                encoder: enc.name.clone(),
                prefix: enc.prefix.clone(),
                intents: if with {
                    intents_of(&s, &emb, a.k, &enc)
                } else {
                    Vec::new()
                },
                threshold: t,
                low_confidence: lc,
                strong,
            };
            let (with, without) = (view(true), view(false));
            let ab = with.predict_with(&xb, &hxb, 1, &[])?;
            let bb = without.predict_with(&xb, &hxb, 1, &[])?;
            let right = |p: &crate::heads::predict::IntentPrediction, g: &str| {
                !p.out_of_scope && p.label == g
            };
            let n = base.len() as f32;
            let acc = base
                .iter()
                .zip(&ab)
                .filter(|(r, x)| right(&x.prediction, &r.labels[0]))
                .count() as f32
                / n;
            let acc0 = base
                .iter()
                .zip(&bb)
                .filter(|(r, x)| right(&x.prediction, &r.labels[0]))
                .count() as f32
                / n;
            let captured = ab
                .iter()
                .filter(|x| added.contains(&x.prediction.label))
                .count() as f32
                / n;
            let an = with.predict_with(&xn, &hxn, 1, &[])?;
            let bn = without.predict_with(&xn, &hxn, 1, &[])?;
            let (mut hit, mut tot, mut oos0, mut other_cap, mut other) = (0, 0, 0, 0, 0);
            for ((r, x), y) in new_rows.iter().zip(&an).zip(&bn) {
                if added.contains(&r.labels[0]) {
                    tot += 1;
                    hit += usize::from(
                        x.prediction.label == r.labels[0] && !x.prediction.out_of_scope,
                    );
                    oos0 += usize::from(y.unsure);
                } else {
                    other += 1;
                    other_cap += usize::from(added.contains(&x.prediction.label));
                }
            }
            println!(
                "{t:.3}     {lc:.2} {strong:.2} | {acc:.3} ({acc0:.3})     {captured:.3}        | {:.3} ({:.3})              | {:.3}",
                hit as f32 / tot.max(1) as f32,
                oos0 as f32 / tot.max(1) as f32,
                other_cap as f32 / other.max(1) as f32
            );
        }
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct DiscoverArgs {
    /// Labelled texts to cluster (labels are only used to score the clusters).
    #[arg(long)]
    pub data: PathBuf,
    /// Use the texts of this many labels (chosen by hash; 0: all).
    #[arg(long, default_value_t = 0)]
    pub labels: usize,
    #[arg(long, value_delimiter = ',', default_value = "0.88,0.9,0.92,0.94")]
    pub thresholds: Vec<f32>,
    #[arg(long, default_value_t = 3)]
    pub min_size: usize,
    #[arg(long, default_value = "multilingual-e5-small")]
    pub model: String,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, env = "TRIAGE_CONFIG")]
    pub config: Option<PathBuf>,
}

pub fn discover_eval(a: DiscoverArgs) -> Result<()> {
    let (_, enc) = encoder(a.config.as_deref(), &a.model)?;
    let all = data::read(&a.data)?;
    let labels = pick_labels(&all, a.labels, a.seed);
    let rows: Vec<Example> = all
        .into_iter()
        .filter(|r| labels.contains(&r.labels[0]))
        .collect();
    let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
    let xs = enc.embed_all(&texts, "data")?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let pool = Pool::new(&refs);
    println!(
        "{} texts of {} labels, min_size {}",
        rows.len(),
        labels.len(),
        a.min_size
    );
    println!("threshold clusters coverage purity labels_recovered");
    for &t in &a.thresholds {
        let cs = cluster(&xs, t, a.min_size)?;
        let clustered: usize = cs.iter().map(Vec::len).sum();
        let mut majority_sum = 0;
        let mut recovered = std::collections::BTreeSet::new();
        let mut lines = Vec::new();
        for c in &cs {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for &i in c {
                *counts.entry(rows[i].labels[0].as_str()).or_insert(0) += 1;
            }
            let (label, m) = counts
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(l, n)| (*l, *n))
                .unwrap_or(("", 0));
            majority_sum += m;
            recovered.insert(label);
            if lines.len() < 5 {
                let members: Vec<&str> = c.iter().map(|&i| refs[i]).collect();
                let terms = pool.key_terms(&members, 5);
                let central = by_centrality(&xs, c).first().map_or("", |b| refs[b.0]);
                let name = suggest_name(&terms, central, "?");
                lines.push(format!(
                    "    size {:>3}  {label} {m}/{}  -> {name}  {terms:?}",
                    c.len(),
                    c.len()
                ));
            }
        }
        println!(
            "{t:.3}     {:>8} {:.3}    {:.3}  {}/{}",
            cs.len(),
            clustered as f32 / rows.len().max(1) as f32,
            majority_sum as f32 / clustered.max(1) as f32,
            recovered.len(),
            labels.len()
        );
        for l in lines {
            println!("{l}");
        }
    }
    Ok(())
}

#[derive(clap::Subcommand, Debug)]
pub enum IntentsCmd {
    /// Few-shot accuracy with k examples per label, and the out-of-scope threshold.
    Eval(EvalArgs),
    /// Few-shot intents extending a trained set: what they take, what they leave.
    ExtendEval(ExtendArgs),
    /// Discovery: purity and coverage of clusters of labelled texts.
    DiscoverEval(DiscoverArgs),
}

pub fn run(cmd: IntentsCmd) -> Result<()> {
    match cmd {
        IntentsCmd::Eval(a) => eval(a),
        IntentsCmd::ExtendEval(a) => extend_eval(a),
        IntentsCmd::DiscoverEval(a) => discover_eval(a),
    }
}
