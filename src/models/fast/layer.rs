//! One transformer layer of the fast encoder over unpadded token rows: fused QKV, attention per
//! sequence and head (no padding, no mask), residual + layer norm, erf-GELU feed-forward.

use super::linear::{Linear, Out, Precision};
use super::ops;
use crate::models::bert::Layer;
use anyhow::{Context, Result};
use candle_core::Tensor;
use rayon::prelude::*;
use std::collections::HashMap;

/// Reusable buffers, so steady-state batches allocate (and page-fault) nothing.
#[derive(Default)]
pub struct Scratch {
    pub qkv: Vec<f32>,
    pub ctx: Vec<f32>,
    pub mid: Vec<f32>,
    pub abf: Vec<u32>,
}

pub struct Norm {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub eps: f32,
}

impl Norm {
    pub fn apply(&self, x: &mut [f32]) {
        let h = self.w.len();
        ops::par_rows(x, h, |rows| {
            ops::layer_norm_rows(rows, &self.w, &self.b, self.eps)
        });
    }
}

pub struct FastLayer {
    qkv: Linear,
    attn_out: Linear,
    ln1: Norm,
    ff_in: Linear,
    ff_out: Linear,
    ln2: Norm,
    tanh_gelu: bool,
    heads: usize,
}

pub fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

impl FastLayer {
    /// Copy (and for bf16, pack) a loaded candle layer's weights.
    pub(crate) fn from_layer(l: &Layer, heads: usize, p: Precision) -> Result<Self> {
        let named: HashMap<String, Tensor> = l.tensors("l").into_iter().collect();
        let get = |n: &str| -> Result<Vec<f32>> {
            to_vec(
                named
                    .get(&format!("l.{n}"))
                    .with_context(|| format!("layer tensor {n}"))?,
            )
        };
        let lin = |n: &str| -> Result<Linear> {
            let w = named
                .get(&format!("l.{n}.weight"))
                .with_context(|| format!("layer tensor {n}"))?;
            let (rows, cols) = w.dims2()?;
            Linear::new(to_vec(w)?, get(&format!("{n}.bias"))?, rows, cols, p)
        };
        let (tanh_gelu, eps) = l.act_eps();
        let norm = |n: &str| -> Result<Norm> {
            Ok(Norm {
                w: get(&format!("{n}.weight"))?,
                b: get(&format!("{n}.bias"))?,
                eps: eps as f32,
            })
        };
        Ok(FastLayer {
            qkv: lin("attention.self.qkv")?,
            attn_out: lin("attention.output.dense")?,
            ln1: norm("attention.output.LayerNorm")?,
            ff_in: lin("intermediate.dense")?,
            ff_out: lin("output.dense")?,
            ln2: norm("output.LayerNorm")?,
            tanh_gelu,
            heads,
        })
    }

    /// `x`: `[t, h]` rows of all sequences back to back; `seqs`: (first row, length) of each.
    pub fn forward(&self, x: &mut [f32], seqs: &[(usize, usize)], s: &mut Scratch) {
        let h = self.attn_out.n;
        let t = x.len() / h;
        grow(&mut s.qkv, t * 3 * h);
        grow(&mut s.ctx, t * h);
        grow(&mut s.mid, t * self.ff_in.n);
        self.qkv.forward(x, t, &mut s.qkv, Out::Plain, &mut s.abf);
        attention(
            &s.qkv[..t * 3 * h],
            seqs,
            h,
            self.heads,
            &mut s.ctx[..t * h],
        );
        self.attn_out.forward(&s.ctx, t, x, Out::AddTo, &mut s.abf);
        self.ln1.apply(x);
        let gelu = Out::Gelu(self.tanh_gelu);
        self.ff_in.forward(x, t, &mut s.mid, gelu, &mut s.abf);
        self.ff_out.forward(&s.mid, t, x, Out::AddTo, &mut s.abf);
        self.ln2.apply(x);
    }
}

fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

struct SendPtr(*mut f32);
// SAFETY: each (sequence, head) job writes only its own rows x head columns of `ctx`.
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// softmax(Q Kᵀ / √d) V for every sequence and head; `qkv` rows are `[q | k | v]`.
fn attention(qkv: &[f32], seqs: &[(usize, usize)], h: usize, heads: usize, ctx: &mut [f32]) {
    let hd = h / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let ld = 3 * h;
    let out = SendPtr(ctx.as_mut_ptr());
    let job = |scores: &mut Vec<f32>, (start, len): (usize, usize), head: usize| {
        let out = &out;
        scores.clear();
        scores.resize(len * len, 0.0);
        let base = start * ld + head * hd;
        // SAFETY: q/k/v of rows start..start+len lie inside `qkv` ([t, 3h]); `scores` is
        // [len, len]; the output block (rows start.., columns head*hd..+hd) lies inside `ctx`
        // and no other job writes it.
        unsafe {
            gemm::gemm(
                len,
                len,
                hd,
                scores.as_mut_ptr(),
                1,
                len as isize,
                false,
                qkv.as_ptr().add(base),
                1,
                ld as isize,
                qkv.as_ptr().add(base + h),
                ld as isize,
                1,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        for row in scores.chunks_exact_mut(len) {
            ops::softmax_row(row, scale);
        }
        unsafe {
            gemm::gemm(
                len,
                hd,
                len,
                out.0.add(start * h + head * hd),
                1,
                h as isize,
                false,
                scores.as_ptr(),
                1,
                len as isize,
                qkv.as_ptr().add(base + 2 * h),
                1,
                ld as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    };
    let jobs: Vec<((usize, usize), usize)> = seqs
        .iter()
        .flat_map(|&sq| (0..heads).map(move |hh| (sq, hh)))
        .collect();
    let work: usize = seqs.iter().map(|&(_, l)| l * l).sum::<usize>() * h;
    if work < 1 << 18 || rayon::current_num_threads() == 1 {
        let mut scores = Vec::new();
        for (sq, hh) in jobs {
            job(&mut scores, sq, hh);
        }
    } else {
        jobs.par_iter()
            .with_min_len(4)
            .for_each_init(Vec::new, |scores, &(sq, hh)| job(scores, sq, hh));
    }
}
