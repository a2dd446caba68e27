//! A mock encoder for HTTP-layer tests of few-shot intents: bytes as token ids, and a unit-length
//! bag of hashed lowercase words as the embedding, so texts sharing words are similar.

use triage::config::Overlong;
use triage::engine::Tokenize;
use triage::models::encoder::{Backend, Prepared};

/// The embedding's width.
pub const DIM: usize = 64;

/// Bytes as token ids between two "special" ids.
pub struct ByteTok;

impl Tokenize for ByteTok {
    fn prepare(&self, text: &str, _: Overlong) -> anyhow::Result<Result<Prepared, usize>> {
        let mut ids = vec![0u32];
        ids.extend(text.bytes().map(u32::from));
        ids.push(2);
        let full_len = ids.len();
        Ok(Ok(Prepared { ids, full_len }))
    }
}

/// The dimension a word counts in (FNV-1a).
pub fn bucket(word: &str) -> usize {
    let mut h: u32 = 2166136261;
    for b in word.bytes() {
        h = (h ^ b as u32).wrapping_mul(16777619);
    }
    h as usize % DIM
}

/// A bag of hashed lowercase words, unit length.
pub fn bag(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; DIM];
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        v[bucket(&w.to_lowercase())] += 1.0;
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.iter().map(|x| x / n).collect()
}

/// Embeds what `ByteTok` tokenized with `bag`.
pub struct BagBackend;

impl Backend for BagBackend {
    fn embed(&mut self, batch: &[&[u32]]) -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(batch
            .iter()
            .map(|s| {
                let bytes: Vec<u8> = s[1..s.len() - 1].iter().map(|&b| b as u8).collect();
                bag(&String::from_utf8_lossy(&bytes))
            })
            .collect())
    }
}

/// The mock model `mock`, started on a worker thread of its own: what the HTTP-layer tests
/// serve.
pub fn bag_model(
    engine: &triage::engine::EngineConfig,
    metrics: std::sync::Arc<triage::metrics::Metrics>,
) -> std::sync::Arc<triage::engine::EmbedModel> {
    let info = triage::engine::ModelInfo {
        name: "mock".into(),
        task: "embed".into(),
        source: "pack:mock".into(),
        dim: DIM,
        device: "cpu".into(),
        dtype: "f32".into(),
        max_length: 512,
        prefix: String::new(),
    };
    triage::engine::EmbedModel::start(
        info,
        std::sync::Arc::new(ByteTok),
        Box::new(BagBackend),
        engine,
        metrics,
    )
    .expect("mock model")
}

/// A config whose only model is `mock` (served by [`bag_model`]), with no trained intent sets
/// and its home at `home`.
pub fn mock_config(home: &std::path::Path) -> triage::config::Config {
    let mut cfg = triage::config::Config {
        models: vec![triage::config::ModelConfig {
            name: "mock".into(),
            source: "pack:mock".into(),
            prefix: String::new(),
            max_length: Some(512),
        }],
        default_model: "mock".into(),
        ..triage::config::Config::default()
    };
    cfg.intent.sets.clear();
    cfg.server.home = Some(home.to_path_buf());
    cfg
}
