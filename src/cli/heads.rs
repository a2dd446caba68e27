//! `triage train` and `triage eval`: the command-line side of the heads.

use crate::config::Config;
use crate::heads::data;
use crate::heads::embed_cache::DatasetEncoder;
use crate::heads::finetune::{self, TuneOptions};
use crate::heads::fit::{self, FitOptions, Task};
use crate::heads::head::{sha256_hex, Head, TunedLayers};
use crate::heads::registry::HeadRegistry;
use crate::heads::train::TrainOptions;
use crate::models::branch::Branch;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// intent or emotion.
    #[arg(long)]
    pub task: String,
    /// Training data: JSONL ({"text","label"} or {"text","labels":[..]}, optional "lang" and
    /// "escalate") or CSV with a header. Repeat to train on several files together.
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
    /// Held-out data for early stopping and calibration (default: 10% of --data, by hash).
    #[arg(long)]
    pub tune: Option<PathBuf>,
    /// Output folder (head.safetensors + head.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Head name (default: the output folder's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Encoder model name from the config.
    #[arg(long, default_value = "multilingual-e5-small")]
    pub model: String,
    /// Label that marks out-of-scope examples.
    #[arg(long, default_value = "oos")]
    pub oos_label: String,
    /// Hidden layer width (0: linear head).
    #[arg(long, default_value_t = 0)]
    pub hidden: usize,
    #[arg(long, default_value_t = 200)]
    pub max_epochs: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Without out-of-scope examples, the threshold rejects this share of held-out in-scope ones.
    #[arg(long, default_value_t = 0.01)]
    pub reject_share: f32,
    /// With out-of-scope examples in the tuning data: the out-of-scope recall to keep.
    #[arg(long, default_value_t = 0.85)]
    pub min_oos_recall: f32,
    /// With out-of-scope examples too: the threshold still rejects at least this share of the
    /// held-out in-scope examples (an `oos` class alone lets near-domain questions through).
    #[arg(long, default_value_t = 0.0)]
    pub min_reject_share: f32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Evaluate on this file afterwards and record the scores in head.json.
    #[arg(long)]
    pub eval: Option<PathBuf>,
    /// Fine-tune this many of the encoder's top layers first (0: frozen encoder). They are saved
    /// beside the head (layers.safetensors, int8 deltas) and replace those layers for this head only.
    #[arg(long, default_value_t = 0)]
    pub tune_layers: usize,
    #[arg(long, default_value_t = 4)]
    pub tune_epochs: usize,
    #[arg(long, default_value_t = 1e-4)]
    pub tune_lr: f64,
    /// Abuse heads: texts of these files (any labels) join the training data as `ok` examples
    /// (e.g. the emotion data: customer messages, angry or calm, without insults).
    #[arg(long)]
    pub negatives: Vec<PathBuf>,
    /// Parallel text (`English<TAB>translation`, e.g. Tatoeba): the training split of `triage
    /// align` is used as a consistency loss, so that a sentence and its translation get the
    /// same answer (held-out pairs stay unseen).
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Escalation heads: add this many of the `--pairs` training pairs whose English side the
    /// configured emotion head reads as calm (every escalating group under 0.2) as `calm` rows,
    /// both sides, so that everyday sentences are not flagged (0: none).
    #[arg(long, default_value_t = 0)]
    pub calm_pairs: usize,
    /// Sigmoid heads: fit the thresholds on out-of-fold scores over the training rows (this
    /// many folds) instead of on the 10% tuning rows (0: tuning rows).
    #[arg(long, default_value_t = 0)]
    pub threshold_folds: usize,
    /// Escalation heads: put the `escalate` threshold at the fewest flags whose recall on the
    /// fitting rows (per language) reaches this share (default: recall minus 3 x false flags).
    #[arg(long, value_parser = share)]
    pub recall_target: Option<f32>,
    /// Weight of the consistency loss against the labelled loss.
    #[arg(long, default_value_t = 1.0)]
    pub pair_weight: f32,
    /// Reuse the fine-tuned layers of this head folder instead of tuning again (refit the head,
    /// e.g. with another out-of-scope target).
    #[arg(long, conflicts_with = "tune_layers")]
    pub reuse_layers: Option<PathBuf>,
    #[arg(long, env = "TRIAGE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// intent, emotion, emotion-groups (rows labelled with one emotion group), screenshot
    /// (`--data DIR` with `labels.jsonl` and the images; no head) or summarize (`--data FILE`,
    /// DialogSum / TweetSumm JSONL; no head).
    #[arg(long)]
    pub task: String,
    /// Head folder (not for `screenshot`).
    #[arg(long)]
    pub head: Option<PathBuf>,
    #[arg(long)]
    pub data: PathBuf,
    /// Gold label that marks out-of-scope examples (and the answer "out of scope").
    #[arg(long, default_value = "oos")]
    pub oos_label: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// `summarize`: word budget of the extractive summary (default: summarize.max_words).
    #[arg(long)]
    pub max_words: Option<usize>,
    /// `summarize`: only the first N conversations.
    #[arg(long)]
    pub limit: Option<usize>,
    /// `screenshot`: the customer's language sent with each image: a code (`en`, `zh`), or
    /// `label` for each image's own `language` in `labels.jsonl` (default: none sent).
    #[arg(long)]
    pub customer_language: Option<String>,
    #[arg(long, env = "TRIAGE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct AlignArgs {
    /// Head folder or `builtin:NAME` whose tuned layers are aligned (a head without tuned layers
    /// gets `--layers` of the pretrained top layers, aligned).
    #[arg(long)]
    pub head: String,
    /// Parallel text, `English<TAB>translation` per line (e.g. ../shared/data/tatoeba_cmn_eng/train.tsv).
    #[arg(long)]
    pub pairs: PathBuf,
    /// Output head folder: the same head with the aligned layers (refit it afterwards with
    /// `triage train --reuse-layers`).
    #[arg(long)]
    pub out: PathBuf,
    /// For a head without tuned layers: how many top layers to align.
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    #[arg(long, default_value_t = 2)]
    pub epochs: usize,
    #[arg(long, default_value_t = 5e-5)]
    pub lr: f64,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Weight of the English side's loss (keeping English embeddings where they were).
    #[arg(long, default_value_t = 1.0)]
    pub keep_weight: f32,
    /// Use only the first N training pairs (after the held-out split).
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, env = "TRIAGE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The dataset encoder for a configured model, with its embedding cache under the pack home.
fn encoder(config: Option<&Path>, model: &str) -> Result<DatasetEncoder> {
    let cfg = Config::load(config, &Default::default())?;
    let mc = cfg.model(model)?;
    let m = crate::engine::open_model(
        mc,
        &cfg.home(),
        &candle_core::Device::Cpu,
        cfg.server.precision,
    )?;
    Ok(DatasetEncoder::new(
        &mc.name,
        &mc.prefix,
        m,
        &cfg.home().join("cache/embeddings"),
    ))
}

