//! Element-wise CPU kernels of the fast encoder: exp, erf-GELU, softmax and layer norm written
//! so the compiler vectorises them (AVX-512 or AVX2 picked at run time), plus a row splitter.

use rayon::prelude::*;

/// e^x for x in [-87, 88] (clamped), relative error ~2e-7: Cephes-style range reduction and a
/// degree-6 polynomial, branch-free so loops over it vectorise.
#[inline(always)]
pub fn exp_f(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // n = round(x / ln 2) by the magic-number trick (no call to round()).
    let magic = 12_582_912.0f32; // 1.5 * 2^23
    let n = (x * std::f32::consts::LOG2_E + magic) - magic;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.987_569_1e-4f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 0.166_666_66;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    let bits = ((n as i32) + 127) << 23;
    e * f32::from_bits(bits as u32)
}

/// erf(x), absolute error < 2e-7 (Abramowitz & Stegun 7.1.26 with a refined exp).
#[inline(always)]
pub fn erf_f(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let y = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let r = 1.0 - y * exp_f(-a * a);
    r.copysign(x)
}

#[inline(always)]
fn gelu_erf_one(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_f(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline(always)]
fn gelu_tanh_one(x: f32) -> f32 {
    // tanh(u) = 1 - 2 / (e^{2u} + 1)
    let u = 0.797_884_6 * (x + 0.044_715 * x * x * x);
    let th = 1.0 - 2.0 / (exp_f(2.0 * u) + 1.0);
    0.5 * x * (1.0 + th)
}

macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$m])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,fma")]
                unsafe fn v512($($arg: $ty),*) $body
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v256($($arg: $ty),*) $body
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features the function was compiled for.
                    return unsafe { v512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { v256($($arg),*) };
                }
            }
            $body
        }
    };
}

/// GELU in place without dispatch: for callers already compiled for a vector extension.
#[inline(always)]
pub fn gelu_rows_inline(xs: &mut [f32], tanh: bool) {
    if tanh {
        for x in xs.iter_mut() {
            *x = gelu_tanh_one(*x);
        }
    } else {
        for x in xs.iter_mut() {
            *x = gelu_erf_one(*x);
        }
    }
}

multiversion! {
    /// GELU in place (erf form when `tanh` is false, the tanh approximation otherwise).
    fn gelu_rows(xs: &mut [f32], tanh: bool) {
        gelu_rows_inline(xs, tanh)
    }
}

multiversion! {
    /// Softmax of one row in place, after multiplying it by `scale`.
    fn softmax_row(row: &mut [f32], scale: f32) {
        let mut max = f32::NEG_INFINITY;
        for &v in row.iter() {
            max = max.max(v);
        }
        let mut acc = [0f32; 16];
        let mut chunks = row.chunks_exact_mut(16);
        for c in &mut chunks {
            for (a, v) in acc.iter_mut().zip(c.iter_mut()) {
                *v = exp_f((*v - max) * scale);
                *a += *v;
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for v in chunks.into_remainder() {
            *v = exp_f((*v - max) * scale);
            sum += *v;
        }
        let inv = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

#[inline(always)]
fn sum16(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let mut chunks = xs.chunks_exact(16);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += f(*v);
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().map(|v| f(*v)).sum::<f32>()
}

multiversion! {
    /// Layer norm of each `w.len()`-wide row of `xs` in place.
    fn layer_norm_rows(xs: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
        let h = w.len();
        for row in xs.chunks_exact_mut(h) {
            let mean = sum16(row, |v| v) / h as f32;
            let var = sum16(row, |v| (v - mean) * (v - mean)) / h as f32;
            let rstd = 1.0 / (var + eps).sqrt();
            for ((v, g), c) in row.iter_mut().zip(w).zip(b) {
                *v = (*v - mean) * rstd * g + c;
            }
        }
    }
}

/// Run `f` over `rows`-wide chunks of `xs` (whole rows), in parallel when there is enough work.
pub fn par_rows(xs: &mut [f32], row: usize, f: impl Fn(&mut [f32]) + Sync + Send) {
    let rows = xs.len() / row.max(1);
    let threads = rayon::current_num_threads().max(1);
    if rows < 8 || threads == 1 || xs.len() < 16 * 1024 {
        f(xs);
        return;
    }
    let per = rows.div_ceil(threads * 2).max(1);
    xs.par_chunks_mut(per * row).for_each(f);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erf_ref(x: f64) -> f64 {
        // Series for small |x|, continued fraction tail not needed in [-4, 4] at this precision.
        let mut sum = x;
        let mut term = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_and_erf_are_accurate() {
        for i in -800..=800 {
            let x = i as f32 / 10.0;
            let rel = ((exp_f(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            assert!(rel < 5e-7, "exp({x}): rel err {rel}");
        }
        for i in -400..=400 {
            let x = i as f64 / 100.0;
            let err = (erf_f(x as f32) as f64 - erf_ref(x)).abs();
            assert!(err < 5e-7, "erf({x}): err {err}");
        }
    }

    #[test]
    fn softmax_and_layer_norm_match_plain_formulas() {
        let mut row: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
        let orig = row.clone();
        softmax_row(&mut row, 0.5);
        let m = orig.iter().cloned().fold(f32::MIN, f32::max);
        let z: f32 = orig.iter().map(|v| ((v - m) * 0.5).exp()).sum();
        for (a, v) in row.iter().zip(&orig) {
            assert!((a - ((v - m) * 0.5).exp() / z).abs() < 1e-6);
        }
        let h = 40;
        let mut xs: Vec<f32> = (0..2 * h)
            .map(|i| (i as f32 * 0.11).cos() * 3.0 + 1.0)
            .collect();
        let (w, b): (Vec<f32>, Vec<f32>) = (0..h)
            .map(|i| (1.0 + i as f32 * 0.01, i as f32 * 0.1))
            .unzip();
        let orig = xs.clone();
        layer_norm_rows(&mut xs, &w, &b, 1e-12);
        for r in 0..2 {
            let row = &orig[r * h..(r + 1) * h];
            let mean = row.iter().sum::<f32>() / h as f32;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / h as f32;
            for i in 0..h {
                let want = (row[i] - mean) / var.sqrt() * w[i] + b[i];
                assert!((xs[r * h + i] - want).abs() < 1e-4);
            }
        }
        let mut g = vec![-3.0f32, -1.0, 0.0, 0.5, 2.0];
        gelu_rows(&mut g, false);
        let want = [-0.004_049_7f32, -0.158_655_26, 0.0, 0.345_731_1, 1.954_5];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
