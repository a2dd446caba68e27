//! A dense layer of the fast encoder: weights prepared once (packed f32 on AVX2 CPUs, f32 for
//! `gemm` elsewhere, or packed bf16), bias, residual and GELU folded into the multiply's output pass.

use super::bf16::{convert_rows, PackedBf16};
use super::f32pack::PackedF32;
use super::ops;
use crate::models::config::PrecisionSetting;
use anyhow::{ensure, Result};

/// Arithmetic of the fast encoder's matrix multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// f32 everywhere: matches the reference to float rounding.
    F32,
    /// Weights and activations rounded to bf16, f32 accumulation (AVX-512 BF16 CPUs).
    Bf16,
}

impl Precision {
    /// `f32`, `bf16`, or `auto` (bf16 where the CPU has AVX-512 BF16, else f32).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "f32" => Self::resolve(PrecisionSetting::F32),
            "bf16" => Self::resolve(PrecisionSetting::Bf16),
            "auto" => Self::resolve(PrecisionSetting::Auto),
            other => anyhow::bail!("unknown precision `{other}`: expected auto, f32 or bf16"),
        }
    }

    /// The precision `server.precision` asks for on this CPU (`bf16` without AVX-512 BF16: error).
    pub fn resolve(setting: PrecisionSetting) -> Result<Self> {
        match setting {
            PrecisionSetting::F32 => Ok(Precision::F32),
            PrecisionSetting::Bf16 => {
                ensure!(
                    super::bf16::supported(),
                    "precision `bf16` needs a CPU with AVX-512 BF16; use `f32` or `auto`"
                );
                Ok(Precision::Bf16)
            }
            PrecisionSetting::Auto => Ok(if super::bf16::supported() {
                Precision::Bf16
            } else {
                Precision::F32
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

enum Weights {
    /// Row-major `[n, k]`, as the checkpoint stores it (for `gemm`).
    F32(Vec<f32>),
    /// 16-column panels for the AVX2 kernel.
    F32Packed(PackedF32),
    Bf16(PackedBf16),
}

/// `y = x · Wᵀ + b` with `W` `[n, k]`.
pub struct Linear {
    pub n: usize,
    pub k: usize,
    bias: Vec<f32>,
    w: Weights,
}

/// What to do with the product before it is stored.
#[derive(Clone, Copy)]
pub enum Out {
    /// `y = x·Wᵀ + b`
    Plain,
    /// `y = gelu(x·Wᵀ + b)` (`true`: the tanh approximation).
    Gelu(bool),
    /// `y += x·Wᵀ + b` (the output buffer holds the residual).
    AddTo,
}

impl Linear {
    pub fn new(w: Vec<f32>, bias: Vec<f32>, n: usize, k: usize, p: Precision) -> Result<Self> {
        ensure!(
            w.len() == n * k && bias.len() == n,
            "linear: shape mismatch"
        );
        let w = match p {
            Precision::F32 if super::f32pack::supported() => {
                Weights::F32Packed(PackedF32::pack(&w, n, k))
            }
            Precision::F32 => Weights::F32(w),
            Precision::Bf16 => Weights::Bf16(PackedBf16::pack(&w, n, k)),
        };
        Ok(Linear { n, k, bias, w })
    }

    /// `x`: `[m, k]` row-major; `y`: `[m, n]` row-major. `scratch` holds bf16 activations.
    pub fn forward(&self, x: &[f32], m: usize, y: &mut [f32], out: Out, scratch: &mut Vec<u32>) {
        let (n, k) = (self.n, self.k);
        assert!(x.len() >= m * k && y.len() >= m * n);
        if m == 0 {
            return;
        }
        match &self.w {
            Weights::Bf16(p) => {
                convert_rows(x, m, k, k, p.pairs(), scratch);
                let gelu = match out {
                    Out::Gelu(t) => Some(t),
                    _ => None,
                };
                p.matmul(
                    scratch,
                    m,
                    y,
                    n,
                    &self.bias,
                    matches!(out, Out::AddTo),
                    gelu,
                );
            }
            Weights::F32Packed(p) => {
                let gelu = match out {
                    Out::Gelu(t) => Some(t),
                    _ => None,
                };
                p.matmul(x, k, m, y, n, &self.bias, matches!(out, Out::AddTo), gelu);
            }
            Weights::F32(w) => {
                let y = &mut y[..m * n];
                let bias = &self.bias;
                match out {
                    Out::AddTo => ops::par_rows(y, n, |rows| {
                        for row in rows.chunks_exact_mut(n) {
                            row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
                        }
                    }),
                    _ => ops::par_rows(y, n, |rows| {
                        for row in rows.chunks_exact_mut(n) {
                            row.copy_from_slice(bias);
                        }
                    }),
                }
                let threads = rayon::current_num_threads();
                let par = if threads > 1 && m * n * k >= 64 * 64 * 64 {
                    gemm::Parallelism::Rayon(threads)
                } else {
                    gemm::Parallelism::None
                };
                // SAFETY: dst is [m, n] row-major, lhs [m, k] row-major, rhs = Wᵀ read from the
                // [n, k] row-major W (row stride 1, column stride k); all in bounds (asserted).
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        y.as_mut_ptr(),
                        1,
                        n as isize,
                        true,
                        x.as_ptr(),
                        1,
                        k as isize,
                        w.as_ptr(),
                        k as isize,
                        1,
                        1.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        par,
                    );
                }
                if let Out::Gelu(t) = out {
                    ops::par_rows(y, n, |rows| ops::gelu_rows(rows, t));
                }
            }
        }
    }
}
