//! The weight files of a Hugging Face model folder and the `VarBuilder` over them: safetensors
//! (`model.safetensors`, a sharded index, or any `*.safetensors`), memory-mapped; else PyTorch
//! `pytorch_model.bin` (or its sharded index), read through [`super::pth`] into memory.
//!
//! Conversion: where triage itself puts a model in place (`triage models fetch`, the first
//! download of an `hf:` model, `triage models install`), PyTorch weights are converted once into
//! a `model.safetensors` beside them ([`convert_folder`]). Later starts then memory-map that
//! file instead of reading the pickle into memory again: less start time and peak memory (the
//! pickle path holds a copy of every tensor), and the pickle is parsed once, when the model is
//! installed, not by the server. Folders triage did not write (a local folder, a hub cache
//! copied from elsewhere) are read as they are, without writing into them.

use super::pth;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use std::path::{Path, PathBuf};

/// Which weights a folder has, in the order they are preferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Weights {
    Safetensors(Vec<PathBuf>),
    Pytorch(Vec<PathBuf>),
}

/// The file names of a sharded checkpoint's `*.index.json` (its `weight_map` values).
pub fn index_shards(index: &Path) -> Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string(index).with_context(|| format!("reading {}", index.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", index.display()))?;
    let Some(map) = v.get("weight_map").and_then(|m| m.as_object()) else {
        bail!("{}: no weight_map", index.display())
    };
    let mut files = Vec::new();
    for f in map.values() {
        let Some(f) = f.as_str() else {
            bail!("{}: a weight_map value is not a file name", index.display())
        };
        if f.is_empty() || f.contains(['/', '\\']) || f == ".." {
            bail!(
                "{}: shard name {f:?} is not a plain file name",
                index.display()
            );
        }
        files.push(f.to_string());
    }
    files.sort();
    files.dedup();
    if files.is_empty() {
        bail!("{} lists no weight files", index.display());
    }
    let dir = index.parent().unwrap_or(Path::new("."));
    Ok(files.into_iter().map(|f| dir.join(f)).collect())
}

impl Weights {
    /// The weights of `dir`: `model.safetensors`, `model.safetensors.index.json`, `pytorch_model.bin`,
    /// `pytorch_model.bin.index.json`, then any `*.safetensors`.
    pub fn find(dir: &Path) -> Result<Weights> {
        let single = dir.join("model.safetensors");
        if single.is_file() {
            return Ok(Weights::Safetensors(vec![single]));
        }
        let index = dir.join("model.safetensors.index.json");
        if index.is_file() {
            return Ok(Weights::Safetensors(index_shards(&index)?));
        }
        let bin = dir.join("pytorch_model.bin");
        if bin.is_file() {
            return Ok(Weights::Pytorch(vec![bin]));
        }
        let index = dir.join("pytorch_model.bin.index.json");
        if index.is_file() {
            return Ok(Weights::Pytorch(index_shards(&index)?));
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!(
                "{} has no model.safetensors or pytorch_model.bin (nor a sharded index of either)",
                dir.display()
            );
        }
        Ok(Weights::Safetensors(files))
    }

    pub fn files(&self) -> &[PathBuf] {
        match self {
            Weights::Safetensors(f) | Weights::Pytorch(f) => f,
        }
    }

    /// A `VarBuilder` over these weights, values converted to `dtype` on `device`.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
        for f in self.files() {
            if !f.is_file() {
                bail!("weight file {} is missing", f.display());
            }
        }
        match self {
            Weights::Safetensors(files) => {
                // SAFETY: the weight files are not modified while they are mapped.
                Ok(unsafe { VarBuilder::from_mmaped_safetensors(files, dtype, device)? })
            }
            Weights::Pytorch(files) => {
                let mut all = std::collections::HashMap::new();
                for f in files {
                    all.extend(pth::load(f)?);
                }
                Ok(VarBuilder::from_tensors(all, dtype, device))
            }
        }
    }
}

/// Convert the PyTorch weights of `dir` into `dir/model.safetensors` when it has no safetensors
/// weights; returns the file written, None when there was nothing to do.
pub fn convert_folder(dir: &Path) -> Result<Option<PathBuf>> {
    let Weights::Pytorch(bins) = Weights::find(dir)? else {
        return Ok(None);
    };
    let out = dir.join("model.safetensors");
    let n = pth::to_safetensors(&bins, &out)?;
    tracing::info!(
        tensors = n,
        "converted {} to {}",
        bins[0].display(),
        out.display()
    );
    Ok(Some(out))
}
