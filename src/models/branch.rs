//! Fine-tuned top layers ("branches"): a head may replace the encoder's last layers with its own
//! tuned copies. The shared trunk runs once per text; each branch runs only the layers it replaced.

use super::bert::{Bert, BertConfig, Layer};
use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::collections::HashMap;

/// Layers `first..first + layers.len()` of an encoder, replacing that encoder's own top layers.
pub struct Branch {
    pub first: usize,
    pub(crate) layers: Vec<Layer>,
}

impl Branch {
    /// Tensors named `encoder.layer.N.…` (QKV fused or not) for `first..first+count`.
    pub fn from_tensors(
        tensors: HashMap<String, Tensor>,
        cfg: &BertConfig,
        first: usize,
        count: usize,
        device: &Device,
    ) -> Result<Self> {
        ensure!(
            count >= 1 && first + count == cfg.num_hidden_layers,
            "tuned layers {first}..{} must end at the encoder's last layer ({})",
            first + count,
            cfg.num_hidden_layers
        );
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let layers = (first..first + count)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), cfg))
            .collect::<Result<Vec<_>>>()
            .context("tuned layers")?;
        Ok(Branch { first, layers })
    }

    /// From a `layers.safetensors` file's bytes over the `base` encoder: weight matrices stored
    /// as int8 deltas from the base's own layers (`NAME.dq` u8 offset by 128, `NAME.ds` f32 scale
    /// per row), other tensors as they are; plain float tensors (any dtype) are read too.
    pub fn from_bytes(
        bytes: &[u8],
        base: &Bert,
        first: usize,
        count: usize,
        device: &Device,
    ) -> Result<Self> {
        let stored = candle_core::safetensors::load_buffer(bytes, device)?;
        let mut t = HashMap::new();
        for (name, w) in base_tensors(base, first)? {
            let value = match (
                stored.get(&format!("{name}.dq")),
                stored.get(&format!("{name}.ds")),
            ) {
                (Some(q), Some(scale)) => {
                    let q = (q.to_dtype(DType::F32)? - 128.0)?;
                    (w + q.broadcast_mul(&scale.to_dtype(DType::F32)?.unsqueeze(1)?)?)?
                }
                _ => stored
                    .get(&name)
                    .with_context(|| format!("layers file has no {name}"))?
                    .to_dtype(DType::F32)?,
            };
            t.insert(name, value);
        }
        Self::from_tensors(t, &base.config, first, count, device)
    }

    /// The `layers.safetensors` bytes of this branch over `base` (see `from_bytes`): matrices as
    /// int8 deltas with a scale per row (lossless to about 1/254 of the largest change in a row),
    /// vectors in f32. Fine-tuning moves the top layers little, so this is half the size of f16.
    pub fn to_bytes(&self, base: &Bert) -> Result<Vec<u8>> {
        let base = base_tensors(base, self.first)?;
        let mut out = HashMap::new();
        for (name, w) in self.tensors() {
            let w = w.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
            let b = base
                .get(&name)
                .with_context(|| format!("base has no {name}"))?
                .to_device(&Device::Cpu)?;
            if w.rank() == 2 {
                let d = (w - b)?;
                let scale = (d.abs()?.max_keepdim(1)? / 127.0)?.clamp(1e-12, f64::MAX)?;
                let q = (d.broadcast_div(&scale)?.round()?.clamp(-127.0, 127.0)? + 128.0)?;
                out.insert(format!("{name}.dq"), q.to_dtype(DType::U8)?);
                out.insert(format!("{name}.ds"), scale.squeeze(1)?);
            } else {
                out.insert(name, w);
            }
        }
        let tmp = std::env::temp_dir().join(format!(
            "triage-layers-{}-{}.safetensors",
            std::process::id(),
            self.first
        ));
        candle_core::safetensors::save(&out, &tmp)?;
        let bytes = std::fs::read(&tmp)?;
        let _ = std::fs::remove_file(&tmp);
        Ok(bytes)
    }

    /// Switch the layers between inference kernels and differentiable ops.
    pub fn set_train(&mut self, train: bool) {
        for l in &mut self.layers {
            l.train = train;
        }
    }

    /// The weights by name, as `from_tensors` reads them.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(j, l)| l.tensors(&format!("encoder.layer.{}", self.first + j)))
            .collect()
    }
}

/// The base encoder's own layers `first..` by name (QKV fused, as `Branch::tensors` names them).
fn base_tensors(base: &Bert, first: usize) -> Result<HashMap<String, Tensor>> {
    base.top_layers(first)
        .iter()
        .enumerate()
        .flat_map(|(j, l)| l.tensors(&format!("encoder.layer.{}", first + j)))
        .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?)))
        .collect()
}

/// The checkpoint tensors of layers `first..` of the model in `weights`, with any `bert.` /
/// `roberta.` / `model.` prefix removed (the starting point of fine-tuning).
pub fn pretrained_top(
    weights: &[std::path::PathBuf],
    first: usize,
    layers: usize,
) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for f in weights {
        for (k, v) in candle_core::safetensors::load(f, &Device::Cpu)? {
            let Some(pos) = k.find("encoder.layer.") else {
                continue;
            };
            let name = &k[pos..];
            let idx: Option<usize> = name["encoder.layer.".len()..]
                .split('.')
                .next()
                .and_then(|n| n.parse().ok());
            if idx.is_some_and(|i| i >= first && i < layers) {
                out.insert(name.to_string(), v.to_dtype(DType::F32)?);
            }
        }
    }
    ensure!(!out.is_empty(), "no encoder.layer.* tensors found");
    Ok(out)
}
