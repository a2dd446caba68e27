//! `triage train` and `triage eval`: the command-line side of the heads.

use super::data;
use super::embed_cache::DatasetEncoder;
use super::fit::{self, FitOptions, Task};
use super::head::{Head, Kind};
use super::train::TrainOptions;
use crate::config::Config;
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// intent or emotion.
    #[arg(long)]
    pub task: String,
    /// Training data: JSONL ({"text","label"} or {"text","labels":[..]}) or CSV with a header.
    #[arg(long)]
    pub data: PathBuf,
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
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Evaluate on this file afterwards and record the scores in head.json.
    #[arg(long)]
    pub eval: Option<PathBuf>,
    #[arg(long, env = "TRIAGE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// intent, emotion, or emotion-groups (rows labelled with one emotion group).
    #[arg(long)]
    pub task: String,
    /// Head folder.
    #[arg(long)]
    pub head: PathBuf,
    #[arg(long)]
    pub data: PathBuf,
    /// Gold label that marks out-of-scope examples (and the answer "out of scope").
    #[arg(long, default_value = "oos")]
    pub oos_label: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[arg(long, env = "TRIAGE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The dataset encoder for a configured model, with its embedding cache under the pack home.
fn encoder(config: Option<&Path>, model: &str) -> Result<DatasetEncoder> {
    let cfg = Config::load(config, &Default::default())?;
    let mc = cfg.model(model)?;
    let m = crate::engine::open_model(mc, &cfg.home(), &candle_core::Device::Cpu)?;
    Ok(DatasetEncoder::new(
        &mc.name,
        &mc.prefix,
        m,
        &cfg.home().join("cache/embeddings"),
    ))
}

pub fn train(a: TrainArgs) -> Result<()> {
    let task = Task::parse(&a.task)?;
    let rows = data::read(&a.data)?;
    let (train_rows, tune_rows) = match &a.tune {
        Some(p) => (rows, data::read(p)?),
        None => fit::split_tune(rows),
    };
    let enc = encoder(a.config.as_deref(), &a.model)?;
    let name = a.name.clone().unwrap_or_else(|| {
        a.out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "head".into())
    });
    let mut train = TrainOptions::new(if task == Task::Intent {
        Kind::Softmax
    } else {
        Kind::Sigmoid
    });
    train.hidden = a.hidden;
    train.max_epochs = a.max_epochs;
    train.lr = a.lr;
    train.seed = a.seed;
    let o = FitOptions {
        task,
        name,
        oos_label: Some(a.oos_label.clone()),
        reject_share: a.reject_share,
        min_oos_recall: a.min_oos_recall,
        train,
    };
    let mut head = fit::fit(&enc, &train_rows, &tune_rows, &o)?;
    head.meta.training["data"] =
        serde_json::json!(a.data.file_name().map(|f| f.to_string_lossy().into_owned()));
    if let Some(p) = &a.eval {
        let rows = data::read(p)?;
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

pub fn eval(a: EvalArgs) -> Result<()> {
    let head = Head::load(&a.head)?;
    let groups = a.task == "emotion-groups";
    if !groups {
        let t = Task::parse(&a.task)?;
        let expected = if t == Task::Intent {
            Kind::Softmax
        } else {
            Kind::Sigmoid
        };
        anyhow::ensure!(
            head.meta.kind == expected,
            "head `{}` is not an {} head",
            head.meta.name,
            a.task
        );
    }
    let rows = data::read(&a.data)?;
    let enc = encoder(a.config.as_deref(), &head.meta.encoder)?;
    let r = fit::evaluate(&head, &enc, &rows, &a.oos_label, groups)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", r.table());
    }
    Ok(())
}
