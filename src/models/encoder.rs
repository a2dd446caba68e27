//! Sentence embedder: tokenizer prep (prefix, truncation) and the BERT forward with mean pooling + L2.

use super::bert::{Bert, BertConfig};
use crate::config::Overlong;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::path::Path;
use tokenizers::Tokenizer;

/// Something that turns batches of token ids into unit-length embeddings. The real one is
/// `Embedder`; HTTP-layer tests plug in a mock.
pub trait Backend: Send + 'static {
    /// One embedding (L2-normalised) per sequence, in order.
    fn embed(&mut self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>>;
}

/// A BERT-family encoder with mean pooling and L2 normalisation.
pub struct Embedder {
    model: Bert,
    pad_id: u32,
}

impl Embedder {
    /// Load `config.json` + `model.safetensors` from a Hugging Face folder onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let cfg = read_config(dir)?;
        let weights = super::source::weight_files(dir)?;
        // SAFETY: the weight files are not modified while the server runs (mmap contract).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&weights, DType::F32, device)? };
        let model = Bert::load(vb, &cfg).with_context(|| format!("loading {}", dir.display()))?;
        Ok(Embedder {
            model,
            pad_id: cfg.pad_token_id.unwrap_or(0),
        })
    }

    pub fn config(&self) -> &BertConfig {
        &self.model.config
    }

    /// Pad `batch` on the right, run the encoder, mean-pool over real tokens, L2-normalise.
    pub fn embed_batch(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let b = batch.len();
        let s = batch.iter().map(|x| x.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![self.pad_id; b * s];
        let mut mask = vec![0f32; b * s];
        for (i, seq) in batch.iter().enumerate() {
            ids[i * s..i * s + seq.len()].copy_from_slice(seq);
            mask[i * s..i * s + seq.len()].fill(1.0);
        }
        let dev = &self.model.device;
        let ids = Tensor::from_vec(ids, (b, s), dev)?;
        let mask = Tensor::from_vec(mask, (b, s), dev)?;
        let hidden = self.model.forward(&ids, &mask)?;
        let m = mask.unsqueeze(2)?.to_dtype(hidden.dtype())?;
        let summed = hidden.broadcast_mul(&m)?.sum(1)?;
        let counts = m.sum(1)?.clamp(1.0, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let unit = mean.broadcast_div(&norm)?.to_dtype(DType::F32)?;
        Ok(unit.to_vec2::<f32>()?)
    }
}

impl Backend for Embedder {
    fn embed(&mut self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        self.embed_batch(batch)
    }
}

/// Read and check `config.json`.
pub fn read_config(dir: &Path) -> Result<BertConfig> {
    let p = dir.join("config.json");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let cfg: BertConfig =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
    cfg.check()?;
    Ok(cfg)
}

/// Text -> token ids for one model: prefix, special tokens, the token limit.
pub struct TextPrep {
    tokenizer: Tokenizer,
    prefix: String,
    max_len: usize,
}

/// What became of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub ids: Vec<u32>,
    /// Tokens the text had before truncation (special tokens included).
    pub full_len: usize,
}

impl Prepared {
    pub fn truncated(&self) -> bool {
        self.full_len > self.ids.len()
    }
}

impl TextPrep {
    pub fn load(dir: &Path, prefix: &str, max_len: usize) -> Result<Self> {
        let p = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&p)
            .map_err(|e| anyhow::anyhow!("loading {}: {e}", p.display()))?;
        tokenizer
            .with_truncation(None)
            .map_err(anyhow::Error::msg)?;
        tokenizer.with_padding(None);
        Ok(TextPrep {
            tokenizer,
            prefix: prefix.to_string(),
            max_len,
        })
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Tokenize one text. Over-long input is cut to `max_len` keeping the final special token,
    /// or refused (`Err(full_len)`) when the policy is `reject`.
    pub fn prepare(&self, text: &str, policy: Overlong) -> Result<Result<Prepared, usize>> {
        let input = if self.prefix.is_empty() {
            text.to_string()
        } else {
            format!("{}{}", self.prefix, text)
        };
        let enc = self
            .tokenizer
            .encode(input, true)
            .map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;
        let mut ids = enc.get_ids().to_vec();
        let full_len = ids.len();
        if full_len > self.max_len {
            if policy == Overlong::Reject {
                return Ok(Err(full_len));
            }
            // Keep the closing special token ([SEP], </s>) when the tokenizer adds one.
            let ends_special = enc.get_special_tokens_mask().last() == Some(&1);
            let last = ids[full_len - 1];
            if ends_special {
                ids.truncate(self.max_len - 1);
                ids.push(last);
            } else {
                ids.truncate(self.max_len);
            }
        }
        Ok(Ok(Prepared { ids, full_len }))
    }
}
