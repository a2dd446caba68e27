//! The engine's config sections (`server.device`, `[batching]`) and the view of the whole config
//! the engine takes: plain types that import nothing of the project outside the model layer's own
//! config section.

use crate::models::config::PrecisionSetting;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `server.device`: `cpu`, `cuda` or `cuda:N`, parsed once when the config is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    Cuda(usize),
}

impl DeviceSpec {
    /// `cpu`, `cuda`/`gpu` (device 0) or `cuda:N`, any case.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceSpec::Cuda(n)),
                _ => Err(format!(
                    "unknown device `{s}`: expected cpu, cuda or cuda:N"
                )),
            },
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl Serialize for DeviceSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DeviceSpec::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `[batching]`: how the model worker groups queued texts into forward passes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchingConfig {
    /// Most padded tokens (batch size x longest sequence) in one forward pass.
    pub max_batch_tokens: usize,
    /// Most sequences in one forward pass.
    pub max_batch_size: usize,
}

impl Default for BatchingConfig {
    fn default() -> Self {
        BatchingConfig {
            max_batch_tokens: 16_384,
            max_batch_size: 64,
        }
    }
}

/// What the engine needs from the whole config (built by `Config::engine`).
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    pub device: DeviceSpec,
    pub precision: PrecisionSetting,
    pub batching: BatchingConfig,
    /// `limits.queue_wait_ms`: longest wait before the model starts on a job.
    pub queue_wait_ms: u64,
    /// `limits.retry_after_secs`: `Retry-After` of the 503 a shed job gets.
    pub retry_after_secs: u64,
}
