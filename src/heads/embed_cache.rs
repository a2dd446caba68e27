//! Embedding a dataset once: length-sorted batches through the encoder, a progress bar, and a
//! cache on disk keyed by sha256(model folder, prefix, token limit, texts).

use crate::config::Overlong;
use crate::engine::OpenModel;
use crate::models::encoder::{Embedder, TextPrep};
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// An encoder ready to embed many texts, with the identity that keys its cache.
pub struct DatasetEncoder {
    pub name: String,
    pub prefix: String,
    emb: Embedder,
    prep: TextPrep,
    key: String,
    cache: PathBuf,
}

impl DatasetEncoder {
    /// Wrap an opened model; its embedding cache lives in `cache`.
    pub fn new(name: &str, prefix: &str, m: OpenModel, cache: &Path) -> Self {
        let OpenModel {
            dir,
            embedder: emb,
            prep,
            max_length: max_len,
        } = m;
        // The model's identity: its recorded file sums when installed from the pack, else its path.
        let id = std::fs::read_to_string(dir.join("pack.json"))
            .unwrap_or_else(|_| dir.display().to_string());
        let key = format!("{id}\0{prefix}\0{max_len}");
        DatasetEncoder {
            name: name.into(),
            prefix: prefix.into(),
            emb,
            prep,
            key,
            cache: cache.to_path_buf(),
        }
    }

    pub fn dim(&self) -> usize {
        self.emb.config().hidden_size
    }

    /// Embeddings of `texts`, from the cache when this exact set was embedded before.
    pub fn embed_all(&self, texts: &[String], what: &str) -> Result<Vec<Vec<f32>>> {
        let mut h = Sha256::new();
        h.update(self.key.as_bytes());
        for t in texts {
            h.update(t.as_bytes());
            h.update([0u8]);
        }
        let file = self.cache.join(format!("{:x}.safetensors", h.finalize()));
        if let Ok(t) = candle_core::safetensors::load(&file, &Device::Cpu) {
            if let Some(e) = t.get("embeddings") {
                let v: Vec<Vec<f32>> = e.to_vec2()?;
                if v.len() == texts.len() {
                    eprintln!("{what}: {} embeddings from cache", v.len());
                    return Ok(v);
                }
            }
        }
        let ids: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| {
                Ok(self
                    .prep
                    .prepare(t, Overlong::Truncate)?
                    .map_err(|n| anyhow::anyhow!("{n} tokens"))?
                    .ids)
            })
            .collect::<Result<_>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let bar = indicatif::ProgressBar::new(texts.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(format!("embedding {what}"));
        let mut out = vec![Vec::new(); texts.len()];
        let mut start = 0;
        while start < order.len() {
            // Up to 64 sequences or 8192 padded tokens per batch (sorted, so little padding).
            let mut end = start + 1;
            while end < order.len()
                && end - start < 64
                && (end - start + 1) * ids[order[end]].len() <= 8192
            {
                end += 1;
            }
            let batch: Vec<&[u32]> = order[start..end]
                .iter()
                .map(|&i| ids[i].as_slice())
                .collect();
            for (&i, v) in order[start..end].iter().zip(self.emb.embed_batch(&batch)?) {
                out[i] = v;
            }
            bar.inc((end - start) as u64);
            start = end;
        }
        bar.finish();
        std::fs::create_dir_all(&self.cache)?;
        let flat: Vec<f32> = out.iter().flatten().copied().collect();
        let t = Tensor::from_vec(flat, (texts.len(), self.dim()), &Device::Cpu)?;
        let tmp = file.with_extension("part");
        candle_core::safetensors::save(
            &std::collections::HashMap::from([("embeddings".to_string(), t)]),
            &tmp,
        )?;
        std::fs::rename(&tmp, &file).context("writing the embedding cache")?;
        Ok(out)
    }
}