/// A share in (0, 1] (`--recall-target`).
fn share(s: &str) -> std::result::Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("`{s}`: expected a share in (0, 1]")),
    }
}

pub fn train(a: TrainArgs) -> Result<()> {
    let task = Task::parse(&a.task)?;
    let prep = |rows: Vec<data::Example>| -> Result<Vec<data::Example>> {
        match task {
            Task::Escalation => data::escalation_rows(rows),
            _ => Ok(rows),
        }
    };
    let mut rows = prep(data::read_all(&a.data)?)?;
    for r in data::read_all(&a.negatives)? {
        rows.push(data::Example {
            labels: vec!["ok".into()],
            ..r
        });
    }
    let (mut train_rows, tune_rows) = match &a.tune {
        Some(p) => (rows, prep(data::read(p)?)?),
        None => fit::split_tune(rows),
    };
    let oof_rows = train_rows.len();
    anyhow::ensure!(
        a.recall_target.is_none() || task == Task::Escalation,
        "--recall-target is for escalation heads"
    );
    if a.calm_pairs > 0 {
        anyhow::ensure!(
            task == Task::Escalation,
            "--calm-pairs is for escalation heads"
        );
        let pairs = a.pairs.as_deref().context("--calm-pairs needs --pairs")?;
        // Training rows only: the thresholds stay fitted on support messages, which easy
        // everyday negatives would dilute (a lower threshold, more false flags on support chat).
        let cfg = Config::load(a.config.as_deref(), &Default::default())?;
        let reg = HeadRegistry::load(&cfg.intent, &cfg.emotion, &cfg.models)?;
        let head = reg.emotion.as_ref().context("no emotion head configured")?;
        let groups: Vec<&String> = reg.escalation.thresholds.keys().collect();
        let enc = head_encoder(a.config.as_deref(), head)?;
        train_rows.extend(crate::cli::calm::rows(
            head,
            &enc,
            &groups,
            pairs,
            a.calm_pairs,
        )?);
    }
    let mut enc = encoder(a.config.as_deref(), &a.model)?;
    let mut head_training_tuned = None;
    let name = a.name.clone().unwrap_or_else(|| {
        a.out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "head".into())
    });
    let mut train = TrainOptions::new(task.kind());
    train.hidden = a.hidden;
    train.max_epochs = a.max_epochs;
    train.lr = a.lr;
    train.seed = a.seed;
    let o = FitOptions {
        task,
        threshold_folds: a.threshold_folds,
        oof_rows,
        recall_target: a.recall_target,
        name,
        oos_label: Some(a.oos_label.clone()),
        reject_share: a.reject_share,
        min_oos_recall: a.min_oos_recall,
        min_reject_share: a.min_reject_share,
        train,
        pairs: match &a.pairs {
            Some(p) => {
                let (t, _) = crate::heads::align::read_pairs(p, 10)?;
                Some((t.source, t.target, a.pair_weight))
            }
            None => None,
        },
    };
    let mut layers = None;
    if let Some(dir) = &a.reuse_layers {
        let prev = Head::load(dir)?;
        let (Some(t), Some(bytes)) = (prev.meta.tuned_layers.clone(), prev.layers.clone()) else {
            anyhow::bail!("{} has no fine-tuned layers", dir.display());
        };
        anyhow::ensure!(
            prev.meta.encoder == a.model,
            "{} was tuned on encoder `{}`",
            dir.display(),
            prev.meta.encoder
        );
        // Re-stored in the current format (int8 deltas over the base) unless already in it (kept
        // byte for byte: heads reusing one head's layers share its sha256, so one served pass),
        // then served from those bytes.
        let base = enc.embedder().model();
        let deltas = candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu)?
            .keys()
            .any(|k| k.ends_with(".dq"));
        let bytes = if deltas {
            bytes.to_vec()
        } else {
            let old =
                Branch::from_bytes(&bytes, base, t.first, t.count, &candle_core::Device::Cpu)?;
            old.to_bytes(base)?
        };
        let t = TunedLayers {
            sha256: sha256_hex(&bytes),
            ..t
        };
        let b = Branch::from_bytes(&bytes, base, t.first, t.count, &candle_core::Device::Cpu)?;
        enc = enc.with_branch(b, &t.sha256)?;
        if let Some(v) = prev.meta.training.get("tuned_layers") {
            head_training_tuned = Some(v.clone());
        }
        layers = Some((bytes.to_vec(), t));
    }
    if a.tune_layers > 0 {
        let (enc2, bytes, tuned) = finetune_layers(enc, &a, task, &train_rows, &tune_rows)?;
        enc = enc2;
        layers = Some((bytes, tuned));
    }
    let mut head = fit::fit(&enc, &train_rows, &tune_rows, &o)?;
    if let Some((bytes, tuned)) = layers {
        head.meta.training["tuned_layers"] = head_training_tuned.unwrap_or_else(|| {
            serde_json::json!({
                "layers": a.tune_layers, "max_epochs": a.tune_epochs, "lr": a.tune_lr,
            })
        });
        head.meta.tuned_layers = Some(tuned);
        head.layers = Some(bytes.into());
    }
    let names: Vec<String> = a
        .data
        .iter()
        .filter_map(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .collect();
    head.meta.training["data"] = if names.len() == 1 {
        serde_json::json!(names[0])
    } else {
        serde_json::json!(names)
    };
    if a.calm_pairs > 0 {
        head.meta.training["calm_pairs"] = serde_json::json!({
            "max": a.calm_pairs, "below": crate::cli::calm::CALM_BELOW,
        });
    }
    if let Some(p) = &a.eval {
        let rows = prep(data::read(p)?)?;
        let r = fit::evaluate(&head, &enc, &rows, &a.oos_label, false)?;
        eprintln!("{}", r.table());
        head.meta.training["eval"] = serde_json::json!({
            "data": p.file_name().map(|f| f.to_string_lossy().into_owned()),
            "examples": r.examples, "accuracy": r.accuracy, "macro_f1": r.macro_f1,
            "in_scope_accuracy": r.in_scope_accuracy, "oos_recall": r.oos_recall,
            "top1_accuracy": r.top1_accuracy, "rejected": r.rejected,
        });
    }
    head.save(&a.out)?;
    eprintln!("head `{}` written to {}", head.meta.name, a.out.display());
    Ok(())
}

