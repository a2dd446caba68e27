//! BF16 matrix multiply for x86 CPUs with AVX-512 BF16 (`vdpbf16ps`): weights packed once into
//! 32-column panels of bf16 pairs, activations rounded to bf16 per call, f32 accumulation. On CPUs
//! with AMX the same panels go through the tile unit (`amx.rs`) instead.

use super::amx;
use super::par::{run_parts, SendPtr};

/// Columns per packed panel (two 16-lane vectors).
pub const NR: usize = 32;
/// Rows per micro-kernel call.
const MR: usize = 6;

/// Whether this CPU runs the BF16 kernel (AVX-512 F and BF16, `cpu.rs`).
pub fn supported() -> bool {
    super::cpu::avx512_bf16()
}

/// A `[n, k]` weight matrix (PyTorch `Linear` layout) as panels: for panel `p`, pair `q`,
/// column `j`, the u32 at `(p * kp + q) * NR + j` holds `W[p*NR+j][2q]` (low half) and
/// `W[p*NR+j][2q+1]` (high half) in bf16. Missing columns and the odd tail are zero.
pub struct PackedBf16 {
    pub n: usize,
    pub k: usize,
    kp: usize,
    panels: Vec<u32>,
    /// Multiply on AMX tiles (the CPU has them and `kp` is whole tile steps).
    amx: bool,
}

