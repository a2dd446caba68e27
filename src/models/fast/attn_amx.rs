//! Attention of the bf16 precision on AMX tiles: per sequence and head, S = Q·Kᵀ from bf16 Q and
//! K with f32 accumulation, a max-subtracted softmax in f32 (AVX-512), bf16 probabilities, and
//! O = P·V from bf16 V, scaled by 1 / the row sum on the way out. The f32 precision keeps
//! `layer::attention` (f32 throughout); so does bf16 where AMX is missing or off (`TRIAGE_AMX=0`).
//!
//! Padding: query rows are padded to 16, key columns to 32 (one tile panel). Padded keys are zero
//! in K and V, and their probability columns are written as 0 (not exp of a score), so they add
//! nothing to a row's sum or output; padded query rows are computed and never stored.

use super::amx;
use super::par::SendPtr;
use rayon::prelude::*;

/// Whether attention with head width `hd` runs here (AMX-BF16 usable, AVX-512 for the softmax,
/// `hd` whole 32-column panels, so Q/K rows are whole tile steps).
pub fn supported(hd: usize) -> bool {
    hd > 0
        && hd.is_multiple_of(32)
        && super::cpu::avx512()
        && super::bf16::supported()
        && amx::available()
}

/// softmax(Q Kᵀ / √d) V for every sequence and head, as `layer::attention` (same arguments);
/// `supported(h / heads)` must hold.
pub fn attention(qkv: &[f32], seqs: &[(usize, usize)], h: usize, heads: usize, ctx: &mut [f32]) {
    let hd = h / heads;
    assert!(
        supported(hd),
        "AMX attention needs AMX-BF16 and a head width of 32k"
    );
    let t: usize = seqs.iter().map(|&(_, l)| l).sum();
    assert!(qkv.len() >= t * 3 * h && ctx.len() >= t * h);
    assert!(seqs.iter().all(|&(s, l)| s + l <= t));
    let out = SendPtr(ctx.as_mut_ptr());
    let jobs: Vec<((usize, usize), usize)> = seqs
        .iter()
        .filter(|&&(_, l)| l > 0)
        .flat_map(|&sq| (0..heads).map(move |hh| (sq, hh)))
        .collect();
    let threads = rayon::current_num_threads();
    // A few chunks per thread, so uneven lengths still balance; tiles configured once per chunk.
    let chunk = jobs.len().div_ceil(threads * 4).max(1);
    let run = |part: &[((usize, usize), usize)]| {
        // SAFETY: `supported` (asserted) includes `amx::available()`.
        let _tiles = unsafe { amx::Tiles::new() };
        BUFS.with(|b| {
            let b = &mut b.borrow_mut();
            for &((start, len), head) in part {
                // SAFETY: the CPU has AVX-512 F/BF16 and AMX (asserted), this thread holds the
                // tile configuration; rows start..start+len lie inside `qkv` and `ctx`
                // (asserted above), and each job writes only its own head's columns of its
                // own rows of `ctx`.
                unsafe { x86::job(b, qkv, start, len, head, h, hd, &out) };
            }
        });
    };
    if threads == 1 || jobs.len() <= chunk {
        run(&jobs);
    } else {
        jobs.par_chunks(chunk).for_each(run);
    }
}

thread_local! {
    static BUFS: std::cell::RefCell<Bufs> = std::cell::RefCell::new(Bufs::default());
}

/// One thread's working memory, kept across jobs and batches.
#[derive(Default)]
struct Bufs {
    /// Q in bf16 pairs, `[lr, hd/2]`.
    q: Vec<u32>,
    /// Kᵀ as 32-key panels of bf16 pairs: panel `p`, pair `i`, key `j` at `(p * hd/2 + i) * 32 + j`.
    kt: Vec<u32>,
    /// V as 32-column panels of key pairs: panel `c`, key pair `i`, column `j` at
    /// `(c * ls/2 + i) * 32 + j`.
    v: Vec<u32>,
    /// Scores `[lr, ls]`.
    s: Vec<f32>,
    /// Unnormalised probabilities in bf16 pairs `[lr, ls/2]`.
    p: Vec<u32>,
    /// 1 / row sum.
    inv: Vec<f32>,
    out: Vec<f32>,
}

