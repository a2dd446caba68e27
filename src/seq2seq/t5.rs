//! T5ForConditionalGeneration (t5 v1.0 and v1.1 / flan-t5) with padding masks and a cached decoder.
//!
//! Pre-RMS-norm blocks, relative attention bias from the first block of each stack (bidirectional
//! buckets in the encoder, causal in the decoder, computed with HF's f32 log formula), no
//! `q·k` scaling, `relu` or gated (`gated-gelu` = tanh gelu) feed-forward. Tied embeddings
//! (`tie_word_embeddings`, default true) scale the decoder output by `d_model^-0.5` before the
//! LM head; untied checkpoints use their own `lm_head.weight` unscaled.

use super::dense::Dense;
use super::layers::{last_logits, Act, Attention, AttentionNames, KvCache};
use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use candle_nn::{Embedding, Module, RmsNorm, VarBuilder};
use serde::Deserialize;

fn d_32() -> usize {
    32
}
fn d_128() -> usize {
    128
}
fn d_eps() -> f64 {
    1e-6
}
fn d_relu() -> String {
    "relu".to_string()
}
fn d_true() -> bool {
    true
}

/// The fields of a T5 `config.json` the model needs (defaults as `T5Config`).
#[derive(Clone, Debug, Deserialize)]
pub struct T5Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    pub num_heads: usize,
    #[serde(default = "d_32")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "d_128")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "d_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "d_relu")]
    pub feed_forward_proj: String,
    #[serde(default = "d_true")]
    pub tie_word_embeddings: bool,
}

/// HF's `_relative_position_bucket` for one relative position (`key - query`), bit-for-bit:
/// the log branch is evaluated in f32 like the torch code.
pub fn relative_position_bucket(
    relative: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let mut nb = num_buckets as i64;
    let mut bucket = 0i64;
    let n = if bidirectional {
        nb /= 2;
        if relative > 0 {
            bucket += nb;
        }
        relative.abs()
    } else {
        (-relative).max(0)
    };
    let max_exact = nb / 2;
    if n < max_exact {
        return (bucket + n) as usize;
    }
    let denom = (max_distance as f64 / max_exact as f64).ln() as f32;
    let v = (n as f32 / max_exact as f32).ln() / denom * (nb - max_exact) as f32;
    let large = (max_exact + v as i64).min(nb - 1);
    (bucket + large) as usize
}

enum FeedForward {
    Dense { wi: Dense, wo: Dense },
    Gated { wi_0: Dense, wi_1: Dense, wo: Dense },
}

struct Ff {
    ff: FeedForward,
    act: Act,
    ln: RmsNorm,
}

impl Ff {
    fn load(vb: VarBuilder, cfg: &T5Config) -> Result<Ff> {
        let (gated, act) = match cfg.feed_forward_proj.split_once('-') {
            Some(("gated", "gelu")) => (true, Act::GeluTanh),
            Some(("gated", a)) => (true, Act::from_hf(a)?),
            Some(_) => bail!("unsupported feed_forward_proj {:?}", cfg.feed_forward_proj),
            None => (false, Act::from_hf(&cfg.feed_forward_proj)?),
        };
        let d = vb.pp("DenseReluDense");
        let lin = |n: &str, i, o| Dense::load(i, o, false, d.pp(n));
        let ff = if gated {
            FeedForward::Gated {
                wi_0: lin("wi_0", cfg.d_model, cfg.d_ff)?,
                wi_1: lin("wi_1", cfg.d_model, cfg.d_ff)?,
                wo: lin("wo", cfg.d_ff, cfg.d_model)?,
            }
        } else {
            FeedForward::Dense {
                wi: lin("wi", cfg.d_model, cfg.d_ff)?,
                wo: lin("wo", cfg.d_ff, cfg.d_model)?,
            }
        };
        Ok(Ff {
            ff,
            act,
            ln: rms(vb.pp("layer_norm"), cfg)?,
        })
    }

