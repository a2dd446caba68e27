//! `triage batch summarize` (resumable, with a progress bar and a final report on stderr) and
//! `triage batch synth` (synthetic conversations).

use crate::batch::run::{check_paths, run as run_batch, RunOptions, Stats};
use crate::batch::EncoderSummarizer;
use crate::config::{Config, Overrides};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum BatchCmd {
    /// Summarize a JSONL file of conversations into a JSONL file of summaries. Rerun with the
    /// same output to resume: ids already written are skipped.
    Summarize(SummarizeArgs),
    /// Write synthetic support conversations (Chinese and English, 2-12 turns) as JSONL.
    Synth(SynthArgs),
}

#[derive(Args)]
pub struct SummarizeArgs {
    /// Conversations, one JSON object a line: {"id", "turns": [{"role", "text"}]}.
    #[arg(long)]
    pub input: PathBuf,
    /// Summaries, one a line: {"id", "summary", "key_turns", "open_question", "mode"}.
    #[arg(long)]
    pub output: PathBuf,
    /// Rejected lines: {"line", "id"?, "reason"} (default: <output stem>.rejects.jsonl).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Conversations per encoder call (default: batch.batch_size of the config).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// TOML config file (see triage.example.toml).
    #[arg(long, env = "TRIAGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Model to embed with (default: the config's default_model).
    #[arg(long)]
    pub model: Option<String>,
}

#[derive(Args)]
pub struct SynthArgs {
    /// Valid conversations to write (ids c000001, c000002, ...).
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Deliberately bad lines to add (invalid JSON, missing id, unknown role, duplicate id, ...).
    #[arg(long, default_value_t = 0)]
    pub bad: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output file (default: stdout).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

pub fn run(cmd: BatchCmd) -> Result<()> {
    match cmd {
        BatchCmd::Summarize(a) => summarize(a),
        BatchCmd::Synth(a) => synth(a),
    }
}

fn synth(a: SynthArgs) -> Result<()> {
    write_to(a.output.as_deref(), &mut |w| {
        crate::batch::synth::write(w, a.count, a.bad, a.seed)
    })
}

/// Run `write` on the file `output` (created), or on standard output.
pub(super) fn write_to(
    output: Option<&Path>,
    write: &mut dyn FnMut(&mut dyn std::io::Write) -> Result<()>,
) -> Result<()> {
    match output {
        Some(p) => {
            let f =
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            write(&mut std::io::BufWriter::new(f))
        }
        None => write(&mut std::io::stdout().lock()),
    }
}

/// `summaries.jsonl` -> `summaries.rejects.jsonl`.
pub fn default_rejects(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "output".into());
    output.with_file_name(format!("{stem}.rejects.jsonl"))
}

fn summarize(a: SummarizeArgs) -> Result<()> {
    let t0 = Instant::now();
    let mut cfg = Config::load(a.config.as_deref(), &Overrides::default())?;
    let opts = RunOptions {
        rejects: a
            .rejects
            .clone()
            .unwrap_or_else(|| default_rejects(&a.output)),
        input: a.input,
        output: a.output,
        batch_size: a.batch_size.unwrap_or(cfg.batch.batch_size),
        max_line_bytes: cfg.batch.max_line_bytes,
    };
    check_paths(&opts)?;
    std::fs::File::open(&opts.input)
        .with_context(|| format!("opening {}", opts.input.display()))?;
    // Only the encoder is needed: no other model, no heads.
    let name = a.model.unwrap_or_else(|| cfg.default_model.clone());
    cfg.model(&name)?;
    cfg.models.retain(|m| m.name == name);
    cfg.default_model = name.clone();
    if cfg.server.threads > 0 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", cfg.server.threads.to_string());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    eprintln!("batch: loading model `{name}`");
    let models = super::load_models(&cfg)?;
    let load_secs = t0.elapsed().as_secs_f64();
    let summarizer = EncoderSummarizer::new(models, cfg.summarize.max_words, rt.handle().clone());
    let mut progress = Progress::new("batch");
    let stop = AtomicBool::new(false);
    let stats = run_batch(&opts, &summarizer, &stop, &mut |s| progress.update(s));
    progress.bar.finish_and_clear();
    let stats = stats?;
    report(&stats, &opts, load_secs);
    Ok(())
}

/// A progress bar on a terminal; a line every 10 s otherwise (`label: ...`).
pub(crate) struct Progress {
    pub(crate) bar: ProgressBar,
    last_line: Instant,
    label: &'static str,
}

impl Progress {
    pub(crate) fn new(label: &'static str) -> Self {
        let bar = ProgressBar::new(0);
        let style = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {msg} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style.progress_chars("=> "));
        Progress {
            bar,
            last_line: Instant::now(),
            label,
        }
    }

    pub(crate) fn update(&mut self, s: &Stats) {
        let rate = s.written as f64 / s.elapsed_secs.max(1e-3);
        let msg = format!(
            "{} written, {} skipped, {} rejected, {rate:.1} conv/s",
            s.written, s.skipped, s.rejected
        );
        self.bar.set_length(s.total_bytes);
        self.bar.set_position(s.bytes_done);
        if self.bar.is_hidden() {
            if self.last_line.elapsed() >= Duration::from_secs(10) {
                self.last_line = Instant::now();
                let pct = 100.0 * s.bytes_done as f64 / s.total_bytes.max(1) as f64;
                eprintln!("{}: {pct:.1}% of input, {msg}", self.label);
            }
        } else {
            self.bar.set_message(msg);
        }
    }
}

fn report(s: &Stats, o: &RunOptions, load_secs: f64) {
    let secs = s.elapsed_secs.max(1e-9);
    eprintln!(
        "batch: read {}, written {}, skipped (already done) {}, rejected {} ({} new)",
        s.read, s.written, s.skipped, s.rejected, s.rejected_new
    );
    eprintln!(
        "batch: {:.1} conv/s, {:.1} turns/s, wall {:.1} s (summarizer {:.1} s; model load {:.1} s before)",
        s.written as f64 / secs,
        s.turns as f64 / secs,
        s.elapsed_secs,
        s.summarize_secs,
        load_secs
    );
    eprintln!(
        "batch: summaries in {}, rejects in {}",
        o.output.display(),
        o.rejects.display()
    );
}
