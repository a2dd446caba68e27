//! Element-wise CPU kernels of the fast encoder: exp, erf-GELU, softmax and layer norm written
//! so the compiler vectorises them (AVX-512 or AVX2 picked at run time), plus a row splitter.

use rayon::prelude::*;

// The polynomials use `mul_add`: one FMA instruction inside the FMA-enabled variants below (and
// on aarch64); elsewhere a libm call, correct but slow (x86 CPUs without AVX2 only).

/// e^x for x in [-87, 88] (clamped), relative error ~2e-7: Cephes-style range reduction and a
/// degree-6 polynomial, branch-free so loops over it vectorise.
#[inline(always)]
pub fn exp_f(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // n = round(x / ln 2) by the magic-number trick (no call to round()); the sum's low mantissa
    // bits hold n as an integer, read without a float-to-int conversion (which, saturating in
    // Rust, would not vectorise).
    let magic = 12_582_912.0f32; // 1.5 * 2^23
    let t = x.mul_add(std::f32::consts::LOG2_E, magic);
    let n = t - magic;
    let r = n.mul_add(-0.693_145_75, x);
    let r = n.mul_add(-1.428_606_8e-6, r);
    let p = 1.987_569_1e-4f32;
    let p = p.mul_add(r, 1.398_199_9e-3);
    let p = p.mul_add(r, 8.333_452e-3);
    let p = p.mul_add(r, 4.166_579_6e-2);
    let p = p.mul_add(r, 0.166_666_66);
    let p = p.mul_add(r, 0.5);
    let e = (p * r).mul_add(r, r) + 1.0;
    let bits = ((t.to_bits() as i32 - 0x4B40_0000) + 127) << 23;
    e * f32::from_bits(bits as u32)
}

/// erf(x), absolute error < 2e-7 (Abramowitz & Stegun 7.1.26 with a refined exp).
#[inline(always)]
pub fn erf_f(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / a.mul_add(0.327_591_1, 1.0);
    let p = t.mul_add(1.061_405_4, -1.453_152_1);
    let p = p.mul_add(t, 1.421_413_7);
    let p = p.mul_add(t, -0.284_496_74);
    let p = p.mul_add(t, 0.254_829_6);
    let y = t * p;
    let r = (-y).mul_add(exp_f(-a * a), 1.0);
    r.copysign(x)
}

#[inline(always)]
fn gelu_erf_one(x: f32) -> f32 {
    let h = 0.5 * x;
    h.mul_add(erf_f(x * std::f32::consts::FRAC_1_SQRT_2), h)
}

#[inline(always)]
fn gelu_tanh_one(x: f32) -> f32 {
    // tanh(u) = 1 - 2 / (e^{2u} + 1)
    let u = 0.797_884_6 * (0.044_715 * x * x).mul_add(x, x);
    let th = 1.0 - 2.0 / (exp_f(2.0 * u) + 1.0);
    let h = 0.5 * x;
    h.mul_add(th, h)
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
                let cpu = super::cpu::features();
                if cpu.avx512 {
                    // SAFETY: the CPU has the features the function was compiled for.
                    return unsafe { v512($($arg),*) };
                }
                if cpu.avx2_fma {
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
    /// Softmax in place of each `len`-wide row of `rows` (row stride `ld`), after multiplying
    /// by `scale` (> 0). Up to 8 rows go through each pass together (maxima, then exponentials
    /// and sums, then scaling), so the passes' dependency chains overlap across rows.
    fn softmax_rows(rows: &mut [f32], ld: usize, len: usize, scale: f32) {
        for block in rows.chunks_mut(8 * ld) {
            let n = block.len().div_ceil(ld);
            let mut shift = [0f32; 8];
            let mut maxes = [0f32; 8];
            for (r, (sh, mx)) in shift.iter_mut().zip(maxes.iter_mut()).enumerate().take(n) {
                let row = &block[r * ld..r * ld + len];
                // Maximum in 16 lanes (a compare-select, so it vectorises; NaN-free inputs),
                // the tail folded into the first lanes.
                let mut lanes = [f32::NEG_INFINITY; 16];
                let mut chunks = row.chunks_exact(16);
                for c in &mut chunks {
                    for (m, &v) in lanes.iter_mut().zip(c) {
                        *m = if v > *m { v } else { *m };
                    }
                }
                for (m, &v) in lanes.iter_mut().zip(chunks.remainder()) {
                    *m = if v > *m { v } else { *m };
                }
                *mx = reduce16(lanes, |a, b| if b > a { b } else { a });
                // exp(scale * (v - max)) as one FMA per element.
                *sh = -*mx * scale;
            }
            let mut inv = [0f32; 8];
            for (r, iv) in inv.iter_mut().enumerate().take(n) {
                let (sh, mx) = (shift[r], maxes[r]);
                let row = &mut block[r * ld..r * ld + len];
                let mut acc = [0f32; 16];
                let mut chunks = row.chunks_exact_mut(16);
                for c in &mut chunks {
                    for (a, v) in acc.iter_mut().zip(c.iter_mut()) {
                        *v = exp_f(v.mul_add(scale, sh));
                        *a += *v;
                    }
                }
                let rem = chunks.into_remainder();
                if !rem.is_empty() {
                    // The tail in a full 16-lane block, so it runs the vector code too.
                    let mut t = [mx; 16];
                    t[..rem.len()].copy_from_slice(rem);
                    for (i, (a, v)) in acc.iter_mut().zip(t.iter_mut()).enumerate() {
                        *v = exp_f(v.mul_add(scale, sh));
                        *a += if i < rem.len() { *v } else { 0.0 };
                    }
                    rem.copy_from_slice(&t[..rem.len()]);
                }
                *iv = 1.0 / reduce16(acc, |a, b| a + b);
            }
            for (r, &iv) in inv.iter().enumerate().take(n) {
                for v in block[r * ld..r * ld + len].iter_mut() {
                    *v *= iv;
                }
            }
        }
    }
}

/// Fold 16 lanes to one by halves (8, 4, 2, 1), so the steps vectorise.
#[inline(always)]
fn reduce16(mut l: [f32; 16], f: impl Fn(f32, f32) -> f32) -> f32 {
    for w in [8, 4, 2, 1] {
        for i in 0..w {
            l[i] = f(l[i], l[i + w]);
        }
    }
    l[0]
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
        // 11 rows (more than one block of 8) of 37 values at stride 48; the padding is untouched.
        let (len, ld) = (37, 48);
        let mut rows: Vec<f32> = (0..11 * ld)
            .map(|i| (i as f32 * 0.37).sin() * 5.0 + (i / ld) as f32)
            .collect();
        let orig = rows.clone();
        softmax_rows(&mut rows, ld, len, 0.5);
        for r in 0..11 {
            let (got, row) = (&rows[r * ld..(r + 1) * ld], &orig[r * ld..(r + 1) * ld]);
            let m = row[..len].iter().cloned().fold(f32::MIN, f32::max);
            let z: f32 = row[..len].iter().map(|v| ((v - m) * 0.5).exp()).sum();
            for (a, v) in got[..len].iter().zip(row) {
                assert!((a - ((v - m) * 0.5).exp() / z).abs() < 1e-6, "row {r}");
            }
            assert_eq!(got[len..], row[len..], "row {r}: padding written");
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
