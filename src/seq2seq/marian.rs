//! MarianMTModel (Hugging Face layout) with an encoder padding mask and a step-wise cached decoder.
//!
//! Post-layer-norm transformer: static sinusoidal positions (sin in the first half, cos in the
//! second, as HF's `MarianSinusoidalPositionalEmbedding`), optional `sqrt(d_model)` embedding
//! scale, `lm_head` tied to the decoder embeddings unless `tie_word_embeddings` is false, plus
//! `final_logits_bias`. With `share_encoder_decoder_embeddings: false` (separate source and
//! target vocabularies, as the opus-mt-tc models) the encoder and decoder have their own
//! embeddings of `vocab_size` and `decoder_vocab_size` rows.

use super::dense::Dense;
use super::layers::{last_logits, Act, Attention, AttentionNames, KvCache};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Embedding, LayerNorm, Module, VarBuilder};
use serde::Deserialize;

fn d_1024() -> usize {
    1024
}
fn d_12() -> usize {
    12
}
fn d_16() -> usize {
    16
}
fn d_4096() -> usize {
    4096
}
fn d_gelu() -> String {
    "gelu".to_string()
}
fn d_true() -> bool {
    true
}

/// The fields of a Marian `config.json` the model needs (defaults as `MarianConfig`).
#[derive(Clone, Debug, Deserialize)]
pub struct MarianConfig {
    pub vocab_size: usize,
    #[serde(default)]
    pub decoder_vocab_size: Option<usize>,
    #[serde(default = "d_1024")]
    pub d_model: usize,
    #[serde(default = "d_12")]
    pub encoder_layers: usize,
    #[serde(default = "d_12")]
    pub decoder_layers: usize,
    #[serde(default = "d_16")]
    pub encoder_attention_heads: usize,
    #[serde(default = "d_16")]
    pub decoder_attention_heads: usize,
    #[serde(default = "d_4096")]
    pub encoder_ffn_dim: usize,
    #[serde(default = "d_4096")]
    pub decoder_ffn_dim: usize,
    #[serde(default = "d_1024")]
    pub max_position_embeddings: usize,
    #[serde(default = "d_gelu")]
    pub activation_function: String,
    #[serde(default)]
    pub scale_embedding: bool,
    #[serde(default = "d_true")]
    pub share_encoder_decoder_embeddings: bool,
    #[serde(default = "d_true")]
    pub tie_word_embeddings: bool,
}

struct EncoderLayer {
    attn: Attention,
    attn_ln: LayerNorm,
    fc1: Dense,
    fc2: Dense,
    ffn_ln: LayerNorm,
}

struct DecoderLayer {
    attn: Attention,
    attn_ln: LayerNorm,
    cross: Attention,
    cross_ln: LayerNorm,
    fc1: Dense,
    fc2: Dense,
    ffn_ln: LayerNorm,
}

pub struct Marian {
    pub cfg: MarianConfig,
    enc_embed: Embedding,
    dec_embed: Embedding,
    /// `(max_position_embeddings, d_model)` sinusoids.
    positions: Tensor,
    embed_scale: f64,
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
    lm_head: Dense,
    act: Act,
}

const NAMES: AttentionNames<'static> = AttentionNames {
    q: "q_proj",
    k: "k_proj",
    v: "v_proj",
    o: "out_proj",
};

/// HF's sinusoids: angle(p, j) = p / 10000^(2*(j/2)/dim) in f64; sin of even j in the first
/// half (rounded up), cos of odd j in the rest.
pub fn sinusoids(n_pos: usize, dim: usize) -> Vec<f32> {
    let sentinel = dim.div_ceil(2);
    let mut out = vec![0f32; n_pos * dim];
    for p in 0..n_pos {
        let row = &mut out[p * dim..(p + 1) * dim];
        for j in 0..dim {
            let angle = p as f64 / 10000f64.powf((2 * (j / 2)) as f64 / dim as f64);
            if j % 2 == 0 {
                row[j / 2] = angle.sin() as f32;
            } else {
                row[sentinel + j / 2] = angle.cos() as f32;
            }
        }
    }
    out
}

