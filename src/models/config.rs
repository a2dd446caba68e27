//! The model-level config sections (`[[models]]`, `limits.overlong`, `server.precision`): plain
//! serde types that import nothing of the project, so every layer above can take them.

use serde::{Deserialize, Serialize};

/// What to do with a text longer than the model's token limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlong {
    Truncate,
    Reject,
}

/// `server.precision`: the arithmetic of the encoders on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionSetting {
    /// bf16 where the CPU has AVX-512 BF16, else f32.
    #[default]
    Auto,
    F32,
    Bf16,
}

/// One model to serve.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Name used in requests and in `/v1/models`.
    pub name: String,
    /// `pack:NAME` (default pack), a local Hugging Face folder, or `hf:org/name[@revision]`.
    pub source: String,
    /// Text put before every input (e5 models expect `query: `). Empty for none.
    #[serde(default)]
    pub prefix: String,
    /// Token limit (including special tokens); default: the model's own.
    #[serde(default)]
    pub max_length: Option<usize>,
}
