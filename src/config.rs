//! Configuration: one TOML file plus CLI flags / env, merged into one checked `Config`.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use crate::engine::config::{BatchingConfig, DeviceSpec, EngineConfig};
pub use crate::heads::config::{EmotionConfig, HeadSource, IntentConfig};
pub use crate::models::config::{ModelConfig, Overlong, PrecisionSetting};

/// The whole configuration of a server process. Build it with `Config::load`, which validates it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub limits: LimitsConfig,
    pub batching: BatchingConfig,
    /// Name of the model `/v1/embed` uses when a request names none.
    pub default_model: String,
    pub models: Vec<ModelConfig>,
    pub intent: IntentConfig,
    pub emotion: EmotionConfig,
    pub fewshot: crate::intents::config::FewShotConfig,
    pub discovery: crate::intents::config::DiscoveryConfig,
    /// The routing policy (`/v1/triage`); the shipped one when absent.
    pub routing: crate::routing::Policy,
    /// Read the routing policy from this TOML file instead of `[routing]` (relative to the
    /// config file's folder).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_file: Option<PathBuf>,
    pub store: crate::store::StoreConfig,
    pub webhooks: crate::webhook::WebhookConfig,
    pub screenshot: crate::vision::ScreenshotConfig,
    pub summarize: crate::summarize::SummarizeConfig,
    pub translate: crate::translate::TranslateConfig,
    pub batch: crate::batch::BatchConfig,
    /// The knowledge base: limits, chunking, search and bot answers.
    pub kb: crate::kb::KbConfig,
    pub qa: crate::qa::QaConfig,
    /// API keys, their scopes and rate limits (plus `TRIAGE_API_KEYS`); none = auth off.
    pub auth: crate::keys::AuthConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: String,
    /// `cpu` or `cuda:N`.
    pub device: DeviceSpec,
    /// Where the default model pack lives (`pack:` sources); default `$TRIAGE_HOME` or
    /// `~/.cache/triage`.
    pub home: Option<PathBuf>,
    /// CPU threads for inference (0 = all cores).
    pub threads: usize,
    /// Arithmetic of the encoders on the CPU: `auto` (bf16 where the CPU has AVX-512 BF16,
    /// else f32), `f32` or `bf16`.
    pub precision: PrecisionSetting,
    /// Longest graceful shutdown after SIGTERM/SIGINT (drain requests, park batch jobs, flush
    /// the store); past it the process exits non-zero.
    pub shutdown_timeout_secs: u64,
    /// Serve HTTPS with this certificate and key (PEM); none: plain HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// `[server.tls]`: PEM files, relative to the config file's folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (leaf first).
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most texts in one request.
    pub max_texts: usize,
    /// Most characters (Unicode scalar values) in one text.
    pub max_text_chars: usize,
    /// What to do with a text longer than the model's token limit: `truncate` or `reject`.
    pub overlong: Overlong,
    /// Requests per second each API key may make on average (token bucket); 0 = no limit.
    pub rate_per_key_per_sec: f64,
    /// Requests a key may make at once beyond its rate (the bucket size).
    pub rate_burst: u32,
    /// API requests handled at once (all but /health, /ready, /metrics); more get 429 at once.
    pub max_concurrent_requests: usize,
    /// Longest wait from admission (screenshots: from the end of OCR) until the model starts on
    /// a request; past it: 503.
    pub queue_wait_ms: u64,
    /// Seconds given in `Retry-After` with 429 and 503 answers.
    pub retry_after_secs: u64,
    /// Seconds a client has, once admitted, to send the whole request body; past it: 408
    /// (batch uploads: `batch.upload_timeout_secs`).
    pub body_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            device: DeviceSpec::Cpu,
            home: None,
            threads: 0,
            precision: PrecisionSetting::Auto,
            shutdown_timeout_secs: 30,
            tls: None,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 2 * 1024 * 1024,
            max_texts: 256,
            max_text_chars: 20_000,
            overlong: Overlong::Truncate,
            rate_per_key_per_sec: 100.0,
            rate_burst: 200,
            max_concurrent_requests: 128,
            queue_wait_ms: 2000,
            retry_after_secs: 1,
            body_timeout_secs: 30,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            limits: LimitsConfig::default(),
            batching: BatchingConfig::default(),
            default_model: "multilingual-e5-small".into(),
            intent: IntentConfig::default(),
            emotion: EmotionConfig::default(),
            fewshot: Default::default(),
            discovery: Default::default(),
            routing: Default::default(),
            routing_file: None,
            store: Default::default(),
            webhooks: Default::default(),
            screenshot: Default::default(),
            summarize: Default::default(),
            translate: Default::default(),
            batch: Default::default(),
            kb: Default::default(),
            qa: Default::default(),
            auth: Default::default(),
            models: vec![
                ModelConfig {
                    name: "multilingual-e5-small".into(),
                    source: "pack:multilingual-e5-small".into(),
                    prefix: "query: ".into(),
                    max_length: None,
                },
                ModelConfig {
                    name: "all-minilm-l6-v2".into(),
                    source: "pack:all-MiniLM-L6-v2".into(),
                    prefix: String::new(),
                    max_length: None,
                },
            ],
        }
    }
}

