//! Opening a configured model: resolve its source, load the encoder at the configured precision,
//! and its text preparation with the token limit sentence-transformers would use.

use super::config::{ModelConfig, PrecisionSetting};
use super::encoder::{Embedder, TextPrep};
use super::source::Source;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// `max_seq_length` of a sentence-transformers folder (all-MiniLM-L6-v2: 256), so that inputs
/// are cut where sentence-transformers cuts them.
pub fn sentence_transformers_max_len(dir: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(dir.join("sentence_bert_config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("max_seq_length")?.as_u64().map(|n| n as usize)
}

/// A model's token limit: the configured one, else sentence-transformers' `max_seq_length`,
/// else the model's own; never above what its position table allows.
pub fn token_limit(configured: Option<usize>, dir: &Path, model_max: usize) -> usize {
    configured
        .or_else(|| sentence_transformers_max_len(dir))
        .unwrap_or(model_max)
        .min(model_max)
}

/// A configured model opened on a device: its folder, encoder, and text preparation.
pub struct OpenModel {
    pub dir: PathBuf,
    pub embedder: Embedder,
    pub prep: TextPrep,
    pub max_length: usize,
}

/// Resolve a configured model's source and load it (blocking: reads the weights).
/// `precision`: `server.precision` (the CPU fast path's arithmetic).
pub fn open_model(
    mc: &ModelConfig,
    home: &Path,
    dev: &candle_core::Device,
    precision: PrecisionSetting,
) -> Result<OpenModel> {
    let dir = Source::parse(&mc.source)?.resolve(home)?;
    let p = super::fast::Precision::resolve(precision)?;
    let embedder = Embedder::load_with(&dir, dev, Some(p))?;
    let max_length = token_limit(mc.max_length, &dir, embedder.config().max_tokens());
    let prep = TextPrep::load(&dir, &mc.prefix, max_length)?;
    Ok(OpenModel {
        dir,
        embedder,
        prep,
        max_length,
    })
}