/// Fine-tune the top layers, then embed through them: returns the encoder with the tuned branch,
/// the `layers.safetensors` bytes and their description for head.json.
fn finetune_layers(
    enc: DatasetEncoder,
    a: &TrainArgs,
    task: Task,
    train_rows: &[data::Example],
    tune_rows: &[data::Example],
) -> Result<(DatasetEncoder, Vec<u8>, TunedLayers)> {
    let labels = data::label_set(train_rows);
    let tune = fit::scorable(tune_rows, &labels);
    let texts = |rows: &[data::Example]| rows.iter().map(|r| r.text.clone()).collect::<Vec<_>>();
    let kind = task.kind();
    let o = TuneOptions {
        layers: a.tune_layers,
        max_epochs: a.tune_epochs,
        lr: a.tune_lr,
        seed: a.seed,
        ..Default::default()
    };
    let branch = finetune::tune(
        &enc,
        kind,
        labels.len(),
        &texts(train_rows),
        &fit::targets(task, train_rows, &labels)?,
        &texts(&tune),
        &fit::targets(task, &tune, &labels)?,
        &o,
    )?;
    let bytes = branch.to_bytes(enc.embedder().model())?;
    let tuned = TunedLayers {
        first: branch.first,
        count: a.tune_layers,
        sha256: sha256_hex(&bytes),
    };
    // Embed through the layers as stored, exactly as they will be served.
    let served = Branch::from_bytes(
        &bytes,
        enc.embedder().model(),
        tuned.first,
        tuned.count,
        &candle_core::Device::Cpu,
    )?;
    let enc = enc.with_branch(served, &tuned.sha256)?;
    Ok((enc, bytes, tuned))
}

