//! Seq2seq generation (Marian translation, T5 / flan-t5): one loaded model behind [`Seq2Seq`],
//! with its tokenizer, padding masks for batched inputs of different lengths, and greedy or beam
//! search matching Hugging Face transformers' `generate`.
//! Hand-written rather than candle-transformers' Marian/T5 (issue 19): batches of different
//! lengths need encoder padding masks, and the outputs must be those of transformers' `generate`
//! (its beam search and logits processors, `generate.rs`), which the parity tests check exactly.

pub mod dense;
pub mod generate;
pub mod layers;
pub mod marian;
pub mod spm;
pub mod spm_model;
pub mod spm_target;
pub mod t5;

pub use generate::{GenerateOptions, TokenRules};

use crate::models::weights::Weights;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use generate::StepModel;
use layers::{padding_bias, KvCache};
use serde_json::Value;
use std::path::Path;
use tokenizers::Tokenizer;

enum Model {
    Marian(marian::Marian),
    T5(t5::T5),
}

impl Model {
    fn encode(&self, ids: &Tensor, bias: &Tensor) -> Result<Tensor> {
        match self {
            Model::Marian(m) => m.encode(ids, bias),
            Model::T5(m) => m.encode(ids, bias),
        }
    }

    fn new_cache(&self, enc: &Tensor, bias: &Tensor) -> Result<KvCache> {
        match self {
            Model::Marian(m) => m.new_cache(enc, bias),
            Model::T5(m) => m.new_cache(enc, bias),
        }
    }
}

impl StepModel for Model {
    fn step(&self, tokens: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        match self {
            Model::Marian(m) => m.step(tokens, cache),
            Model::T5(m) => m.step(tokens, cache),
        }
    }
}

enum Tok {
    Hf(Box<Tokenizer>),
    MarianSpm(Box<spm::MarianSpm>),
}

/// A loaded encoder-decoder model with its tokenizer and special ids.
pub struct Seq2Seq {
    model: Model,
    tok: Tok,
    device: Device,
    rules: TokenRules,
    /// Input ids must be below this.
    enc_vocab: usize,
    /// Decoder ids must be below this (differs from `enc_vocab` with separate vocabularies).
    dec_vocab: usize,
    /// Most decoder positions (Marian's sinusoid table); T5 has none.
    max_decoder_positions: Option<usize>,
    generation_config: Value,
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Token ids of a config value: an integer, a list of integers, or null/absent (empty).
fn id_list(v: Option<&Value>) -> Result<Vec<u32>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| id_list(Some(x))?.first().copied().context("empty id"))
            .collect(),
        Some(x) => {
            let n = x
                .as_u64()
                .with_context(|| format!("token id {x} is not a non-negative integer"))?;
            Ok(vec![u32::try_from(n)?])
        }
    }
}