fn grow<T: Default + Clone>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n, T::default());
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{amx, grow, Bufs, SendPtr};
    use std::arch::x86_64::*;

    /// One (sequence, head): see the module comment.
    ///
    /// # Safety
    /// AVX-512 F/BF16 and AMX-BF16 present, the thread holds a tile configuration, `qkv` holds
    /// rows `start..start+len` (`3h` wide) and `out` rows `start..start+len` (`h` wide), of which
    /// this call writes columns `head*hd..(head+1)*hd` only.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn job(
        b: &mut Bufs,
        qkv: &[f32],
        start: usize,
        len: usize,
        head: usize,
        h: usize,
        hd: usize,
        out: &SendPtr,
    ) {
        let ld = 3 * h;
        let (lr, ls, hp) = (len.next_multiple_of(16), len.next_multiple_of(32), hd / 2);
        let lp = ls / 2;
        grow(&mut b.q, lr * hp);
        grow(&mut b.kt, ls * hp);
        grow(&mut b.v, lp * hd);
        grow(&mut b.s, lr * ls);
        grow(&mut b.p, lr * lp);
        grow(&mut b.inv, lr);
        grow(&mut b.out, 32 * 32);
        let base = qkv.as_ptr().add(start * ld + head * hd);
        let (q, kt, v) = (b.q.as_mut_ptr(), b.kt.as_mut_ptr(), b.v.as_mut_ptr());
        let zero = _mm512_setzero_si512();
        // Q rows, then zero rows up to lr.
        for r in 0..lr {
            for c in (0..hd).step_by(32) {
                let dst = q.add(r * hp + c / 2) as *mut __m512i;
                if r < len {
                    _mm512_storeu_si512(dst, pairs32(base.add(r * ld + c)));
                } else {
                    _mm512_storeu_si512(dst, zero);
                }
            }
        }
        // Kᵀ: each key's pairs go down its column of its panel; padded keys are 0.
        let mut row = [0u32; 16];
        for j in 0..ls {
            let (p, jj) = (j / 32, j % 32);
            for c in (0..hd).step_by(32) {
                let kv = if j < len {
                    pairs32(base.add(j * ld + h + c))
                } else {
                    zero
                };
                _mm512_storeu_si512(row.as_mut_ptr() as *mut __m512i, kv);
                for (i, &x) in row.iter().enumerate() {
                    *kt.add((p * hp + c / 2 + i) * 32 + jj) = x;
                }
            }
        }
        // V: key pairs (2i, 2i+1) of each column side by side; padded keys are 0.
        for i in 0..lp {
            let (k0, k1) = (2 * i, 2 * i + 1);
            for c in (0..hd).step_by(16) {
                let lo = if k0 < len {
                    widen(base.add(k0 * ld + 2 * h + c))
                } else {
                    zero
                };
                let hi = if k1 < len {
                    _mm512_slli_epi32::<16>(widen(base.add(k1 * ld + 2 * h + c)))
                } else {
                    zero
                };
                let dst = v.add(((c / 32) * lp + i) * 32 + c % 32) as *mut __m512i;
                _mm512_storeu_si512(dst, _mm512_or_si512(lo, hi));
            }
        }
        // S = Q·Kᵀ, 32 (or 16) query rows by 32 keys per tile call.
        let s = b.s.as_mut_ptr();
        let mut r0 = 0;
        while r0 < len {
            let block = if len - r0 > 16 { 32 } else { 16 };
            for p in 0..ls / 32 {
                amx::panel_ld(
                    block,
                    q.add(r0 * hp),
                    hp,
                    kt.add(p * hp * 32),
                    s.add(r0 * ls + p * 32),
                    ls,
                );
            }
            r0 += block;
        }
        // Softmax numerators in bf16, padded key columns and query rows 0.
        let scale = 1.0 / (hd as f32).sqrt();
        let pm = b.p.as_mut_ptr();
        for r in 0..lr {
            if r < len {
                b.inv[r] = softmax_row(s.add(r * ls), len, ls, scale, pm.add(r * lp));
            } else {
                for c in (0..lp).step_by(16) {
                    _mm512_storeu_si512(pm.add(r * lp + c) as *mut __m512i, zero);
                }
            }
        }
        // O = P·V per 32-column panel, each row times its 1 / sum into the output.
        let o = b.out.as_mut_ptr();
        let dst = out.0.add(start * h + head * hd);
        let mut r0 = 0;
        while r0 < len {
            let block = if len - r0 > 16 { 32 } else { 16 };
            for c in 0..hd / 32 {
                amx::panel_ld(block, pm.add(r0 * lp), lp, v.add(c * lp * 32), o, 32);
                for r in 0..block.min(len - r0) {
                    let iv = _mm512_set1_ps(b.inv[r0 + r]);
                    let d = dst.add((r0 + r) * h + c * 32);
                    _mm512_storeu_ps(d, _mm512_mul_ps(_mm512_loadu_ps(o.add(r * 32)), iv));
                    _mm512_storeu_ps(
                        d.add(16),
                        _mm512_mul_ps(_mm512_loadu_ps(o.add(r * 32 + 16)), iv),
                    );
                }
            }
            r0 += block;
        }
    }

    /// 32 floats at `src` as 16 bf16 pairs (rounded to nearest even), in order.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn pairs32(src: *const f32) -> __m512i {
        let lo = _mm512_loadu_ps(src);
        let hi = _mm512_loadu_ps(src.add(16));
        std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo))
    }

    /// 16 floats at `src` as bf16 bits in the low half of 16 u32 lanes.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn widen(src: *const f32) -> __m512i {
        let b = _mm512_cvtneps_pbh(_mm512_loadu_ps(src));
        _mm512_cvtepu16_epi32(std::mem::transmute::<__m256bh, __m256i>(b))
    }

    /// e^x for x <= 0 (clamped at -87), relative error ~2e-6 (far under bf16's 2^-9): 2^(x log2 e)
    /// as a degree-5 polynomial of the fraction, scaled by `vscalefps`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn exp16(x: __m512) -> __m512 {
        let t = _mm512_mul_ps(
            _mm512_max_ps(x, _mm512_set1_ps(-87.0)),
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t);
        let f = _mm512_sub_ps(t, n);
        let mut p = _mm512_set1_ps(1.333_355_8e-3);
        for c in [
            9.618_129e-3,
            5.550_411e-2,
            0.240_226_5,
            std::f32::consts::LN_2,
            1.0,
        ] {
            p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c));
        }
        _mm512_scalef_ps(p, n)
    }

    /// Lanes of the 16 columns from `c` that are below `len`.
    #[inline]
    fn mask(c: usize, len: usize) -> __mmask16 {
        match len.saturating_sub(c) {
            0 => 0,
            n if n >= 16 => 0xffff,
            n => (1u16 << n) - 1,
        }
    }

    /// exp(scale · (s - max)) of the first `len` of the `ls` scores at `s`, as bf16 pairs at `p`
    /// (columns `len..ls` 0); returns 1 / the sum of the rounded values.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn softmax_row(s: *const f32, len: usize, ls: usize, scale: f32, p: *mut u32) -> f32 {
        let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut m = ninf;
        for c in (0..len).step_by(16) {
            m = _mm512_max_ps(m, _mm512_mask_loadu_ps(ninf, mask(c, len), s.add(c)));
        }
        let vscale = _mm512_set1_ps(scale);
        let shift = _mm512_set1_ps(-_mm512_reduce_max_ps(m) * scale);
        let hi_half = _mm512_set1_epi32(0xffff_0000u32 as i32);
        let mut sum = _mm512_setzero_ps();
        for c in (0..ls).step_by(32) {
            let (m0, m1) = (mask(c, len), mask(c + 16, len));
            let e0 = _mm512_maskz_mov_ps(
                m0,
                exp16(_mm512_fmadd_ps(_mm512_loadu_ps(s.add(c)), vscale, shift)),
            );
            let e1 = _mm512_maskz_mov_ps(
                m1,
                exp16(_mm512_fmadd_ps(
                    _mm512_loadu_ps(s.add(c + 16)),
                    vscale,
                    shift,
                )),
            );
            let pr = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(e1, e0));
            _mm512_storeu_si512(p.add(c / 2) as *mut __m512i, pr);
            // The rounded values back in f32: low halves shifted up, high halves masked.
            let lo = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(pr));
            let hi = _mm512_castsi512_ps(_mm512_and_si512(pr, hi_half));
            sum = _mm512_add_ps(sum, _mm512_add_ps(lo, hi));
        }
        1.0 / _mm512_reduce_add_ps(sum)
    }
}