    /// `x + FF(norm(x))`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.ln.forward(x)?;
        let h = match &self.ff {
            FeedForward::Dense { wi, wo } => wo.forward(&self.act.apply(&wi.forward(&h)?)?)?,
            FeedForward::Gated { wi_0, wi_1, wo } => {
                let g = self.act.apply(&wi_0.forward(&h)?)?;
                wo.forward(&(g * wi_1.forward(&h)?)?)?
            }
        };
        Ok((x + h)?)
    }
}

fn rms(vb: VarBuilder, cfg: &T5Config) -> Result<RmsNorm> {
    Ok(candle_nn::rms_norm(
        cfg.d_model,
        cfg.layer_norm_epsilon,
        vb,
    )?)
}

struct EncoderBlock {
    attn: Attention,
    attn_ln: RmsNorm,
    ff: Ff,
}

struct DecoderBlock {
    attn: Attention,
    attn_ln: RmsNorm,
    cross: Attention,
    cross_ln: RmsNorm,
    ff: Ff,
}

const NAMES: AttentionNames<'static> = AttentionNames {
    q: "q",
    k: "k",
    v: "v",
    o: "o",
};

pub struct T5 {
    pub cfg: T5Config,
    embed: Embedding,
    encoder: Vec<EncoderBlock>,
    enc_rel: Tensor,
    enc_final: RmsNorm,
    decoder: Vec<DecoderBlock>,
    dec_rel: Tensor,
    dec_final: RmsNorm,
    lm_head: Dense,
    lm_scale: f64,
}

impl T5 {
    pub fn load(vb: VarBuilder, cfg: T5Config) -> Result<T5> {
        let d = cfg.d_model;
        let (h, hd) = (cfg.num_heads, cfg.d_kv);
        let shared = if vb.contains_tensor("shared.weight") {
            vb.get((cfg.vocab_size, d), "shared.weight")?
        } else {
            vb.get((cfg.vocab_size, d), "encoder.embed_tokens.weight")?
        };
        let nb = cfg.relative_attention_num_buckets;
        let rel_name = "layer.0.SelfAttention.relative_attention_bias.weight";
        let enc_rel = vb.pp("encoder.block.0").get((nb, h), rel_name)?;
        let dec_rel = vb.pp("decoder.block.0").get((nb, h), rel_name)?;
        let mut encoder = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let b = vb.pp(format!("encoder.block.{i}.layer"));
            encoder.push(EncoderBlock {
                attn: Attention::load(b.pp("0.SelfAttention"), &NAMES, d, h, hd, false, None)?,
                attn_ln: rms(b.pp("0.layer_norm"), &cfg)?,
                ff: Ff::load(b.pp("1"), &cfg)?,
            });
        }
        let n_dec = cfg.num_decoder_layers.unwrap_or(cfg.num_layers);
        let mut decoder = Vec::with_capacity(n_dec);
        for i in 0..n_dec {
            let b = vb.pp(format!("decoder.block.{i}.layer"));
            decoder.push(DecoderBlock {
                attn: Attention::load(b.pp("0.SelfAttention"), &NAMES, d, h, hd, false, None)?,
                attn_ln: rms(b.pp("0.layer_norm"), &cfg)?,
                cross: Attention::load(b.pp("1.EncDecAttention"), &NAMES, d, h, hd, false, None)?,
                cross_ln: rms(b.pp("1.layer_norm"), &cfg)?,
                ff: Ff::load(b.pp("2"), &cfg)?,
            });
        }
        // transformers 5: tied => shared weights and d_model^-0.5 scaling; untied => the
        // checkpoint's lm_head (falling back to shared when absent), no scaling.
        let (lm_w, lm_scale) = if cfg.tie_word_embeddings {
            (shared.clone(), (d as f64).powf(-0.5))
        } else if vb.contains_tensor("lm_head.weight") {
            (vb.get((cfg.vocab_size, d), "lm_head.weight")?, 1.0)
        } else {
            (shared.clone(), 1.0)
        };
        Ok(T5 {
            embed: Embedding::new(shared, d),
            enc_final: rms(vb.pp("encoder.final_layer_norm"), &cfg)?,
            dec_final: rms(vb.pp("decoder.final_layer_norm"), &cfg)?,
            lm_head: Dense::new(lm_w, None)?,
            lm_scale,
            encoder,
            enc_rel,
            decoder,
            dec_rel,
            cfg,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.cfg.vocab_size
    }

    /// `(1, heads, q_len, k_len)` bias for queries at `q_from..q_from+q_len` over keys `0..k_len`.
    fn position_bias(
        &self,
        table: &Tensor,
        q_from: usize,
        q_len: usize,
        k_len: usize,
        bidirectional: bool,
    ) -> Result<Tensor> {
        let mut buckets = Vec::with_capacity(q_len * k_len);
        for q in q_from..q_from + q_len {
            for k in 0..k_len {
                buckets.push(relative_position_bucket(
                    k as i64 - q as i64,
                    bidirectional,
                    self.cfg.relative_attention_num_buckets,
                    self.cfg.relative_attention_max_distance,
                ) as u32);
            }
        }
        let idx =
            Tensor::from_vec(buckets, q_len * k_len, &Device::Cpu)?.to_device(table.device())?;
        let h = self.cfg.num_heads;
        Ok(table
            .index_select(&idx, 0)?
            .reshape((q_len, k_len, h))?
            .permute((2, 0, 1))?
            .unsqueeze(0)?
            .contiguous()?)
    }

    /// Encoder output `(b, s, d)` for right-padded `ids` with padding bias `(b, 1, 1, s)`.
    pub fn encode(&self, ids: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (_, s) = ids.dims2()?;
        let pos = self.position_bias(&self.enc_rel, 0, s, s, true)?;
        let mut x = self.embed.forward(ids)?;
        for b in &self.encoder {
            let h = b.attn.full(&b.attn_ln.forward(&x)?, &[&pos, bias])?;
            x = b.ff.forward(&(x + h)?)?;
        }
        Ok(self.enc_final.forward(&x)?)
    }

    /// Fresh decoder cache with the cross-attention keys/values of `enc` `(b, s, d)`.
    pub fn new_cache(&self, enc: &Tensor, bias: &Tensor) -> Result<KvCache> {
        let cross_kv = self
            .decoder
            .iter()
            .map(|b| b.cross.project_kv(enc))
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache::new(cross_kv, bias))
    }