impl Seq2Seq {
    /// Load a Hugging Face folder: `config.json`, the weights (`model.safetensors`, shards, or
    /// PyTorch `pytorch_model.bin`: see [`Weights`]), `tokenizer.json`; Marian folders without
    /// `tokenizer.json` use `source.spm` + `vocab.json` (+ `target.spm` + `target_vocab.json`
    /// with separate vocabularies).
    /// `generation_config.json`, when present, supplies the special ids, `forced_eos_token_id`
    /// and `bad_words_ids` (else `config.json` does, as transformers does).
    pub fn load(dir: &Path, device: &Device) -> Result<Seq2Seq> {
        let cfg = read_json(&dir.join("config.json"))?;
        let gen_path = dir.join("generation_config.json");
        let gen = if gen_path.is_file() {
            Some(read_json(&gen_path)?)
        } else {
            None
        };
        let kind = cfg.get("model_type").and_then(Value::as_str).unwrap_or("");
        let vb = Weights::find(dir)?
            .var_builder(DType::F32, device)
            .with_context(|| format!("weights of {}", dir.display()))?;
        // Ids: generation_config.json first, config.json second, model defaults last.
        let pick = |key: &str| -> Result<Vec<u32>> {
            let g = id_list(gen.as_ref().and_then(|g| g.get(key)))?;
            if !g.is_empty() {
                return Ok(g);
            }
            id_list(cfg.get(key))
        };
        let gen_or_cfg = gen.as_ref().unwrap_or(&cfg);
        let (model, (enc_vocab, dec_vocab), max_pos, default_eos, default_pad, default_forced) =
            match kind {
                "marian" => {
                    let c: marian::MarianConfig = serde_json::from_value(cfg.clone())
                        .context("config.json is not a Marian config")?;
                    let m = marian::Marian::load(vb, c)
                        .with_context(|| format!("loading {}", dir.display()))?;
                    let v = (m.encoder_vocab_size(), m.decoder_vocab_size());
                    let p = m.max_positions();
                    (Model::Marian(m), v, Some(p), 0, 58100, vec![0])
                }
                "t5" => {
                    let c: t5::T5Config = serde_json::from_value(cfg.clone())
                        .context("config.json is not a T5 config")?;
                    let m = t5::T5::load(vb, c)
                        .with_context(|| format!("loading {}", dir.display()))?;
                    let v = m.vocab_size();
                    (Model::T5(m), (v, v), None, 1, 0, vec![])
                }
                other => bail!(
                    "unsupported model_type {other:?} in {} (marian or t5)",
                    dir.display()
                ),
            };
        let eos = Some(pick("eos_token_id")?)
            .filter(|v| !v.is_empty())
            .unwrap_or(vec![default_eos]);
        let pad = pick("pad_token_id")?
            .first()
            .copied()
            .unwrap_or(default_pad);
        let decoder_start = pick("decoder_start_token_id")?
            .first()
            .copied()
            .unwrap_or(pad);
        let forced_eos = match gen_or_cfg.get("forced_eos_token_id") {
            Some(v) => id_list(Some(v))?,
            None if gen.is_none() => default_forced,
            None => vec![],
        };
        let bad_words = match gen_or_cfg.get("bad_words_ids") {
            Some(Value::Array(seqs)) => seqs
                .iter()
                .map(|s| id_list(Some(s)))
                .collect::<Result<Vec<_>>>()?,
            _ => vec![],
        };
        let tok_path = dir.join("tokenizer.json");
        let tok = if tok_path.is_file() {
            let mut t = Tokenizer::from_file(&tok_path)
                .map_err(|e| anyhow::anyhow!("loading {}: {e}", tok_path.display()))?;
            t.with_truncation(None)
                .map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;
            t.with_padding(None);
            Tok::Hf(Box::new(t))
        } else if kind == "marian" {
            Tok::MarianSpm(Box::new(
                spm::MarianSpm::load(dir)
                    .with_context(|| format!("tokenizer of {}", dir.display()))?,
            ))
        } else {
            bail!("no tokenizer.json in {}", dir.display());
        };
        Ok(Seq2Seq {
            model,
            tok,
            device: device.clone(),
            rules: TokenRules {
                decoder_start,
                eos,
                pad,
                forced_eos,
                bad_words,
            },
            enc_vocab,
            dec_vocab,
            max_decoder_positions: max_pos,
            generation_config: gen.unwrap_or(Value::Null),
        })
    }

