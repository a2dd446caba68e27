//! BERT-family encoder (BERT, e5, XLM-R checkpoints) on candle: padded batches with attention masks.
//! Hand-written rather than candle-transformers' `BertModel` (issue 19): one model for BERT and
//! XLM-R checkpoints (RoBERTa position offset), whose layers the fine-tuned branches
//! (`branch.rs`) share and replace, `forward_until` a layer (head training caches), and the
//! reference the fast CPU path (`fast/`) is built from and checked against.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, LayerNormConfig, Linear, VarBuilder};
use serde::Deserialize;

/// The fields of a Hugging Face `config.json` that the encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
}

fn default_model_type() -> String {
    "bert".into()
}
fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl BertConfig {
    /// RoBERTa-style models number positions from `pad_token_id + 1`.
    pub fn position_offset(&self) -> usize {
        match self.model_type.as_str() {
            "roberta" | "xlm-roberta" | "camembert" => self.pad_token_id.unwrap_or(1) as usize + 1,
            _ => 0,
        }
    }

    /// Longest input (special tokens included) the position table allows.
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings - self.position_offset()
    }

    pub fn check(&self) -> Result<()> {
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            bail!("config.json: hidden_size must be a multiple of num_attention_heads");
        }
        if !matches!(
            self.hidden_act.as_str(),
            "gelu" | "gelu_new" | "gelu_pytorch_tanh"
        ) {
            bail!(
                "config.json: hidden_act `{}` is not supported",
                self.hidden_act
            );
        }
        if self.max_position_embeddings <= self.position_offset() + 2 {
            bail!("config.json: max_position_embeddings is too small");
        }
        Ok(())
    }
}

fn linear(vb: VarBuilder, inp: usize, out: usize) -> Result<Linear> {
    let w = vb.get((out, inp), "weight")?;
    let b = vb.get(out, "bias")?;
    Ok(Linear::new(w, Some(b)))
}

fn ln(vb: VarBuilder, size: usize, eps: f64) -> Result<LayerNorm> {
    let cfg = LayerNormConfig {
        eps,
        ..Default::default()
    };
    Ok(layer_norm(size, cfg, vb)?)
}

pub(crate) struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_ln: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
    out_ln: LayerNorm,
    tanh_gelu: bool,
    eps: f64,
    /// Use differentiable (composed) softmax and layer norm: the fused kernels have no backward.
    pub(crate) train: bool,
}

impl Layer {
    /// One `encoder.layer.N` block. Q, K and V are read either fused (`attention.self.qkv`, as
    /// fine-tuned layers are saved) or as the three checkpoint matrices, concatenated here.
    pub(crate) fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let att = vb.pp("attention");
        let sa = att.pp("self");
        let qkv = if sa.contains_tensor("qkv.weight") {
            linear(sa.pp("qkv"), h, 3 * h)?
        } else {
            // Q, K and V share their input: one matmul of the concatenated weights does all three.
            let (mut ws, mut bs) = (Vec::new(), Vec::new());
            for name in ["query", "key", "value"] {
                ws.push(sa.pp(name).get((h, h), "weight")?);
                bs.push(sa.pp(name).get(h, "bias")?);
            }
            Linear::new(Tensor::cat(&ws, 0)?, Some(Tensor::cat(&bs, 0)?))
        };
        Ok(Layer {
            qkv,
            attn_out: linear(att.pp("output").pp("dense"), h, h)?,
            attn_ln: ln(att.pp("output").pp("LayerNorm"), h, cfg.layer_norm_eps)?,
            ff_in: linear(vb.pp("intermediate").pp("dense"), h, cfg.intermediate_size)?,
            ff_out: linear(vb.pp("output").pp("dense"), cfg.intermediate_size, h)?,
            out_ln: ln(vb.pp("output").pp("LayerNorm"), h, cfg.layer_norm_eps)?,
            tanh_gelu: cfg.hidden_act != "gelu",
            eps: cfg.layer_norm_eps,
            train: false,
        })
    }

    /// The layer's weights under the names `load` reads (QKV fused), for saving tuned layers.
    pub(crate) fn tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        let mut lin = |name: &str, l: &Linear| {
            out.push((format!("{prefix}.{name}.weight"), l.weight().clone()));
            if let Some(b) = l.bias() {
                out.push((format!("{prefix}.{name}.bias"), b.clone()));
            }
        };
        lin("attention.self.qkv", &self.qkv);
        lin("attention.output.dense", &self.attn_out);
        lin("intermediate.dense", &self.ff_in);
        lin("output.dense", &self.ff_out);
        for (name, l) in [
            ("attention.output.LayerNorm", &self.attn_ln),
            ("output.LayerNorm", &self.out_ln),
        ] {
            out.push((format!("{prefix}.{name}.weight"), l.weight().clone()));
            if let Some(b) = l.bias() {
                out.push((format!("{prefix}.{name}.bias"), b.clone()));
            }
        }
        out
    }

    /// Whether the activation is the tanh GELU, and the layer-norm epsilon.
    pub(crate) fn act_eps(&self) -> (bool, f64) {
        (self.tanh_gelu, self.eps)
    }

    fn norm(&self, l: &LayerNorm, x: &Tensor) -> Result<Tensor> {
        if !self.train {
            return Ok(l.forward(x)?);
        }
        let bias = l.bias().context("layer norm without bias")?;
        Ok(candle_nn::ops::layer_norm_slow(
            x,
            l.weight(),
            bias,
            self.eps as f32,
        )?)
    }

    /// `x`: [b, s, h]; `bias`: [b, 1, 1, s] additive mask (0 or a large negative number).
    pub(crate) fn forward(&self, x: &Tensor, bias: &Tensor, heads: usize) -> Result<Tensor> {
        let (b, s, h) = x.dims3()?;
        let hd = h / heads;
        let qkv = self.qkv.forward(x)?;
        let split = |i: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(D::Minus1, i * h, h)?
                .reshape((b, s, heads, hd))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let scale = 1.0 / (hd as f64).sqrt();
        let q = (split(0)? * scale)?;
        let k = split(1)?;
        let v = split(2)?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(bias)?;
        let probs = if self.train {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let ctx = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, s, h))?;
        let x = self.norm(&self.attn_ln, &(self.attn_out.forward(&ctx)? + x)?)?;
        let mid = self.ff_in.forward(&x)?;
        let mid = if self.tanh_gelu {
            mid.gelu()?
        } else {
            mid.gelu_erf()?
        };
        self.norm(&self.out_ln, &(self.ff_out.forward(&mid)? + x)?)
    }
}