    /// Feed one token per row; returns next-token logits `(rows, vocab)` in f32.
    pub fn step(&self, tokens: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let p = cache.len;
        let pos = self.position_bias(&self.dec_rel, p, 1, p + 1, false)?;
        let mut x = self.embed.forward(&tokens.unsqueeze(1)?)?;
        for (i, b) in self.decoder.iter().enumerate() {
            let h = b.attn.step(
                &b.attn_ln.forward(&x)?,
                &mut cache.self_kv[i],
                cache.self_pick.as_deref(),
                &[&pos],
            )?;
            let x1 = (x + h)?;
            let (k, v) = &cache.cross_kv[i];
            let c = b
                .cross
                .attend(&b.cross_ln.forward(&x1)?, k, v, &[&cache.enc_bias])?;
            x = b.ff.forward(&(x1 + c)?)?;
        }
        cache.len += 1;
        cache.self_pick = None;
        let x = (self.dec_final.forward(&x)? * self.lm_scale)?;
        last_logits(&self.lm_head.forward(&x)?)
    }
}

#[cfg(test)]
mod tests {
    use super::relative_position_bucket as b;

    #[test]
    fn small_distances_are_exact() {
        assert_eq!(b(0, true, 32, 128), 0);
        assert_eq!(b(3, true, 32, 128), 16 + 3);
        assert_eq!(b(-3, true, 32, 128), 3);
        assert_eq!(b(-5, false, 32, 128), 5);
        assert_eq!(b(5, false, 32, 128), 0);
        assert_eq!(b(-1000, false, 32, 128), 31);
        assert_eq!(b(1000, true, 32, 128), 31);
    }
}
