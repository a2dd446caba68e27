//! One transformer layer of the fast encoder over unpadded token rows: fused QKV, attention per
//! sequence and head (no padding, no mask), residual + layer norm, erf-GELU feed-forward.

use super::linear::{Linear, Out, Precision};
use super::ops;
use super::par::SendPtr;
use super::{attn_amx, avx2, f32pack};
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
    /// Attention on AMX tiles in bf16 (`attn_amx`): the bf16 precision where the CPU has AMX.
    amx_attn: bool,
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
        let qkv = lin("attention.self.qkv")?;
        let amx_attn = p == Precision::Bf16 && attn_amx::supported(qkv.n / 3 / heads);
        let norm = |n: &str| -> Result<Norm> {
            Ok(Norm {
                w: get(&format!("{n}.weight"))?,
                b: get(&format!("{n}.bias"))?,
                eps: eps as f32,
            })
        };
        Ok(FastLayer {
            qkv,
            attn_out: lin("attention.output.dense")?,
            ln1: norm("attention.output.LayerNorm")?,
            ff_in: lin("intermediate.dense")?,
            ff_out: lin("output.dense")?,
            ln2: norm("output.LayerNorm")?,
            tanh_gelu,
            heads,
            amx_attn,
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
        // Batches of short texts only keep the f32 attention: there the tile set-up and the
        // padding to 32 keys cost more than they save (bench b*_len16 measured ~10-20% slower).
        let long = seqs.iter().any(|&(_, l)| l >= AMX_ATTN_MIN_LEN);
        let attend = if self.amx_attn && long {
            attn_amx::attention
        } else {
            attention
        };
        attend(
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

/// The longest sequence of a batch from which the bf16 precision attends on AMX tiles.
const AMX_ATTN_MIN_LEN: usize = 64;

fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// softmax(Q Kᵀ / √d) V for every sequence and head; `qkv` rows are `[q | k | v]`.
fn attention(qkv: &[f32], seqs: &[(usize, usize)], h: usize, heads: usize, ctx: &mut [f32]) {
    let hd = h / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let ld = 3 * h;
    let out = SendPtr(ctx.as_mut_ptr());
    let packed = f32pack::supported();
    let job = |b: &mut AttnBufs, (start, len): (usize, usize), head: usize| {
        let out = &out;
        // Score rows padded to whole kernel panels for the packed kernel, so every store is a
        // full one (the padding columns hold 0s from the zero key columns and are not read).
        let ls = if packed {
            len.next_multiple_of(f32pack::NR)
        } else {
            len
        };
        // Every score is written below (the packed product fills whole panels), so the buffer
        // only grows, without clearing.
        if b.scores.len() < len * ls {
            b.scores.resize(len * ls, 0.0);
        }
        let base = start * ld + head * hd;
        // SAFETY (both branches): q/k/v of rows start..start+len lie inside `qkv` ([t, 3h]);
        // `scores` is [len, ls]; the output block (rows start.., columns head*hd..+hd) lies
        // inside `ctx` and no other job touches it.
        if packed {
            // Keys as the columns of Kᵀ, values as they are, in the kernel's panels.
            f32pack::pack_panels(&qkv[base + h..], ld, hd, len, true, &mut b.keys);
            f32pack::pack_panels(&qkv[base + 2 * h..], ld, len, hd, false, &mut b.values);
            unsafe {
                f32pack::panel_product(
                    &qkv[base..],
                    ld,
                    len,
                    hd,
                    &b.keys,
                    ls,
                    b.scores.as_mut_ptr(),
                    ls,
                );
            }
        } else {
            unsafe {
                gemm::gemm(
                    len,
                    len,
                    hd,
                    b.scores.as_mut_ptr(),
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
        }
        let dst = out.0.wrapping_add(start * h + head * hd);
        if packed {
            // Unnormalised softmax, then the product with V, then each output row times its
            // 1 / sum (hd values per row instead of len).
            b.inv.resize(len, 0.0);
            // SAFETY: the packed path runs only where AVX2+FMA are present; `scores` rows are
            // `ls` wide, `len` rounded up to 16.
            unsafe {
                avx2::softmax_numerators(&mut b.scores, ls, len, scale, &mut b.inv);
                f32pack::panel_product(&b.scores, ls, len, len, &b.values, hd, dst, h);
                for (r, &iv) in b.inv.iter().enumerate() {
                    for v in std::slice::from_raw_parts_mut(dst.add(r * h), hd) {
                        *v *= iv;
                    }
                }
            }
        } else {
            ops::softmax_rows(&mut b.scores[..len * ls], ls, len, scale);
            unsafe {
                gemm::gemm(
                    len,
                    hd,
                    len,
                    dst,
                    1,
                    h as isize,
                    false,
                    b.scores.as_ptr(),
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
        }
    };
    let jobs: Vec<((usize, usize), usize)> = seqs
        .iter()
        .flat_map(|&sq| (0..heads).map(move |hh| (sq, hh)))
        .collect();
    let work: usize = seqs.iter().map(|&(_, l)| l * l).sum::<usize>() * h;
    // Each thread keeps its buffers across jobs and batches (no allocation, no page faults).
    let run = |&(sq, hh): &((usize, usize), usize)| {
        ATTN_BUFS.with(|b| job(&mut b.borrow_mut(), sq, hh));
    };
    if work < 1 << 18 || rayon::current_num_threads() == 1 {
        jobs.iter().for_each(run);
    } else {
        jobs.par_iter().with_min_len(4).for_each(run);
    }
}

thread_local! {
    static ATTN_BUFS: std::cell::RefCell<AttnBufs> = std::cell::RefCell::new(AttnBufs::default());
}

/// One attention job's working memory: scores and, for the packed kernel, K and V as panels.
#[derive(Default)]
struct AttnBufs {
    scores: Vec<f32>,
    keys: Vec<f32>,
    values: Vec<f32>,
    /// 1 / softmax sum of each score row (packed path).
    inv: Vec<f32>,
}