/// Off x86_64 `supported` is false, so `attention` never gets here.
#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    use super::{Bufs, SendPtr};

    #[allow(clippy::too_many_arguments)]
    pub unsafe fn job(
        _b: &mut Bufs,
        _qkv: &[f32],
        _start: usize,
        _len: usize,
        _head: usize,
        _h: usize,
        _hd: usize,
        _out: &SendPtr,
    ) {
        unreachable!("AMX attention is x86_64 only")
    }
}

#[cfg(test)]
mod tests {
    /// softmax(Q Kᵀ / √d) V in f64, one sequence and head.
    fn reference(
        qkv: &[f32],
        (start, len): (usize, usize),
        h: usize,
        hd: usize,
        head: usize,
    ) -> Vec<f64> {
        let at = |r: usize, part: usize, c: usize| {
            qkv[(start + r) * 3 * h + part * h + head * hd + c] as f64
        };
        let mut out = vec![0f64; len * hd];
        for i in 0..len {
            let s: Vec<f64> = (0..len)
                .map(|j| {
                    (0..hd).map(|c| at(i, 0, c) * at(j, 1, c)).sum::<f64>() / (hd as f64).sqrt()
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for c in 0..hd {
                out[i * hd + c] = (0..len).map(|j| e[j] * at(j, 2, c)).sum::<f64>() / z;
            }
        }
        out
    }

    #[test]
    fn matches_f64_attention_on_odd_lengths() {
        if !super::supported(32) {
            eprintln!("skipped: no AMX-BF16 here (or TRIAGE_AMX=0)");
            return;
        }
        for (hd, heads) in [(32, 3), (64, 2)] {
            let h = hd * heads;
            // Lengths: 1, under a tile, a tile and one, across panels, long.
            let lens = [1, 5, 16, 17, 33, 45, 130, 200];
            let seqs: Vec<(usize, usize)> = lens
                .iter()
                .scan(0, |t, &l| {
                    *t += l;
                    Some((*t - l, l))
                })
                .collect();
            let t: usize = lens.iter().sum();
            let mut x = 0x2545_f491u32;
            let qkv: Vec<f32> = (0..t * 3 * h)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x % 2001) as f32 / 500.0 - 2.0
                })
                .collect();
            let mut ctx = vec![f32::NAN; t * h];
            super::attention(&qkv, &seqs, h, heads, &mut ctx);
            for &(start, len) in &seqs {
                for head in 0..heads {
                    let want = reference(&qkv, (start, len), h, hd, head);
                    for i in 0..len {
                        let got = &ctx[(start + i) * h + head * hd..][..hd];
                        let w = &want[i * hd..(i + 1) * hd];
                        let err = got
                            .iter()
                            .zip(w)
                            .map(|(&g, &w)| (g as f64 - w).abs())
                            .fold(0.0, f64::max);
                        let norm = w.iter().map(|v| v.abs()).fold(0.0, f64::max).max(0.1);
                        assert!(
                            err <= 0.03 * norm,
                            "hd {hd} len {len} head {head} row {i}: error {err} of {norm}"
                        );
                    }
                }
            }
        }
    }
}