/// bf16 bits of `x`, rounded to nearest even (what `vcvtne2ps2bf16` does).
pub fn to_bf16(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

impl PackedBf16 {
    /// Pack for the best kernel this CPU has (AMX where available).
    pub fn pack(w: &[f32], n: usize, k: usize) -> Self {
        Self::pack_for(w, n, k, true)
    }

    /// Pack; `allow_amx: false` keeps the AVX-512 kernel even where AMX runs (benchmarks, tests).
    pub fn pack_for(w: &[f32], n: usize, k: usize, allow_amx: bool) -> Self {
        let kp = k.div_ceil(2);
        let np = n.div_ceil(NR);
        let mut panels = vec![0u32; np * kp * NR];
        for col in 0..n {
            let (p, j) = (col / NR, col % NR);
            let row = &w[col * k..(col + 1) * k];
            for q in 0..kp {
                let lo = to_bf16(row[2 * q]) as u32;
                let hi = row.get(2 * q + 1).map_or(0, |&v| to_bf16(v) as u32);
                panels[(p * kp + q) * NR + j] = lo | (hi << 16);
            }
        }
        let amx = allow_amx && kp.is_multiple_of(amx::KSTEP) && amx::available();
        PackedBf16 {
            n,
            k,
            kp,
            panels,
            amx,
        }
    }

    /// Whether `matmul` runs on AMX tiles.
    pub fn uses_amx(&self) -> bool {
        self.amx
    }

    /// Pairs per row that `convert_rows` must produce for this matrix.
    pub fn pairs(&self) -> usize {
        self.kp
    }

    /// `c[m, n] (= c +) a · Wᵀ + bias`, then GELU when asked. `a`: bf16 pairs `[m, kp]` from
    /// `convert_rows`; `c` has row stride `ldc`; `accumulate` adds to what `c` holds.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        &self,
        a: &[u32],
        m: usize,
        c: &mut [f32],
        ldc: usize,
        bias: &[f32],
        accumulate: bool,
        gelu: Option<bool>,
    ) {
        assert!(supported(), "the BF16 kernel needs AVX-512 BF16");
        assert!(a.len() >= m * self.kp && bias.len() >= self.n);
        assert!(m == 0 || c.len() >= (m - 1) * ldc + self.n);
        let np = self.n.div_ceil(NR);
        let threads = rayon::current_num_threads().clamp(1, np.max(1));
        let per = np.div_ceil(threads);
        let cp = SendPtr(c.as_mut_ptr());
        if self.amx {
            let job = |t: usize| {
                self.amx_part(
                    t * per..((t + 1) * per).min(np),
                    a,
                    m,
                    &cp,
                    ldc,
                    bias,
                    accumulate,
                    gelu,
                )
            };
            run_parts(threads, job);
            return;
        }
        let job = |t: usize| {
            let cp = &cp;
            for p in t * per..((t + 1) * per).min(np) {
                let cols = (self.n - p * NR).min(NR);
                let panel = &self.panels[p * self.kp * NR..(p + 1) * self.kp * NR];
                let mut r = 0;
                while r < m {
                    let rows = (m - r).min(MR);
                    // SAFETY: the CPU has AVX-512 BF16 (asserted); every pointer stays within
                    // `a`, `panel`, `bias` and `c` (lengths asserted above), and threads write
                    // disjoint column panels of `c`.
                    unsafe {
                        #[cfg(target_arch = "x86_64")]
                        x86::kernel(
                            rows,
                            a.as_ptr().add(r * self.kp),
                            self.kp,
                            panel.as_ptr(),
                            cp.0.add(r * ldc + p * NR),
                            ldc,
                            cols,
                            bias.as_ptr().add(p * NR),
                            accumulate,
                            gelu,
                        );
                    }
                    r += rows;
                }
            }
        };
        run_parts(threads, job);
    }

    /// Column panels `panels` of `matmul` on AMX: 32-row blocks of `a` (a zero-padded copy for the
    /// last, short block) times each panel, then bias, residual and GELU on the way into `c`.
    #[allow(clippy::too_many_arguments)]
    fn amx_part(
        &self,
        panels: std::ops::Range<usize>,
        a: &[u32],
        m: usize,
        cp: &SendPtr,
        ldc: usize,
        bias: &[f32],
        accumulate: bool,
        gelu: Option<bool>,
    ) {
        if panels.is_empty() {
            return;
        }
        let kp = self.kp;
        // SAFETY: `self.amx` is set only where `amx::available()`.
        let _tiles = unsafe { amx::Tiles::new() };
        let mut out = [0f32; 32 * 32];
        let mut pad: Vec<u32> = Vec::new();
        let mut r = 0;
        while r < m {
            let rows = (m - r).min(32);
            let block = if rows > 16 { 32 } else { 16 };
            let ap = if rows == block {
                a[r * kp..].as_ptr()
            } else {
                pad.clear();
                pad.extend_from_slice(&a[r * kp..(r + rows) * kp]);
                pad.resize(block * kp, 0);
                pad.as_ptr()
            };
            for p in panels.clone() {
                let cols = (self.n - p * NR).min(NR);
                // SAFETY: tiles configured above; `ap` has `block` rows of `kp` pairs, the panel
                // `kp` rows of NR pairs; `c` and `bias` lengths were asserted by `matmul`, and the
                // threads write disjoint column panels of `c`.
                unsafe {
                    amx::panel(
                        block,
                        ap,
                        kp,
                        self.panels[p * kp * NR..].as_ptr(),
                        out.as_mut_ptr(),
                    );
                    #[cfg(target_arch = "x86_64")]
                    x86::finish(
                        rows,
                        out.as_ptr(),
                        cp.0.add(r * ldc + p * NR),
                        ldc,
                        cols,
                        bias.as_ptr().add(p * NR),
                        accumulate,
                        gelu,
                    );
                }
            }
            r += rows;
        }
    }
}