/// `triage align`: distil a head's tuned layers on parallel text (see `align`).
pub fn align(a: AlignArgs) -> Result<()> {
    use crate::heads::align::{align, read_pairs, AlignOptions};
    let head = crate::heads::registry::load_head(&a.head)?;
    let enc = encoder(a.config.as_deref(), &head.meta.encoder)?;
    let base = enc.embedder().model();
    let n_layers = enc.embedder().config().num_hidden_layers;
    let dev = candle_core::Device::Cpu;
    let start = match (&head.meta.tuned_layers, &head.layers) {
        (Some(t), Some(bytes)) => Branch::from_bytes(bytes, base, t.first, t.count, &dev)?,
        _ => {
            anyhow::ensure!(
                a.layers >= 1 && a.layers < n_layers,
                "--layers must be between 1 and {}",
                n_layers - 1
            );
            let first = n_layers - a.layers;
            let cfg = enc.embedder().config().clone();
            Branch::from_tensors(
                finetune::pretrained_fused(&enc, first)?,
                &cfg,
                first,
                a.layers,
                &dev,
            )?
        }
    };
    let (mut train, held) = read_pairs(&a.pairs, 10)?;
    if let Some(n) = a.limit {
        train.source.truncate(n);
        train.target.truncate(n);
    }
    eprintln!(
        "{} training pairs, {} held out",
        train.source.len(),
        held.source.len()
    );
    let o = AlignOptions {
        max_epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        keep_weight: a.keep_weight,
        seed: a.seed,
    };
    let (branch, before, after) = align(&enc, &start, &train, &held, &o)?;
    let bytes = branch.to_bytes(base)?;
    let tuned = TunedLayers {
        first: branch.first,
        count: n_layers - branch.first,
        sha256: sha256_hex(&bytes),
    };
    let mut out = head.clone();
    out.meta.training["alignment"] = serde_json::json!({
        "pairs": a.pairs.file_name().map(|f| f.to_string_lossy().into_owned()),
        "training_pairs": train.source.len(), "held_out_pairs": held.source.len(),
        "epochs": a.epochs, "lr": a.lr, "batch_size": a.batch_size, "keep_weight": a.keep_weight,
        "held_out_before": before, "held_out_after": after,
    });
    out.meta.tuned_layers = Some(tuned);
    out.layers = Some(bytes.into());
    out.save(&a.out)?;
    eprintln!(
        "aligned layers written to {}; refit the head on them with `triage train --reuse-layers {}`",
        a.out.display(),
        a.out.display()
    );
    Ok(())
}