/// Values given on the command line or in the environment; they win over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub bind: Option<String>,
    pub device: Option<String>,
    pub home: Option<PathBuf>,
    pub threads: Option<usize>,
}

impl Config {
    /// Read `path` (if any), apply overrides, validate.
    pub fn load(path: Option<&Path>, ov: &Overrides) -> Result<Config> {
        let mut cfg = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                Config::from_toml(&text).with_context(|| format!("in {}", p.display()))?
            }
            None => Config::default(),
        };
        if let Some(b) = &ov.bind {
            cfg.server.bind = b.clone();
        }
        if let Some(d) = &ov.device {
            cfg.server.device =
                DeviceSpec::parse(d).map_err(|e| anyhow::anyhow!("config: server.device: {e}"))?;
        }
        if let Some(h) = &ov.home {
            cfg.server.home = Some(h.clone());
        }
        if let Some(t) = ov.threads {
            cfg.server.threads = t;
        }
        match std::env::var(crate::keys::ENV_VAR) {
            Ok(v) => cfg.auth.merge_env(&v)?,
            Err(std::env::VarError::NotPresent) => {}
            Err(e) => bail!("env {}: {e}", crate::keys::ENV_VAR),
        }
        if let Some(f) = cfg.routing_file.clone() {
            let f = match path.and_then(Path::parent) {
                Some(dir) if f.is_relative() => dir.join(f),
                _ => f,
            };
            cfg.routing = crate::routing::Policy::from_file(&f)?;
            cfg.routing_file = Some(f);
        }
        if let (Some(tls), Some(dir)) = (cfg.server.tls.as_mut(), path.and_then(Path::parent)) {
            for f in [&mut tls.cert, &mut tls.key] {
                if f.is_relative() {
                    *f = dir.join(&*f);
                }
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parse TOML; errors name the line and the key.
    pub fn from_toml(text: &str) -> Result<Config> {
        let cfg: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(cfg)
    }

    /// Check every value; the error names the key at fault.
    pub fn validate(&self) -> Result<()> {
        crate::models::fast::Precision::resolve(self.server.precision)
            .map_err(|e| anyhow::anyhow!("config: server.precision: {e}"))?;
        let l = &self.limits;
        let b = &self.batching;
        for (key, v) in [
            ("limits.max_body_bytes", l.max_body_bytes),
            ("limits.max_texts", l.max_texts),
            ("limits.max_text_chars", l.max_text_chars),
            ("batching.max_batch_tokens", b.max_batch_tokens),
            ("batching.max_batch_size", b.max_batch_size),
            ("limits.max_concurrent_requests", l.max_concurrent_requests),
        ] {
            if v == 0 {
                bail!("config: {key} must be greater than 0");
            }
        }
        if b.max_batch_tokens < 512 {
            bail!("config: batching.max_batch_tokens must be at least 512 (one full sequence)");
        }
        self.check_overload()?;
        if self.models.is_empty() {
            bail!("config: models must list at least one model");
        }
        let mut seen = std::collections::HashSet::new();
        for (i, m) in self.models.iter().enumerate() {
            if m.name.trim().is_empty() {
                bail!("config: models[{i}].name is empty");
            }
            if !seen.insert(m.name.as_str()) {
                bail!("config: models[{i}].name `{}` is listed twice", m.name);
            }
            if m.source.trim().is_empty() {
                bail!("config: models[{i}].source is empty");
            }
            if matches!(m.max_length, Some(n) if n < 3) {
                bail!("config: models[{i}].max_length must be at least 3");
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, h) in self.intent.sets.iter().enumerate() {
            if h.name.trim().is_empty() || !names.insert(h.name.as_str()) {
                bail!(
                    "config: intent.sets[{i}].name `{}` is empty or listed twice",
                    h.name
                );
            }
        }
        if !self.intent.sets.is_empty() && !names.contains(self.intent.default_set.as_str()) {
            bail!(
                "config: intent.default_set `{}` is not one of intent.sets",
                self.intent.default_set
            );
        }
        crate::heads::emotion::EscalationConfig {
            thresholds: self.emotion.thresholds.clone(),
            head: self.emotion.escalation_threshold,
        }
        .check()
        .context("config")?;
        self.fewshot.check()?;
        self.routing.check().context("config")?;
        self.store.check()?;
        self.kb.check()?;
        if self.qa.enabled {
            let q = &self.qa.queue;
            if q.is_empty() || q.len() > 64 || q.chars().any(|c| c.is_control() || c == ' ') {
                anyhow::bail!("config: qa.queue must be 1-64 characters without spaces");
            }
            if self.routing.queue_names().contains(q) {
                anyhow::bail!(
                    "config: qa.queue {q:?} is also a routing queue; give quality events a queue of their own"
                );
            }
            // A malformed scorecard stops the start, naming its file and line.
            crate::qa::Inspector::open(&self.qa)?;
        }
        self.webhooks.check()?;
        self.screenshot.check()?;
        self.summarize.check()?;
        self.translate.check()?;
        self.batch.check()?;
        self.discovery.check()?;
        crate::keys::check_rate(Some(l.rate_per_key_per_sec), Some(l.rate_burst))
            .context("config: limits.rate_per_key_per_sec / limits.rate_burst")?;
        self.auth.check()?;
        if !self.models.iter().any(|m| m.name == self.default_model) {
            bail!(
                "config: default_model `{}` is not one of the configured models",
                self.default_model
            );
        }
        Ok(())
    }

    /// The configured model named `name`.
    pub fn model(&self, name: &str) -> Result<&ModelConfig> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .with_context(|| format!("no model `{name}` in the config"))
    }

    /// What the engine needs: device, precision, batching and the queue-wait bound.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            device: self.server.device,
            precision: self.server.precision,
            batching: self.batching.clone(),
            queue_wait_ms: self.limits.queue_wait_ms,
            retry_after_secs: self.limits.retry_after_secs,
        }
    }

    /// The model pack folder.
    pub fn home(&self) -> PathBuf {
        self.server.home.clone().unwrap_or_else(default_home)
    }
}