/// The target vocabulary: `vocab_size` when the embeddings are shared (as transformers sizes
/// `lm_head`), else `decoder_vocab_size` (separate source/target vocabularies).
fn decoder_vocab(cfg: &MarianConfig) -> usize {
    if cfg.share_encoder_decoder_embeddings {
        cfg.vocab_size
    } else {
        cfg.decoder_vocab_size.unwrap_or(cfg.vocab_size)
    }
}

fn layer_norm(d: usize, vb: VarBuilder) -> Result<LayerNorm> {
    Ok(candle_nn::layer_norm(d, 1e-5, vb)?)
}

impl Marian {
    pub fn load(vb: VarBuilder, cfg: MarianConfig) -> Result<Marian> {
        let d = cfg.d_model;
        let act = Act::from_hf(&cfg.activation_function)?;
        let m = vb.pp("model");
        let shared_name = if m.contains_tensor("shared.weight") {
            "shared"
        } else {
            "encoder.embed_tokens"
        };
        let shared = m.pp(shared_name).get((cfg.vocab_size, d), "weight")?;
        let dec_vocab = decoder_vocab(&cfg);
        let dec_w = if cfg.share_encoder_decoder_embeddings {
            shared.clone()
        } else {
            m.pp("decoder.embed_tokens").get((dec_vocab, d), "weight")?
        };
        let lm_w = if cfg.tie_word_embeddings {
            dec_w.clone()
        } else {
            vb.pp("lm_head").get((dec_vocab, d), "weight")?
        };
        let bias = if vb.contains_tensor("final_logits_bias") {
            vb.get((1, dec_vocab), "final_logits_bias")?.flatten_all()?
        } else {
            Tensor::zeros(dec_vocab, vb.dtype(), vb.device())?
        };
        let head = |h: usize| -> Result<usize> {
            if h == 0 || !d.is_multiple_of(h) {
                bail!("d_model {d} is not divisible by {h} attention heads");
            }
            Ok(d / h)
        };
        let eh = cfg.encoder_attention_heads;
        let dh = cfg.decoder_attention_heads;
        let (ehd, dhd) = (head(eh)?, head(dh)?);
        let mut encoder = Vec::with_capacity(cfg.encoder_layers);
        for i in 0..cfg.encoder_layers {
            let l = m.pp(format!("encoder.layers.{i}"));
            encoder.push(EncoderLayer {
                attn: Attention::load(
                    l.pp("self_attn"),
                    &NAMES,
                    d,
                    eh,
                    ehd,
                    true,
                    Some(1.0 / (ehd as f64).sqrt()),
                )?,
                attn_ln: layer_norm(d, l.pp("self_attn_layer_norm"))?,
                fc1: Dense::load(d, cfg.encoder_ffn_dim, true, l.pp("fc1"))?,
                fc2: Dense::load(cfg.encoder_ffn_dim, d, true, l.pp("fc2"))?,
                ffn_ln: layer_norm(d, l.pp("final_layer_norm"))?,
            });
        }
        let mut decoder = Vec::with_capacity(cfg.decoder_layers);
        for i in 0..cfg.decoder_layers {
            let l = m.pp(format!("decoder.layers.{i}"));
            let scale = Some(1.0 / (dhd as f64).sqrt());
            decoder.push(DecoderLayer {
                attn: Attention::load(l.pp("self_attn"), &NAMES, d, dh, dhd, true, scale)?,
                attn_ln: layer_norm(d, l.pp("self_attn_layer_norm"))?,
                cross: Attention::load(l.pp("encoder_attn"), &NAMES, d, dh, dhd, true, scale)?,
                cross_ln: layer_norm(d, l.pp("encoder_attn_layer_norm"))?,
                fc1: Dense::load(d, cfg.decoder_ffn_dim, true, l.pp("fc1"))?,
                fc2: Dense::load(cfg.decoder_ffn_dim, d, true, l.pp("fc2"))?,
                ffn_ln: layer_norm(d, l.pp("final_layer_norm"))?,
            });
        }
        let n_pos = cfg.max_position_embeddings;
        let positions = Tensor::from_vec(sinusoids(n_pos, d), (n_pos, d), &Device::Cpu)?
            .to_dtype(vb.dtype())?
            .to_device(vb.device())?;
        Ok(Marian {
            embed_scale: if cfg.scale_embedding {
                (d as f64).sqrt()
            } else {
                1.0
            },
            enc_embed: Embedding::new(shared, d),
            dec_embed: Embedding::new(dec_w, d),
            lm_head: Dense::new(lm_w, Some(bias))?,
            positions,
            encoder,
            decoder,
            act,
            cfg,
        })
    }

