//! BERT-family encoder (BERT, e5, XLM-R checkpoints) on candle: padded batches with attention masks.

use anyhow::{bail, Result};
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

struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_ln: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
    out_ln: LayerNorm,
    tanh_gelu: bool,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let att = vb.pp("attention");
        let sa = att.pp("self");
        // Q, K and V share their input: one matmul of the concatenated weights does all three.
        let (mut ws, mut bs) = (Vec::new(), Vec::new());
        for name in ["query", "key", "value"] {
            ws.push(sa.pp(name).get((h, h), "weight")?);
            bs.push(sa.pp(name).get(h, "bias")?);
        }
        let qkv = Linear::new(Tensor::cat(&ws, 0)?, Some(Tensor::cat(&bs, 0)?));
        Ok(Layer {
            qkv,
            attn_out: linear(att.pp("output").pp("dense"), h, h)?,
            attn_ln: ln(att.pp("output").pp("LayerNorm"), h, cfg.layer_norm_eps)?,
            ff_in: linear(vb.pp("intermediate").pp("dense"), h, cfg.intermediate_size)?,
            ff_out: linear(vb.pp("output").pp("dense"), cfg.intermediate_size, h)?,
            out_ln: ln(vb.pp("output").pp("LayerNorm"), h, cfg.layer_norm_eps)?,
            tanh_gelu: cfg.hidden_act != "gelu",
        })
    }

    /// `x`: [b, s, h]; `bias`: [b, 1, 1, s] additive mask (0 or a large negative number).
    fn forward(&self, x: &Tensor, bias: &Tensor, heads: usize) -> Result<Tensor> {
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
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, s, h))?;
        let x = self.attn_ln.forward(&(self.attn_out.forward(&ctx)? + x)?)?;
        let mid = self.ff_in.forward(&x)?;
        let mid = if self.tanh_gelu {
            mid.gelu()?
        } else {
            mid.gelu_erf()?
        };
        Ok(self.out_ln.forward(&(self.ff_out.forward(&mid)? + x)?)?)
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
        let mut x = self.emb_ln.forward(&x)?;
        // 0 where attended, -1e4 where padded: finite in every dtype, exp() underflows to 0.
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e4)?
            .to_dtype(x.dtype())?
            .reshape((b, 1, 1, s))?;
        for layer in &self.layers {
            x = layer.forward(&x, &bias, self.heads)?;
        }
        Ok(x)
    }
}
