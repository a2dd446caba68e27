//! Embedding a dataset once: length-sorted batches through the encoder, a progress bar, and a
//! cache on disk keyed by sha256(model folder, prefix, token limit, texts).

use crate::models::config::Overlong;
use crate::models::encoder::{Embedder, TextPrep};
use crate::models::open::OpenModel;
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
    dir: PathBuf,
    /// Embeddings come from this fine-tuned branch (index 1 of the embedder) when set:
    /// (its id, the first layer it replaces).
    branch: Option<(String, usize)>,
}

/// A progress bar (hidden when stderr is not a terminal).
pub fn progress(n: usize, msg: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(msg.to_string());
    bar
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
        // `simplified`: Traditional Chinese has been read as Simplified since the key had it.
        let mut key = format!("{id}\0{prefix}\0{max_len}\0simplified");
        if emb.precision() != "f32" {
            key.push_str(&format!("\0{}", emb.precision()));
        }
        DatasetEncoder {
            name: name.into(),
            prefix: prefix.into(),
            emb,
            prep,
            key,
            cache: cache.to_path_buf(),
            dir,
            branch: None,
        }
    }

    pub fn embedder(&self) -> &Embedder {
        &self.emb
    }

    pub fn weight_files(&self) -> Result<Vec<PathBuf>> {
        crate::models::source::weight_files(&self.dir)
    }

    /// Embed through fine-tuned top layers from now on; `id` (e.g. a hash of their weights)
    /// keeps their cached embeddings apart from the plain encoder's.
    pub fn with_branch(mut self, b: crate::models::branch::Branch, id: &str) -> Result<Self> {
        let first = b.first;
        self.emb.add_branch(b)?;
        self.branch = Some((id.to_string(), first));
        Ok(self)
    }

    fn cache_file(&self, texts: &[String], what: &str) -> PathBuf {
        let mut h = Sha256::new();
        h.update(self.key.as_bytes());
        if let (Some((id, _)), "") = (&self.branch, what) {
            h.update(format!("\0branch:{id}").as_bytes());
        }
        h.update(what.as_bytes());
        for t in texts {
            h.update(t.as_bytes());
            h.update([0u8]);
        }
        self.cache.join(format!("{:x}.safetensors", h.finalize()))
    }

    fn ids(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .map(|t| {
                Ok(self
                    .prep
                    .prepare(t, Overlong::Truncate)?
                    .map_err(|n| anyhow::anyhow!("{n} tokens"))?
                    .ids)
            })
            .collect()
    }

    /// Hidden states after the first `upto` layers, one [tokens, h] tensor per text (CPU, f32),
    /// cached on disk (f16) like the embeddings.
    pub fn trunk_states(&self, texts: &[String], upto: usize, what: &str) -> Result<Vec<Tensor>> {
        if let Some(v) = self.cached_trunk(texts, upto, what)? {
            return Ok(v);
        }
        self.compute_trunk(texts, upto, what)
    }

    fn cached_trunk(
        &self,
        texts: &[String],
        upto: usize,
        what: &str,
    ) -> Result<Option<Vec<Tensor>>> {
        let file = self.cache_file(texts, &format!("trunk:{upto}"));
        if let Ok(t) = candle_core::safetensors::load(&file, &Device::Cpu) {
            if let (Some(flat), Some(lens)) = (t.get("states"), t.get("lens")) {
                let lens: Vec<u32> = lens.to_vec1()?;
                if lens.len() == texts.len() {
                    eprintln!("{what}: trunk states from cache");
                    let flat = flat.to_dtype(candle_core::DType::F32)?;
                    let mut out = Vec::with_capacity(lens.len());
                    let mut at = 0;
                    for n in lens {
                        // Views into one buffer (`copy()` would clone the whole buffer per text).
                        out.push(flat.narrow(0, at, n as usize)?);
                        at += n as usize;
                    }
                    return Ok(Some(out));
                }
            }
        }
        Ok(None)
    }

    fn compute_trunk(&self, texts: &[String], upto: usize, what: &str) -> Result<Vec<Tensor>> {
        let file = self.cache_file(texts, &format!("trunk:{upto}"));
        let ids = self.ids(texts)?;
        let mut out: Vec<Option<Tensor>> = vec![None; texts.len()];
        self.batched(&ids, &format!("encoding {what}"), |rows, batch| {
            let (x, mask) = self.emb.pad(batch)?;
            let (h, _) = self.emb.model().forward_until(&x, &mask, upto)?;
            for (j, &i) in rows.iter().enumerate() {
                // A view: the rows of a batch share its buffer (sorted batches, little padding).
                out[i] = Some(h.get(j)?.narrow(0, 0, batch[j].len())?);
            }
            Ok(())
        })?;
        let out: Vec<Tensor> = out.into_iter().flatten().collect();
        let lens: Vec<u32> = out.iter().map(|t| t.dim(0).unwrap_or(0) as u32).collect();
        let flat = Tensor::cat(&out, 0)?.to_dtype(candle_core::DType::F16)?;
        let n = lens.len();
        self.save(
            &file,
            [
                ("states".to_string(), flat),
                ("lens".to_string(), Tensor::from_vec(lens, n, &Device::Cpu)?),
            ],
        )?;
        Ok(out)
    }

    fn save(&self, file: &Path, t: [(String, Tensor); 2]) -> Result<()> {
        std::fs::create_dir_all(&self.cache)?;
        let map: std::collections::HashMap<String, Tensor> = t.into_iter().collect();
        crate::fsutil::replace_via_path(file, |tmp| Ok(candle_core::safetensors::save(&map, tmp)?))
            .context("writing the embedding cache")
    }

    /// Length-sorted batches (up to 64 sequences or 8192 padded tokens) with a progress bar;
    /// `f(original indices, batch)`.
    fn batched(
        &self,
        ids: &[Vec<u32>],
        what: &str,
        mut f: impl FnMut(&[usize], &[&[u32]]) -> Result<()>,
    ) -> Result<()> {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let bar = progress(ids.len(), what);
        let mut start = 0;
        while start < order.len() {
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
            f(&order[start..end], &batch)?;
            bar.inc((end - start) as u64);
            start = end;
        }
        bar.finish();
        Ok(())
    }

    pub fn dim(&self) -> usize {
        self.emb.config().hidden_size
    }

    /// Embeddings of `texts`, from the cache when this exact set was embedded before.
    pub fn embed_all(&self, texts: &[String], what: &str) -> Result<Vec<Vec<f32>>> {
        let file = self.cache_file(texts, "");
        if let Ok(t) = candle_core::safetensors::load(&file, &Device::Cpu) {
            if let Some(e) = t.get("embeddings") {
                let v: Vec<Vec<f32>> = e.to_vec2()?;
                if v.len() == texts.len() {
                    eprintln!("{what}: {} embeddings from cache", v.len());
                    return Ok(v);
                }
            }
        }
        let mut out = vec![Vec::new(); texts.len()];
        let trunk = match &self.branch {
            Some((_, first)) => self.cached_trunk(texts, *first, what)?,
            None => None,
        };
        if let Some(states) = trunk {
            // Only the tuned layers need to run over trunk states cached by the fine-tuning.
            let mut order: Vec<usize> = (0..states.len()).collect();
            order.sort_by_key(|&i| states[i].dim(0).unwrap_or(0));
            let bar = progress(states.len(), &format!("embedding {what} (tuned layers)"));
            for rows in order.chunks(64) {
                let st: Vec<&Tensor> = rows.iter().map(|&i| &states[i]).collect();
                for (&i, v) in rows.iter().zip(self.emb.branch_from_states(&st, 1)?) {
                    out[i] = v;
                }
                bar.inc(rows.len() as u64);
            }
            bar.finish();
            return self.store_embeddings(texts, out);
        }
        let ids = self.ids(texts)?;
        self.batched(&ids, &format!("embedding {what}"), |rows, batch| {
            let vecs = if self.branch.is_some() {
                let want: &[usize] = &[1];
                self.emb
                    .branches_batch(batch, &vec![want; batch.len()])?
                    .into_iter()
                    .map(|mut v| v.remove(0))
                    .collect()
            } else {
                self.emb.embed_batch(batch)?
            };
            for (&i, v) in rows.iter().zip(vecs) {
                out[i] = v;
            }
            Ok(())
        })?;
        self.store_embeddings(texts, out)
    }

    fn store_embeddings(&self, texts: &[String], out: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>> {
        let file = self.cache_file(texts, "");
        let flat: Vec<f32> = out.iter().flatten().copied().collect();
        let t = Tensor::from_vec(flat, (texts.len(), self.dim()), &Device::Cpu)?;
        let n = texts.len();
        self.save(
            &file,
            [
                ("embeddings".to_string(), t),
                (
                    "n".to_string(),
                    Tensor::from_vec(vec![n as u32], 1, &Device::Cpu)?,
                ),
            ],
        )?;
        Ok(out)
    }
}