/// Round `rows` rows of `a` (row stride `lda`, `k` wide) to bf16 pairs `[rows, kp]` in `out`.
pub fn convert_rows(a: &[f32], rows: usize, lda: usize, k: usize, kp: usize, out: &mut Vec<u32>) {
    // Every pair is written below, so the buffer is only grown, not zeroed (it is up to
    // rows x 768 pairs per call: zeroing it was ~3% of a batch).
    out.resize(rows * kp, 0);
    for r in 0..rows {
        let src = &a[r * lda..r * lda + k];
        let dst = &mut out[r * kp..(r + 1) * kp];
        #[cfg(target_arch = "x86_64")]
        if supported() && k.is_multiple_of(32) {
            // SAFETY: AVX-512 BF16 present; src has k floats, dst k/2 u32s.
            unsafe { x86::convert(src, dst) };
            continue;
        }
        for (q, d) in dst.iter_mut().enumerate() {
            let lo = to_bf16(src[2 * q]) as u32;
            let hi = src.get(2 * q + 1).map_or(0, |&v| to_bf16(v) as u32);
            *d = lo | (hi << 16);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn convert(src: &[f32], dst: &mut [u32]) {
        for (i, d) in dst.chunks_exact_mut(16).enumerate() {
            let lo = _mm512_loadu_ps(src.as_ptr().add(i * 32));
            let hi = _mm512_loadu_ps(src.as_ptr().add(i * 32 + 16));
            let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(d.as_mut_ptr() as *mut __m512i, v);
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn kernel(
        rows: usize,
        a: *const u32,
        kp: usize,
        b: *const u32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        bias: *const f32,
        accumulate: bool,
        gelu: Option<bool>,
    ) {
        match rows {
            6 => tile::<6>(a, kp, b, c, ldc, cols, bias, accumulate, gelu),
            5 => tile::<5>(a, kp, b, c, ldc, cols, bias, accumulate, gelu),
            4 => tile::<4>(a, kp, b, c, ldc, cols, bias, accumulate, gelu),
            3 => tile::<3>(a, kp, b, c, ldc, cols, bias, accumulate, gelu),
            2 => tile::<2>(a, kp, b, c, ldc, cols, bias, accumulate, gelu),
            _ => tile::<1>(a, kp, b, c, ldc, cols, bias, accumulate, gelu),
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn tile<const R: usize>(
        a: *const u32,
        kp: usize,
        b: *const u32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        bias: *const f32,
        accumulate: bool,
        gelu: Option<bool>,
    ) {
        debug_assert!(R <= MR);
        let mut acc0 = [_mm512_setzero_ps(); R];
        let mut acc1 = [_mm512_setzero_ps(); R];
        for q in 0..kp {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(q * NR) as *const _));
            let b1: __m512bh =
                std::mem::transmute(_mm512_loadu_si512(b.add(q * NR + 16) as *const _));
            for r in 0..R {
                let av: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*a.add(r * kp + q) as i32));
                acc0[r] = _mm512_dpbf16_ps(acc0[r], av, b0);
                acc1[r] = _mm512_dpbf16_ps(acc1[r], av, b1);
            }
        }
        let (m0, m1) = masks(cols);
        let bias0 = _mm512_maskz_loadu_ps(m0, bias);
        let bias1 = _mm512_maskz_loadu_ps(m1, bias.add(16));
        for r in 0..R {
            let v0 = _mm512_add_ps(acc0[r], bias0);
            let v1 = _mm512_add_ps(acc1[r], bias1);
            store_row(c.add(r * ldc), v0, v1, m0, m1, accumulate, gelu);
        }
    }

    /// Lane masks of the two 16-column halves of a panel with `cols` real columns.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn masks(cols: usize) -> (__mmask16, __mmask16) {
        let m0: __mmask16 = if cols >= 16 {
            0xffff
        } else {
            (1u32 << cols) as u16 - 1
        };
        let m1: __mmask16 = if cols >= 32 {
            0xffff
        } else if cols <= 16 {
            0
        } else {
            (1u32 << (cols - 16)) as u16 - 1
        };
        (m0, m1)
    }

    /// One output row of a panel: `v` (product + bias), plus what `row` holds when accumulating,
    /// then GELU when asked, stored under the column masks.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store_row(
        row: *mut f32,
        mut v0: __m512,
        mut v1: __m512,
        m0: __mmask16,
        m1: __mmask16,
        accumulate: bool,
        gelu: Option<bool>,
    ) {
        if accumulate {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row.add(16)));
        }
        if let Some(tanh) = gelu {
            v0 = gelu16(v0, tanh);
            v1 = gelu16(v1, tanh);
        }
        _mm512_mask_storeu_ps(row, m0, v0);
        _mm512_mask_storeu_ps(row.add(16), m1, v1);
    }

    /// The AMX kernel's output pass: `rows` rows of `src` (row stride 32) plus bias into `c`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn finish(
        rows: usize,
        src: *const f32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        bias: *const f32,
        accumulate: bool,
        gelu: Option<bool>,
    ) {
        let (m0, m1) = masks(cols);
        let bias0 = _mm512_maskz_loadu_ps(m0, bias);
        let bias1 = _mm512_maskz_loadu_ps(m1, bias.add(16));
        for r in 0..rows {
            let v0 = _mm512_add_ps(_mm512_loadu_ps(src.add(r * 32)), bias0);
            let v1 = _mm512_add_ps(_mm512_loadu_ps(src.add(r * 32 + 16)), bias1);
            store_row(c.add(r * ldc), v0, v1, m0, m1, accumulate, gelu);
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn gelu16(v: __m512, tanh: bool) -> __m512 {
        let mut t = [0f32; 16];
        _mm512_storeu_ps(t.as_mut_ptr(), v);
        let mut g = t;
        super::super::ops::gelu_rows_inline(&mut g, tanh);
        let _ = t;
        _mm512_loadu_ps(g.as_ptr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_f32_on_bf16_rounded_inputs() {
        if !supported() {
            eprintln!("skipped: this CPU has no AVX-512 BF16");
            return;
        }
        let (m, n, k) = (13, 45, 70);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 23) as f32 - 11.0) / 8.0)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 5 % 17) as f32 - 8.0) / 16.0)
            .collect();
        let bias: Vec<f32> = (0..n).map(|i| i as f32 * 0.25).collect();
        let packed = PackedBf16::pack(&w, n, k);
        let mut ab = Vec::new();
        convert_rows(&a, m, k, k, packed.pairs(), &mut ab);
        let ldc = n + 3;
        let mut c = vec![1.0f32; m * ldc];
        packed.matmul(&ab, m, &mut c, ldc, &bias, true, None);
        for i in 0..m {
            for j in 0..n {
                // These inputs are exact in bf16, so the sums are exact in f32.
                let want: f32 =
                    (0..k).map(|t| a[i * k + t] * w[j * k + t]).sum::<f32>() + bias[j] + 1.0;
                assert!((c[i * ldc + j] - want).abs() < 1e-3, "{i},{j}");
            }
            for j in n..ldc {
                assert_eq!(c[i * ldc + j], 1.0, "column {j} past n was written");
            }
        }
    }

    #[test]
    fn amx_matches_the_avx512_kernel() {
        if !(supported() && amx::available()) {
            eprintln!("skipped: this CPU has no AMX-BF16 (or TRIAGE_AMX=0)");
            return;
        }
        // Row counts: one 16-row block, short blocks padded to 16 and 32, several 32-row blocks;
        // 70 columns leave a partial last panel; k 64 and 96 are two and three tile steps.
        for (m, n, k) in [(16, 64, 64), (7, 70, 64), (45, 70, 96), (100, 33, 64)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 23) as f32 - 11.0) / 8.0)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 5 % 17) as f32 - 8.0) / 16.0)
                .collect();
            let bias: Vec<f32> = (0..n).map(|i| i as f32 * 0.25).collect();
            let tiles = PackedBf16::pack_for(&w, n, k, true);
            let vector = PackedBf16::pack_for(&w, n, k, false);
            assert!(tiles.uses_amx() && !vector.uses_amx());
            let mut ab = Vec::new();
            convert_rows(&a, m, k, k, tiles.pairs(), &mut ab);
            let ldc = n + 3;
            for (accumulate, gelu) in [(true, None), (false, Some(false))] {
                let mut c1 = vec![1.0f32; m * ldc];
                let mut c2 = c1.clone();
                tiles.matmul(&ab, m, &mut c1, ldc, &bias, accumulate, gelu);
                vector.matmul(&ab, m, &mut c2, ldc, &bias, accumulate, gelu);
                for i in 0..m {
                    for j in 0..n {
                        let want = (0..k).map(|t| a[i * k + t] * w[j * k + t]).sum::<f32>()
                            + bias[j]
                            + if accumulate { 1.0 } else { 0.0 };
                        if gelu.is_none() {
                            // Exact in bf16 inputs and f32 sums, whatever the order.
                            assert_eq!(c1[i * ldc + j], want, "{m}x{n}x{k} at {i},{j}");
                        }
                        let (x, y) = (c1[i * ldc + j], c2[i * ldc + j]);
                        assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{i},{j}: {x} {y}");
                    }
                    for j in n..ldc {
                        assert_eq!(c1[i * ldc + j], 1.0, "column {j} past n was written");
                    }
                }
            }
        }
    }
}
