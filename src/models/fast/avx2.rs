//! AVX2+FMA element-wise kernels of the packed f32 path: exp, reciprocal and GELU on 8 lanes (the
//! matmul epilogue's GELU), and the attention softmax. Same formulas as `ops`, written with
//! intrinsics so they run as straight vector code inside the kernels.

#[cfg(target_arch = "x86_64")]
pub use x86::*;

/// Elsewhere the packed path is never chosen (`f32pack::supported`); this keeps the same contract
/// with the portable softmax (rows normalised, every `inv` 1).
///
/// # Safety
/// None needed; `unsafe` to match the x86 signature.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn softmax_numerators(
    rows: &mut [f32],
    ld: usize,
    len: usize,
    scale: f32,
    inv: &mut [f32],
) {
    super::ops::softmax_rows(&mut rows[..inv.len() * ld], ld, len, scale);
    inv.fill(1.0);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `ops::exp_f` on 8 lanes (the same reduction and polynomial).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn exp8(x: __m256) -> __m256 {
        let x = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(-87.0)),
            _mm256_set1_ps(88.0),
        );
        let magic = _mm256_set1_ps(12_582_912.0);
        let t = _mm256_fmadd_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E), magic);
        let n = _mm256_sub_ps(t, magic);
        let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693_145_75), x);
        let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-1.428_606_8e-6), r);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            0.166_666_66,
            0.5,
        ] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let e = _mm256_add_ps(
            _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r),
            _mm256_set1_ps(1.0),
        );
        let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_castps_si256(t),
            _mm256_set1_epi32(127 - 0x4B40_0000),
        ));
        _mm256_mul_ps(e, _mm256_castsi256_ps(bits))
    }

    /// 1 / d for d >= 1: the approximate reciprocal and one Newton step (~1e-7 relative).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn recip8(d: __m256) -> __m256 {
        let t = _mm256_rcp_ps(d);
        _mm256_mul_ps(t, _mm256_fnmadd_ps(d, t, _mm256_set1_ps(2.0)))
    }

    /// `ops::gelu_rows` on 8 lanes: erf form (`ops::erf_f`'s formula) or the tanh approximation.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gelu8(x: __m256, tanh: bool) -> __m256 {
        if tanh {
            // 0.5 (1 + tanh u) = sigmoid(2u), from e = e^{-2|u|} (no cancellation for any x):
            // 1 / (1 + e) for u >= 0, e / (1 + e) below; GELU = x sigmoid(2u).
            let x2 = _mm256_mul_ps(_mm256_mul_ps(x, x), _mm256_set1_ps(0.044_715));
            let u = _mm256_mul_ps(_mm256_fmadd_ps(x2, x, x), _mm256_set1_ps(0.797_884_6));
            let a = _mm256_andnot_ps(_mm256_set1_ps(-0.0), u);
            let e = exp8(_mm256_mul_ps(a, _mm256_set1_ps(-2.0)));
            let q = recip8(_mm256_add_ps(e, _mm256_set1_ps(1.0)));
            let s = _mm256_blendv_ps(q, _mm256_mul_ps(e, q), u);
            _mm256_mul_ps(x, s)
        } else {
            // 0.5 x (1 + erf(x / sqrt 2))
            let h = _mm256_mul_ps(x, _mm256_set1_ps(0.5));
            let z = _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
            let sign = _mm256_set1_ps(-0.0);
            let a = _mm256_andnot_ps(sign, z);
            let t = recip8(_mm256_fmadd_ps(
                a,
                _mm256_set1_ps(0.327_591_1),
                _mm256_set1_ps(1.0),
            ));
            let mut p =
                _mm256_fmadd_ps(t, _mm256_set1_ps(1.061_405_4), _mm256_set1_ps(-1.453_152_1));
            for c in [1.421_413_7, -0.284_496_74, 0.254_829_6] {
                p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c));
            }
            let y = _mm256_mul_ps(t, p);
            let ex = exp8(_mm256_mul_ps(_mm256_xor_ps(a, sign), a));
            let r = _mm256_fnmadd_ps(y, ex, _mm256_set1_ps(1.0));
            let erf = _mm256_or_ps(_mm256_andnot_ps(sign, r), _mm256_and_ps(sign, z));
            _mm256_fmadd_ps(h, erf, h)
        }
    }

    /// Softmax numerators of each `len`-wide row of `rows` (row stride `ld`, at least `len` rounded up
    /// to 8: the lanes past `len` are overwritten): `exp(scale * (v - max))` in place, and the row's
    /// `1 / sum` in `inv`, so the caller scales the (narrower) product with the values instead of
    /// the row. For the packed attention path.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA (`f32pack::supported`).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn softmax_numerators(
        rows: &mut [f32],
        ld: usize,
        len: usize,
        scale: f32,
        inv: &mut [f32],
    ) {
        let chunks = len.div_ceil(8);
        assert!(len > 0 && ld >= chunks * 8 && rows.len() >= (inv.len() - 1) * ld + chunks * 8);
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        // Lanes of the last chunk that hold scores.
        let tail = _mm256_castsi256_ps(_mm256_cmpgt_epi32(
            _mm256_set1_epi32((len - (chunks - 1) * 8) as i32),
            lane,
        ));
        let ninf = _mm256_set1_ps(f32::NEG_INFINITY);
        let vscale = _mm256_set1_ps(scale);
        for (r, iv) in inv.iter_mut().enumerate() {
            let row = rows[r * ld..].as_mut_ptr();
            let mut m0 = ninf;
            let mut m1 = ninf;
            let mut c = 0;
            while c + 2 < chunks {
                m0 = _mm256_max_ps(m0, _mm256_loadu_ps(row.add(c * 8)));
                m1 = _mm256_max_ps(m1, _mm256_loadu_ps(row.add(c * 8 + 8)));
                c += 2;
            }
            while c + 1 < chunks {
                m0 = _mm256_max_ps(m0, _mm256_loadu_ps(row.add(c * 8)));
                c += 1;
            }
            let last = _mm256_blendv_ps(ninf, _mm256_loadu_ps(row.add(c * 8)), tail);
            let m = hmax(_mm256_max_ps(_mm256_max_ps(m0, m1), last));
            let shift = _mm256_set1_ps(-m * scale);
            let mut s0 = _mm256_setzero_ps();
            let mut s1 = _mm256_setzero_ps();
            let mut c = 0;
            while c + 2 < chunks {
                let e0 = exp8(_mm256_fmadd_ps(
                    _mm256_loadu_ps(row.add(c * 8)),
                    vscale,
                    shift,
                ));
                let e1 = exp8(_mm256_fmadd_ps(
                    _mm256_loadu_ps(row.add(c * 8 + 8)),
                    vscale,
                    shift,
                ));
                _mm256_storeu_ps(row.add(c * 8), e0);
                _mm256_storeu_ps(row.add(c * 8 + 8), e1);
                s0 = _mm256_add_ps(s0, e0);
                s1 = _mm256_add_ps(s1, e1);
                c += 2;
            }
            while c < chunks {
                let e = exp8(_mm256_fmadd_ps(
                    _mm256_loadu_ps(row.add(c * 8)),
                    vscale,
                    shift,
                ));
                // Lanes past `len` become 0, so they add nothing here and to the product after.
                let e = if c + 1 == chunks {
                    _mm256_and_ps(e, tail)
                } else {
                    e
                };
                _mm256_storeu_ps(row.add(c * 8), e);
                s0 = _mm256_add_ps(s0, e);
                c += 1;
            }
            *iv = 1.0 / hsum(_mm256_add_ps(s0, s1));
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hmax(v: __m256) -> f32 {
        let h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        let h = _mm_max_ss(h, _mm_shuffle_ps::<1>(h, h));
        _mm_cvtss_f32(h)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        let h = _mm_add_ss(h, _mm_shuffle_ps::<1>(h, h));
        _mm_cvtss_f32(h)
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::arch::x86_64::*;

    fn avx2() -> bool {
        let ok = super::super::f32pack::supported();
        if !ok {
            eprintln!("skipped: this CPU has no AVX2+FMA");
        }
        ok
    }

    #[test]
    fn gelu_matches_the_portable_kernel() {
        if !avx2() {
            return;
        }
        let xs: Vec<f32> = (-4000..4000)
            .map(|i| i as f32 / 400.0)
            .chain([-100.0, -30.0, -9.5, 0.0, -0.0, 1e-20, 9.5, 30.0, 100.0])
            .collect();
        for tanh in [false, true] {
            let mut want = xs.clone();
            crate::models::fast::ops::gelu_rows(&mut want, tanh);
            for (chunk, w) in xs.chunks(8).zip(want.chunks(8)) {
                let mut lanes = [0f32; 8];
                lanes[..chunk.len()].copy_from_slice(chunk);
                let mut got = [0f32; 8];
                // SAFETY: AVX2+FMA checked above.
                unsafe {
                    let v = gelu8(_mm256_loadu_ps(lanes.as_ptr()), tanh);
                    _mm256_storeu_ps(got.as_mut_ptr(), v);
                }
                for (i, (&g, &w)) in got.iter().zip(w).enumerate() {
                    assert!(
                        (g - w).abs() <= 2e-6 * w.abs().max(1.0) && g.is_finite(),
                        "gelu(tanh {tanh}) of {}: {g} vs {w}",
                        chunk[i]
                    );
                }
            }
        }
    }

    #[test]
    fn softmax_numerators_times_inverse_is_softmax() {
        if !avx2() {
            return;
        }
        for len in [1usize, 5, 8, 9, 16, 17, 40, 129] {
            let ld = len.next_multiple_of(16);
            let rows = 3;
            let mut m: Vec<f32> = (0..rows * ld)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let orig = m.clone();
            let mut inv = vec![0f32; rows];
            // SAFETY: AVX2+FMA checked above; rows are `ld` >= len rounded to 8 wide.
            unsafe { softmax_numerators(&mut m, ld, len, 0.5, &mut inv) };
            for r in 0..rows {
                let row = &orig[r * ld..r * ld + len];
                let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f64> = row.iter().map(|&v| ((v - mx) as f64 * 0.5).exp()).collect();
                let sum: f64 = e.iter().sum();
                for j in 0..len {
                    let got = (m[r * ld + j] * inv[r]) as f64;
                    assert!((got - e[j] / sum).abs() < 1e-6, "len {len} row {r} col {j}");
                }
                for j in len..len.next_multiple_of(8) {
                    assert_eq!(m[r * ld + j], 0.0, "len {len}: lane {j} past the row");
                }
            }
        }
    }
}
