//! Fine-tuned top layers ("branches"): a head may replace the encoder's last layers with its own
//! tuned copies. The shared trunk runs once per text; each branch runs only the layers it replaced.

use super::bert::{BertConfig, Layer};
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

    /// From a `layers.safetensors` file's bytes (any float dtype; computed in f32).
    pub fn from_bytes(
        bytes: &[u8],
        cfg: &BertConfig,
        first: usize,
        count: usize,
        device: &Device,
    ) -> Result<Self> {
        let t = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)?
            .into_iter()
            .map(|(k, v)| Ok((k, v.to_dtype(DType::F32)?.to_device(device)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        Self::from_tensors(t, cfg, first, count, device)
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