    pub fn encoder_vocab_size(&self) -> usize {
        self.cfg.vocab_size
    }

    pub fn decoder_vocab_size(&self) -> usize {
        decoder_vocab(&self.cfg)
    }

    pub fn max_positions(&self) -> usize {
        self.cfg.max_position_embeddings
    }

    /// Encoder output `(b, s, d)` for right-padded `ids` `(b, s)` with padding bias `(b, 1, 1, s)`.
    pub fn encode(&self, ids: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (_, s) = ids.dims2()?;
        if s > self.cfg.max_position_embeddings {
            bail!(
                "input of {s} tokens is longer than max_position_embeddings {}",
                self.cfg.max_position_embeddings
            );
        }
        let x = (self.enc_embed.forward(ids)? * self.embed_scale)?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, 0, s)?)?;
        for l in &self.encoder {
            let h = l.attn.full(&x, &[bias])?;
            let h = l.attn_ln.forward(&(x + h)?)?;
            let f = l.fc2.forward(&self.act.apply(&l.fc1.forward(&h)?)?)?;
            x = l.ffn_ln.forward(&(h + f)?)?;
        }
        Ok(x)
    }

    /// Fresh decoder cache with the cross-attention keys/values of `enc` `(b, s, d)`.
    pub fn new_cache(&self, enc: &Tensor, bias: &Tensor) -> Result<KvCache> {
        let cross_kv = self
            .decoder
            .iter()
            .map(|l| l.cross.project_kv(enc))
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache::new(cross_kv, bias))
    }

    /// Feed one token per row; returns next-token logits `(rows, vocab)` in f32.
    pub fn step(&self, tokens: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let pos = cache.len;
        if pos >= self.cfg.max_position_embeddings {
            bail!(
                "decoder position {pos} is past max_position_embeddings {}",
                self.cfg.max_position_embeddings
            );
        }
        let x = (self.dec_embed.forward(&tokens.unsqueeze(1)?)? * self.embed_scale)?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, pos, 1)?)?;
        for (i, l) in self.decoder.iter().enumerate() {
            let pick = cache.self_pick.as_deref();
            let h = l.attn.step(&x, &mut cache.self_kv[i], pick, &[])?;
            let h = l.attn_ln.forward(&(x + h)?)?;
            let (k, v) = &cache.cross_kv[i];
            let c = l.cross.attend(&h, k, v, &[&cache.enc_bias])?;
            let h = l.cross_ln.forward(&(h + c)?)?;
            let f = l.fc2.forward(&self.act.apply(&l.fc1.forward(&h)?)?)?;
            x = l.ffn_ln.forward(&(h + f)?)?;
        }
        cache.len += 1;
        cache.self_pick = None;
        last_logits(&self.lm_head.forward(&x)?)
    }

    pub fn dtype(&self) -> DType {
        self.positions.dtype()
    }
}

#[cfg(test)]
mod tests {
    use super::sinusoids;

    #[test]
    fn sinusoids_put_cos_in_the_second_half() {
        let s = sinusoids(3, 4);
        // position 0: sin(0) = 0, cos(0) = 1
        assert_eq!(&s[0..4], &[0.0, 0.0, 1.0, 1.0]);
        // position 1, j = 0: sin(1); j = 1: cos(1); j = 2: sin(1/100); j = 3: cos(1/100)
        assert!((s[4] - 1f64.sin() as f32).abs() < 1e-7);
        assert!((s[5] - 0.01f64.sin() as f32).abs() < 1e-7);
        assert!((s[6] - 1f64.cos() as f32).abs() < 1e-7);
        assert!((s[7] - 0.01f64.cos() as f32).abs() < 1e-7);
    }
}