    /// `"marian"` or `"t5"`.
    pub fn kind(&self) -> &'static str {
        match self.model {
            Model::Marian(_) => "marian",
            Model::T5(_) => "t5",
        }
    }

    /// Special ids and generation constraints in use.
    pub fn token_rules(&self) -> &TokenRules {
        &self.rules
    }

    /// Options from `generation_config.json` (`num_beams`, `max_length`/`max_new_tokens`, ...)
    /// over [`GenerateOptions::default`].
    pub fn default_options(&self) -> GenerateOptions {
        let g = &self.generation_config;
        let u = |k: &str| g.get(k).and_then(Value::as_u64).map(|x| x as usize);
        let mut o = GenerateOptions::default();
        if let Some(n) = u("max_new_tokens").or(u("max_length").map(|m| m.saturating_sub(1))) {
            o.max_new_tokens = n;
        }
        o.min_new_tokens = u("min_new_tokens").unwrap_or(0);
        o.num_beams = u("num_beams").unwrap_or(1).max(1);
        o.no_repeat_ngram_size = u("no_repeat_ngram_size").unwrap_or(0);
        o.length_penalty = g
            .get("length_penalty")
            .and_then(Value::as_f64)
            .unwrap_or(1.0);
        o.early_stopping = g
            .get("early_stopping")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        o
    }

    /// Token ids for `texts`, EOS appended as the HF tokenizer does. No truncation: a text
    /// longer than `max_input_tokens` is an error naming its index.
    pub fn encode_texts(&self, texts: &[&str], max_input_tokens: usize) -> Result<Vec<Vec<u32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let ids = match &self.tok {
                Tok::Hf(t) => t
                    .encode(*text, true)
                    .map_err(|e| anyhow::anyhow!("tokenizing text {i}: {e}"))?
                    .get_ids()
                    .to_vec(),
                Tok::MarianSpm(t) => t
                    .encode(text)
                    .with_context(|| format!("tokenizing text {i}"))?,
            };
            if ids.len() > max_input_tokens {
                bail!(
                    "text {i} is {} tokens long, more than max_input_tokens ({max_input_tokens})",
                    ids.len()
                );
            }
            out.push(ids);
        }
        Ok(out)
    }

    /// Right-pad `inputs`, run the encoder; returns (encoder output, padding bias).
    fn run_encoder(&self, inputs: &[Vec<u32>]) -> Result<(Tensor, Tensor)> {
        for (i, row) in inputs.iter().enumerate() {
            if row.is_empty() {
                bail!("input {i} is empty");
            }
            if let Some(&bad) = row.iter().find(|&&t| t as usize >= self.enc_vocab) {
                bail!(
                    "input {i} has token id {bad}, outside the vocabulary of {}",
                    self.enc_vocab
                );
            }
        }
        let s = inputs.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(inputs.len() * s);
        let mut mask = Vec::with_capacity(inputs.len());
        for row in inputs {
            ids.extend_from_slice(row);
            ids.extend(std::iter::repeat_n(self.rules.pad, s - row.len()));
            let mut m = vec![1u8; row.len()];
            m.resize(s, 0);
            mask.push(m);
        }
        let ids = Tensor::from_vec(ids, (inputs.len(), s), &self.device)?;
        let bias = padding_bias(&mask, &self.device)?;
        Ok((self.model.encode(&ids, &bias)?, bias))
    }

    /// Batched generation on token ids of different lengths (right-padded with an attention
    /// mask inside). Per input: the generated ids without the decoder start token, ending with
    /// EOS when one was produced and nothing after it (HF's output minus its first column, cut
    /// after the first EOS).
    pub fn generate_ids(
        &self,
        inputs: &[Vec<u32>],
        opts: &GenerateOptions,
    ) -> Result<Vec<Vec<u32>>> {
        self.generate_ids_streaming(inputs, opts, &mut |_, _| {})
    }

    /// [`Self::generate_ids`] calling `on_token(row, id)` for every returned id in order: as
    /// soon as it is chosen for greedy search, at the end for beam search.
    pub fn generate_ids_streaming(
        &self,
        inputs: &[Vec<u32>],
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(usize, u32),
    ) -> Result<Vec<Vec<u32>>> {
        if opts.num_beams == 0 {
            bail!("num_beams must be at least 1");
        }
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        if opts.max_new_tokens == 0 {
            return Ok(vec![Vec::new(); inputs.len()]);
        }
        if let Some(max) = self.max_decoder_positions {
            if opts.max_new_tokens > max {
                bail!(
                    "max_new_tokens {} is more than the model's {max} positions",
                    opts.max_new_tokens
                );
            }
        }
        let (enc, bias) = self.run_encoder(inputs)?;
        let cache = self.model.new_cache(&enc, &bias)?;
        if opts.num_beams == 1 {
            generate::greedy(&self.model, cache, &self.rules, opts, on_token)
        } else {
            let out = generate::beam_search(&self.model, cache, &self.rules, opts)?;
            for (r, ids) in out.iter().enumerate() {
                ids.iter().for_each(|&t| on_token(r, t));
            }
            Ok(out)
        }
    }

    /// `encode_texts` (no length limit beyond the model's) + `generate_ids` + `decode`.
    pub fn generate(&self, texts: &[&str], opts: &GenerateOptions) -> Result<Vec<String>> {
        let ids = self.encode_texts(texts, usize::MAX)?;
        self.generate_ids(&ids, opts)?
            .iter()
            .map(|ids| self.decode(ids))
            .collect()
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match &self.tok {
            Tok::Hf(t) => t
                .decode(ids, true)
                .map_err(|e| anyhow::anyhow!("decoding: {e}")),
            Tok::MarianSpm(t) => t.decode(ids, true),
        }
    }

    /// Encoder output per input, `[row][position][dim]` (padding positions dropped).
    pub fn encoder_hidden_states(&self, inputs: &[Vec<u32>]) -> Result<Vec<Vec<Vec<f32>>>> {
        let (enc, _) = self.run_encoder(inputs)?;
        let enc: Vec<Vec<Vec<f32>>> = enc.to_dtype(DType::F32)?.to_vec3()?;
        Ok(enc
            .into_iter()
            .zip(inputs)
            .map(|(mut rows, input)| {
                rows.truncate(input.len());
                rows
            })
            .collect())
    }

    /// Teacher-forced next-token logits: for each input, feed `prefixes[i]` (decoder start
    /// included) through the cached decoder and return the logits after its last token.
    pub fn next_token_logits(
        &self,
        inputs: &[Vec<u32>],
        prefixes: &[Vec<u32>],
    ) -> Result<Vec<Vec<f32>>> {
        if inputs.len() != prefixes.len() {
            bail!("{} inputs but {} prefixes", inputs.len(), prefixes.len());
        }
        let mut out = Vec::with_capacity(inputs.len());
        for (input, prefix) in inputs.iter().zip(prefixes) {
            let (enc, bias) = self.run_encoder(std::slice::from_ref(input))?;
            let mut cache = self.model.new_cache(&enc, &bias)?;
            if let Some(&bad) = prefix.iter().find(|&&t| t as usize >= self.dec_vocab) {
                bail!(
                    "prefix token id {bad} is outside the decoder vocabulary of {}",
                    self.dec_vocab
                );
            }
            let mut logits = None;
            for &t in prefix {
                let tok = Tensor::new(&[t], &self.device)?;
                logits = Some(self.model.step(&tok, &mut cache)?);
            }
            let Some(l) = logits else {
                bail!("empty decoder prefix")
            };
            out.push(l.to_vec2::<f32>()?.into_iter().next().unwrap_or_default());
        }
        Ok(out)
    }
}
