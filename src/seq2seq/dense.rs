//! Dense layers of the seq2seq models. On a CPU with AVX2+FMA in f32 they run on the fast
//! encoder's packed kernel (`models::fast::linear`: weights packed once at load, rows or panels
//! split between threads); candle's `Linear` repacks the transposed weight on every call, which
//! dominated decoding (the 65k-row LM head every step). Elsewhere (GPU, other dtypes): candle.

use crate::models::fast::{f32pack, linear, Precision};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Storage, Tensor};
use candle_nn::{Module, VarBuilder};

pub enum Dense {
    Candle(candle_nn::Linear),
    Packed(linear::Linear),
}

impl Dense {
    /// `y = x·Wᵀ + b` with `w` `[out, in]`.
    pub fn new(w: Tensor, b: Option<Tensor>) -> Result<Dense> {
        let cpu_f32 = matches!(w.device(), Device::Cpu) && w.dtype() == DType::F32;
        if !(cpu_f32 && f32pack::supported()) {
            return Ok(Dense::Candle(candle_nn::Linear::new(w, b)));
        }
        let (n, k) = w.dims2()?;
        let bias = match b {
            Some(b) => b.flatten_all()?.to_vec1::<f32>()?,
            None => vec![0.0; n],
        };
        let w = w.flatten_all()?.to_vec1::<f32>()?;
        Ok(Dense::Packed(linear::Linear::new(
            w,
            bias,
            n,
            k,
            Precision::F32,
        )?))
    }

    /// `name.weight` `[out, in]` (and `name.bias` with `bias`) from `vb`.
    pub fn load(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Dense> {
        let w = vb.get((out_dim, in_dim), "weight")?;
        let b = if bias {
            Some(vb.get(out_dim, "bias")?)
        } else {
            None
        };
        Dense::new(w, b)
    }

    /// `x` `(..., in)` -> `(..., out)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let lin = match self {
            Dense::Candle(l) => return Ok(l.forward(x)?),
            Dense::Packed(l) => l,
        };
        let mut dims = x.dims().to_vec();
        let Some(last) = dims.last_mut() else {
            bail!("dense layer on a scalar");
        };
        if *last != lin.k {
            bail!("dense layer of input {} on {:?}", lin.k, x.dims());
        }
        *last = lin.n;
        let m = x.elem_count() / lin.k;
        let x = x.contiguous()?;
        let mut y = vec![0f32; m * lin.n];
        {
            let (storage, layout) = x.storage_and_layout();
            let Storage::Cpu(cpu) = &*storage else {
                bail!("packed dense layer on a non-CPU tensor");
            };
            let from = layout.start_offset();
            let data = &cpu.as_slice::<f32>()?[from..from + m * lin.k];
            lin.forward(data, m, &mut y, linear::Out::Plain, &mut Vec::new());
        }
        Ok(Tensor::from_vec(y, dims, x.device())?)
    }
}
