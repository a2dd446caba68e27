//! Fast CPU inference path of the BERT-family encoder: unpadded token rows, reused buffers,
//! vectorised element-wise kernels and f32 (packed AVX2 kernel, else `gemm`) or bf16 (AVX-512
//! BF16) matrix multiplies.
//! Built from a loaded candle `Bert` (which stays the reference and the training path).
//!
//! Kept hand-written (SIMD kernels, issue 19): candle's CPU path pads every batch and multiplies
//! through `gemm`, whose AVX-512 kernels need a nightly compiler and which has no AVX-512 BF16 or
//! AMX path; these kernels run unpadded rows, fuse bias, residual and GELU into the product, and
//! measure faster (`benches/matmul.rs`, `benches/embed.rs`). CPU features come from `cpu.rs`.

pub mod amx;
pub mod attn_amx;
pub mod avx2;
pub mod bf16;
pub mod cpu;
pub mod f32pack;
pub mod layer;
pub mod linear;
pub mod ops;
pub mod par;

use super::bert::Bert;
use super::branch::Branch;
use anyhow::{bail, ensure, Context, Result};
use layer::{to_vec, FastLayer, Norm, Scratch};
pub use linear::Precision;
use parking_lot::Mutex;

pub struct FastEncoder {
    pub precision: Precision,
    hidden: usize,
    vocab: usize,
    max_tokens: usize,
    pos: Vec<f32>,
    type0: Vec<f32>,
    emb_ln: Norm,
    layers: Vec<FastLayer>,
    /// Fine-tuned branches: (first replaced layer, its layers); branch `i` is `branches[i - 1]`.
    branches: Vec<(usize, Vec<FastLayer>)>,
    scratch: Mutex<Bufs>,
}

#[derive(Default)]
struct Bufs {
    layer: Scratch,
    trunk: Vec<f32>,
    x: Vec<f32>,
}

impl FastEncoder {
    pub fn new(model: &Bert, precision: Precision) -> Result<Self> {
        let cfg = &model.config;
        let (_, pos, type0, emb_ln, offset) = model.embedding_parts();
        let heads = cfg.num_attention_heads;
        let layers = model
            .layers()
            .iter()
            .map(|l| FastLayer::from_layer(l, heads, precision))
            .collect::<Result<Vec<_>>>()?;
        let pos = to_vec(&pos.narrow(0, offset, cfg.max_tokens())?)?;
        Ok(FastEncoder {
            precision,
            hidden: cfg.hidden_size,
            vocab: cfg.vocab_size,
            max_tokens: cfg.max_tokens(),
            pos,
            type0: to_vec(type0)?,
            emb_ln: Norm {
                w: to_vec(emb_ln.weight())?,
                b: to_vec(emb_ln.bias().context("embedding layer norm without bias")?)?,
                eps: cfg.layer_norm_eps as f32,
            },
            layers,
            branches: Vec::new(),
            scratch: Mutex::new(Bufs::default()),
        })
    }

    /// Add a fine-tuned branch (same numbering as `Embedder::add_branch`).
    pub fn add_branch(&mut self, b: &Branch, heads: usize) -> Result<()> {
        let layers = b
            .layers
            .iter()
            .map(|l| FastLayer::from_layer(l, heads, self.precision))
            .collect::<Result<Vec<_>>>()?;
        self.branches.push((b.first, layers));
        Ok(())
    }

    fn first_of(&self, b: usize) -> Result<usize> {
        match b {
            0 => Ok(self.layers.len()),
            i => Ok(self
                .branches
                .get(i - 1)
                .with_context(|| format!("no branch {i}"))?
                .0),
        }
    }