/// A loaded encoder: token ids in, last hidden states out.
pub struct Bert {
    word: Tensor,
    pos: Tensor,
    type0: Tensor,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    pos_offset: usize,
    pub config: BertConfig,
    pub device: Device,
}

impl Bert {
    /// Load from a VarBuilder over the checkpoint; accepts names with or without a
    /// `bert.` / `roberta.` / `model.` prefix.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        cfg.check()?;
        let mut root = vb.clone();
        for p in ["bert", "roberta", "model"] {
            if vb.contains_tensor(&format!("{p}.embeddings.word_embeddings.weight")) {
                root = vb.pp(p);
            }
        }
        let h = cfg.hidden_size;
        let emb = root.pp("embeddings");
        let word = emb
            .pp("word_embeddings")
            .get((cfg.vocab_size, h), "weight")?;
        let pos = emb
            .pp("position_embeddings")
            .get((cfg.max_position_embeddings, h), "weight")?;
        let types = emb
            .pp("token_type_embeddings")
            .get((cfg.type_vocab_size, h), "weight")?;
        let type0 = types.narrow(0, 0, 1)?;
        let emb_ln = ln(emb.pp("LayerNorm"), h, cfg.layer_norm_eps)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(root.pp(format!("encoder.layer.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Bert {
            word,
            pos,
            type0,
            emb_ln,
            layers,
            heads: cfg.num_attention_heads,
            pos_offset: cfg.position_offset(),
            config: cfg.clone(),
            device: vb.device().clone(),
        })
    }

    /// `ids`, `mask`: [b, s] (u32; mask 1 for real tokens, right padding).
    /// Returns the last hidden states [b, s, h].
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        Ok(self.forward_until(ids, mask, self.layers.len())?.0)
    }

    /// Embeddings and the first `upto` layers: the shared trunk under fine-tuned top layers.
    /// Returns the hidden states [b, s, h] and the attention bias the later layers need.
    pub fn forward_until(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        upto: usize,
    ) -> Result<(Tensor, Tensor)> {
        let (b, s) = ids.dims2()?;
        if s > self.config.max_tokens() {
            bail!(
                "sequence of {s} tokens is over the model's {}",
                self.config.max_tokens()
            );
        }
        let flat = ids.flatten_all()?;
        let words = self.word.index_select(&flat, 0)?.reshape((b, s, ()))?;
        let pos = self.pos.narrow(0, self.pos_offset, s)?;
        let x = words.broadcast_add(&pos)?.broadcast_add(&self.type0)?;
        let x = self.emb_ln.forward(&x)?;
        let bias = attention_bias(mask, x.dtype())?;
        let x = self.run_layers(&self.layers[..upto.min(self.layers.len())], x, &bias)?;
        Ok((x, bias))
    }

    /// Run `layers` (this model's, or fine-tuned replacements of its top ones) over `x`.
    pub(crate) fn run_layers(
        &self,
        layers: &[Layer],
        mut x: Tensor,
        bias: &Tensor,
    ) -> Result<Tensor> {
        for layer in layers {
            x = layer.forward(&x, bias, self.heads)?;
        }
        Ok(x)
    }

    /// The word, position and type-0 embedding tables, their layer norm, the position offset.
    pub(crate) fn embedding_parts(&self) -> (&Tensor, &Tensor, &Tensor, &LayerNorm, usize) {
        (
            &self.word,
            &self.pos,
            &self.type0,
            &self.emb_ln,
            self.pos_offset,
        )
    }

    pub(crate) fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Layers `first..` of this model (for `forward_until(.., first)` + these = `forward`).
    pub(crate) fn top_layers(&self, first: usize) -> &[Layer] {
        &self.layers[first.min(self.layers.len())..]
    }
}

/// 0 where attended, -1e4 where padded: finite in every dtype, exp() underflows to 0.
/// `mask`: [b, s] of 0/1; returns [b, 1, 1, s].
pub fn attention_bias(mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b, s) = mask.dims2()?;
    Ok(((mask.to_dtype(DType::F32)? - 1.0)? * 1e4)?
        .to_dtype(dtype)?
        .reshape((b, 1, 1, s))?)
}