/// The dataset encoder for a head: with its fine-tuned layers when it has some.
pub fn head_encoder(config: Option<&Path>, head: &Head) -> Result<DatasetEncoder> {
    let enc = encoder(config, &head.meta.encoder)?;
    match (&head.meta.tuned_layers, &head.layers) {
        (Some(t), Some(bytes)) => {
            let base = enc.embedder().model();
            let b = Branch::from_bytes(bytes, base, t.first, t.count, &candle_core::Device::Cpu)?;
            enc.with_branch(b, &t.sha256)
        }
        _ => Ok(enc),
    }
}

pub fn eval(a: EvalArgs) -> Result<()> {
    if a.task == "screenshot" {
        return crate::cli::vision_eval::run(
            &a.data,
            a.config.as_deref(),
            a.json,
            a.customer_language.as_deref(),
        );
    }
    if a.task == "summarize" {
        return crate::cli::summarize_eval::run(
            &a.data,
            a.config.as_deref(),
            a.json,
            a.max_words,
            a.limit,
        );
    }
    let head_dir = a
        .head
        .as_deref()
        .context("--head is required for this task")?;
    let head = Head::load(head_dir)?;
    let groups = a.task == "emotion-groups";
    if !groups {
        let t = Task::parse(&a.task)?;
        anyhow::ensure!(
            head.meta.kind == t.kind(),
            "head `{}` is not an {} head",
            head.meta.name,
            a.task
        );
    }
    let mut rows = data::read(&a.data)?;
    if a.task == "escalation" {
        rows = data::escalation_rows(rows)?;
    }
    let enc = head_encoder(a.config.as_deref(), &head)?;
    let r = fit::evaluate(&head, &enc, &rows, &a.oos_label, groups)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", r.table());
    }
    Ok(())
}