    /// Token rows `[t, h]` after the embedding layer norm, and each sequence's (start, len).
    fn embed_tokens(
        &self,
        model: &Bert,
        batch: &[&[u32]],
        x: &mut Vec<f32>,
    ) -> Result<Vec<(usize, usize)>> {
        let h = self.hidden;
        let mut seqs = Vec::with_capacity(batch.len());
        let mut t = 0;
        for s in batch {
            ensure!(!s.is_empty(), "empty token sequence");
            if s.len() > self.max_tokens {
                bail!(
                    "sequence of {} tokens is over the model's {}",
                    s.len(),
                    self.max_tokens
                );
            }
            seqs.push((t, s.len()));
            t += s.len();
        }
        x.clear();
        x.resize(t * h, 0.0);
        let word = model.embedding_parts().0;
        let (storage, layout) = word.storage_and_layout();
        let table = match &*storage {
            candle_core::Storage::Cpu(cpu) => cpu.as_slice::<f32>()?,
            _ => bail!("the fast encoder runs on the CPU only"),
        };
        ensure!(layout.is_contiguous(), "word embeddings are not contiguous");
        let table = &table[layout.start_offset()..];
        let mut row = 0;
        for s in batch {
            for (i, &id) in s.iter().enumerate() {
                let id = id as usize;
                ensure!(id < self.vocab, "token id {id} is outside the vocabulary");
                let dst = &mut x[row * h..(row + 1) * h];
                let (w, p) = (&table[id * h..(id + 1) * h], &self.pos[i * h..(i + 1) * h]);
                for j in 0..h {
                    dst[j] = w[j] + p[j] + self.type0[j];
                }
                row += 1;
            }
        }
        self.emb_ln.apply(x);
        Ok(seqs)
    }

    /// Per sequence, one unit embedding for each branch it wants (see `Backend::embed_branches`).
    pub fn embed_branches(
        &self,
        model: &Bert,
        batch: &[&[u32]],
        wants: &[&[usize]],
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        let mut out: Vec<Vec<Vec<f32>>> = wants.iter().map(|w| vec![Vec::new(); w.len()]).collect();
        let mut used: Vec<usize> = wants.iter().flat_map(|w| w.iter().copied()).collect();
        used.sort_unstable();
        used.dedup();
        if batch.is_empty() || used.is_empty() {
            return Ok(out);
        }
        let split = used
            .iter()
            .map(|&b| self.first_of(b))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .min()
            .unwrap_or(self.layers.len());
        let mut guard = self.scratch.lock();
        let bufs = &mut *guard;
        let seqs = self.embed_tokens(model, batch, &mut bufs.trunk)?;
        for l in &self.layers[..split] {
            l.forward(&mut bufs.trunk, &seqs, &mut bufs.layer);
        }
        let h = self.hidden;
        for &b in &used {
            let rows: Vec<usize> = (0..batch.len())
                .filter(|&r| wants[r].contains(&b))
                .collect();
            // The rows that want branch `b`, their tokens copied back to back.
            bufs.x.clear();
            let mut sub = Vec::with_capacity(rows.len());
            for &r in &rows {
                let (start, len) = seqs[r];
                sub.push((bufs.x.len() / h, len));
                bufs.x
                    .extend_from_slice(&bufs.trunk[start * h..(start + len) * h]);
            }
            let first = self.first_of(b)?;
            let own: &[FastLayer] = if b == 0 { &[] } else { &self.branches[b - 1].1 };
            for l in self.layers[split..first].iter().chain(own) {
                l.forward(&mut bufs.x, &sub, &mut bufs.layer);
            }
            for (&r, &(start, len)) in rows.iter().zip(&sub) {
                let v = mean_unit(&bufs.x[start * h..(start + len) * h], h);
                for (slot, &w) in out[r].iter_mut().zip(wants[r]) {
                    if w == b {
                        *slot = v.clone();
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Mean of `rows` (`h` wide), L2-normalised as the reference `pool` does.
fn mean_unit(rows: &[f32], h: usize) -> Vec<f32> {
    let n = (rows.len() / h).max(1);
    let mut v = vec![0f32; h];
    for row in rows.chunks_exact(h) {
        v.iter_mut().zip(row).for_each(|(a, b)| *a += b);
    }
    v.iter_mut().for_each(|a| *a /= n as f32);
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|a| *a /= norm);
    v
}