impl Config {
    /// The overload, shutdown and TLS keys.
    fn check_overload(&self) -> Result<()> {
        let (l, s) = (&self.limits, &self.server);
        if !(10..=600_000).contains(&l.queue_wait_ms) {
            bail!("config: limits.queue_wait_ms must be within 10..=600000");
        }
        if !(1..=3600).contains(&l.retry_after_secs) {
            bail!("config: limits.retry_after_secs must be within 1..=3600");
        }
        if !(1..=3600).contains(&l.body_timeout_secs) {
            bail!("config: limits.body_timeout_secs must be within 1..=3600");
        }
        if !(1..=3600).contains(&s.shutdown_timeout_secs) {
            bail!("config: server.shutdown_timeout_secs must be within 1..=3600");
        }
        if let Some(t) = &s.tls {
            for (key, f) in [("server.tls.cert", &t.cert), ("server.tls.key", &t.key)] {
                if !f.is_file() {
                    bail!("config: {key}: no file {}", f.display());
                }
            }
        }
        Ok(())
    }
}

/// `$TRIAGE_HOME`, else `$XDG_CACHE_HOME/triage`, else `~/.cache/triage`.
pub fn default_home() -> PathBuf {
    if let Some(h) = std::env::var_os("TRIAGE_HOME") {
        return PathBuf::from(h);
    }
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(x).join("triage");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".cache").join("triage")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn example_file_is_valid_and_matches_defaults() {
        let text = include_str!("../triage.example.toml");
        let cfg = Config::from_toml(text).unwrap();
        cfg.validate().unwrap();
        let d = Config::default();
        assert_eq!(cfg.limits.max_texts, d.limits.max_texts);
        assert_eq!(cfg.limits.max_body_bytes, d.limits.max_body_bytes);
        assert_eq!(
            cfg.limits.max_concurrent_requests,
            d.limits.max_concurrent_requests
        );
        assert_eq!(cfg.limits.queue_wait_ms, d.limits.queue_wait_ms);
        assert_eq!(
            cfg.server.shutdown_timeout_secs,
            d.server.shutdown_timeout_secs
        );
        assert_eq!(cfg.batching.max_batch_tokens, d.batching.max_batch_tokens);
        assert_eq!(cfg.models.len(), d.models.len());
        assert_eq!(cfg.server.bind, d.server.bind);
        assert_eq!(cfg.store.max_turns, d.store.max_turns);
        assert_eq!(cfg.store.retention_days, d.store.retention_days);
        assert_eq!(cfg.store.max_subscribers, d.store.max_subscribers);
        assert_eq!(cfg.webhooks.max_attempts, d.webhooks.max_attempts);
        assert_eq!(
            cfg.webhooks.initial_backoff_ms,
            d.webhooks.initial_backoff_ms
        );
        assert_eq!(cfg.kb, d.kb);
        assert_eq!(cfg.qa, d.qa);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = Config::from_toml("[limits]\nmax_texts = 3\nmax_txt = 4\n").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("max_txt"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn zero_limit_is_rejected_by_key() {
        let mut c = Config::default();
        c.limits.max_texts = 0;
        let msg = format!("{:#}", c.validate().unwrap_err());
        assert!(msg.contains("limits.max_texts"), "{msg}");
    }

    #[test]
    fn overload_and_tls_keys_are_checked() {
        let mut c = Config::default();
        c.limits.queue_wait_ms = 0;
        assert!(format!("{:#}", c.validate().unwrap_err()).contains("limits.queue_wait_ms"));
        let mut c = Config::default();
        c.server.shutdown_timeout_secs = 0;
        assert!(format!("{:#}", c.validate().unwrap_err()).contains("shutdown_timeout_secs"));
        let c = Config::from_toml("[server.tls]\ncert = \"/nope/c.pem\"\nkey = \"/nope/k.pem\"\n")
            .unwrap();
        assert!(format!("{:#}", c.validate().unwrap_err()).contains("server.tls.cert"));
        // The admission keys live in [limits] only.
        assert!(Config::from_toml("[batching]\nmax_concurrent_requests = 4\n").is_err());
    }

    #[test]
    fn default_model_must_exist() {
        let c = Config {
            default_model: "nope".into(),
            ..Config::default()
        };
        assert!(format!("{:#}", c.validate().unwrap_err()).contains("default_model"));
    }

    #[test]
    fn bad_device_and_precision_are_rejected_when_read() {
        let e = format!(
            "{:#}",
            Config::from_toml("[server]\ndevice = \"tpu\"").unwrap_err()
        );
        assert!(
            e.contains("unknown device `tpu`") && e.contains("device"),
            "{e}"
        );
        let c = Config::from_toml("[server]\ndevice = \"CUDA:1\"").unwrap();
        assert_eq!(c.server.device, DeviceSpec::Cuda(1));
        let e = format!(
            "{:#}",
            Config::from_toml("[server]\nprecision = \"f16\"").unwrap_err()
        );
        assert!(e.contains("precision"), "{e}");
        let ov = Overrides {
            device: Some("tpu".into()),
            ..Default::default()
        };
        let e = format!("{:#}", Config::load(None, &ov).unwrap_err());
        assert!(e.contains("server.device"), "{e}");
    }
}
