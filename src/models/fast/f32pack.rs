//! F32 matrix multiply for AVX2+FMA CPUs with weights packed once: 16-column panels, 6x16 register
//! tiles, K in blocks of 384, and bias, residual and GELU applied while the tile is still in
//! registers.

use super::par::{run_parts, SendPtr};

/// Columns per packed panel (two 8-lane vectors).
pub const NR: usize = 16;
/// Rows per register tile.
const MR: usize = 6;
/// Depth of one K block (a 24 KB weight micro-panel, kept in L1 across a row block). 384 covers
/// the hidden size of the small encoders in one block, so their output tiles are stored once;
/// measured 2-5% faster than 256 in the encoder (`cargo bench --bench matmul` and the e5 bench).
const KC: usize = 384;
/// Rows per activation block (kept in L2 while every panel passes over it).
const MC: usize = 72;

/// Whether this CPU runs the kernel (AVX2 and FMA), and so whether the f32 path uses it (dense
/// layers and attention): AVX-512 CPUs included, since the `gemm` crate runs its AVX2 kernel there
/// too (its AVX-512 kernels need a nightly compiler) and this one beats it (`benches/matmul.rs`).
pub fn supported() -> bool {
    super::cpu::avx2_fma()
}

/// Pack `B` `[k, n]` into NR-column panels (the layout `PackedF32` and `panel_product` read):
/// `out[(p * k + q) * NR + j] = B[q][p*NR + j]`, zero past `n`. `B[q][j]` is `src[q * ld + j]`,
/// or with `transposed` `src[j * ld + q]` (B given as its `[n, k]` transpose, like a weight).
pub fn pack_panels(
    src: &[f32],
    ld: usize,
    k: usize,
    n: usize,
    transposed: bool,
    out: &mut Vec<f32>,
) {
    out.clear();
    out.resize(n.div_ceil(NR) * k * NR, 0.0);
    pack_into(src, ld, k, n, transposed, out);
}

/// `pack_panels` into a zeroed slice of exactly `n.div_ceil(NR) * k * NR` floats.
fn pack_into(src: &[f32], ld: usize, k: usize, n: usize, transposed: bool, out: &mut [f32]) {
    for p in 0..n.div_ceil(NR) {
        let cols = (n - p * NR).min(NR);
        let panel = &mut out[p * k * NR..(p + 1) * k * NR];
        if transposed {
            for j in 0..cols {
                let row = &src[(p * NR + j) * ld..(p * NR + j) * ld + k];
                for (q, &v) in row.iter().enumerate() {
                    panel[q * NR + j] = v;
                }
            }
        } else {
            for (q, dst) in panel.chunks_exact_mut(NR).enumerate() {
                let from = &src[q * ld + p * NR..];
                if cols == NR {
                    dst.copy_from_slice(&from[..NR]);
                } else {
                    dst[..cols].copy_from_slice(&from[..cols]);
                }
            }
        }
    }
}

/// `c[m, n] = a[m, k] · B` on this thread, `B` packed by `pack_panels`; `a` and `c` have row
/// strides `lda` and `ldc`. For the small products inside attention, whose outputs are column
/// blocks of a shared matrix, hence the pointer.
///
/// # Safety
/// `c` must be valid for writes of `m` rows of `n` floats at row stride `ldc`, and no other
/// thread may access those floats during the call.
#[allow(clippy::too_many_arguments)]
pub unsafe fn panel_product(
    a: &[f32],
    lda: usize,
    m: usize,
    k: usize,
    panels: &[f32],
    n: usize,
    c: *mut f32,
    ldc: usize,
) {
    assert!(supported(), "the packed f32 kernel needs AVX2 and FMA");
    let np = n.div_ceil(NR);
    assert!(lda >= k && ldc >= n && panels.len() >= np * k * NR);
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= (m - 1) * lda + k);
    let epi = Epilogue {
        load: false,
        bias: false,
        gelu: None,
    };
    for p in 0..np {
        let mut r = 0;
        while r < m {
            let rs = (m - r).min(MR);
            // AVX2+FMA present (asserted); rows r..r+rs of `a` and panel `p` are in bounds
            // (asserted above), `c`'s by the caller; the bias is not read (`epi.bias` false).
            #[cfg(target_arch = "x86_64")]
            x86::tile(
                rs,
                k,
                a[r * lda..].as_ptr(),
                lda,
                panels[p * k * NR..].as_ptr(),
                c.add(r * ldc + p * NR),
                ldc,
                (n - p * NR).min(NR),
                std::ptr::null(),
                epi,
            );
            r += rs;
        }
    }
}

/// A `[n, k]` weight matrix (PyTorch `Linear` layout) as panels: for panel `p`, depth `q` and
/// column `j`, the float at `(p * k + q) * NR + j` (from a 64-byte aligned start) holds
/// `W[p*NR+j][q]`; missing columns are zero.
pub struct PackedF32 {
    pub n: usize,
    pub k: usize,
    buf: Vec<f32>,
    start: usize,
}

/// What happens to a finished tile before it is stored.
#[derive(Clone, Copy)]
struct Epilogue {
    /// Add what the output already holds (the residual, or an earlier K block's sum).
    load: bool,
    /// Add the bias (first K block only).
    bias: bool,
    /// Apply GELU (last K block only; `true`: the tanh approximation).
    gelu: Option<bool>,
}

impl PackedF32 {
    pub fn pack(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "packed f32: weight shape");
        let len = n.div_ceil(NR) * k * NR;
        let mut buf = vec![0f32; len + NR];
        let start = buf.as_ptr().align_offset(64).min(NR);
        pack_into(w, k, k, n, true, &mut buf[start..start + len]);
        PackedF32 { n, k, buf, start }
    }

    fn panels(&self) -> &[f32] {
        &self.buf[self.start..]
    }

    /// `c[m, n] (= c +) a · Wᵀ + bias`, then GELU when asked. `a`: `[m, k]` with row stride
    /// `lda`; `c` has row stride `ldc`; `accumulate` adds to what `c` holds.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        &self,
        a: &[f32],
        lda: usize,
        m: usize,
        c: &mut [f32],
        ldc: usize,
        bias: &[f32],
        accumulate: bool,
        gelu: Option<bool>,
    ) {
        assert!(supported(), "the packed f32 kernel needs AVX2 and FMA");
        let (n, k) = (self.n, self.k);
        assert!(bias.len() >= n && lda >= k && ldc >= n);
        if m == 0 {
            return;
        }
        assert!(a.len() >= (m - 1) * lda + k && c.len() >= (m - 1) * ldc + n);
        let np = n.div_ceil(NR);
        let threads = rayon::current_num_threads().max(1);
        // Split rows when there are enough for every thread to fill tiles; else split panels.
        let by_rows = m >= 4 * MR * threads;
        let parts = if m * n * k < 32 * 32 * 64 {
            1
        } else if by_rows {
            threads
        } else {
            threads.min(np)
        };
        let cp = SendPtr(c.as_mut_ptr());
        let job = |t: usize| {
            let cp = &cp;
            let (rows, cols) = if by_rows {
                let per = m.div_ceil(parts).next_multiple_of(MR);
                ((t * per).min(m)..((t + 1) * per).min(m), 0..np)
            } else {
                let per = np.div_ceil(parts);
                (0..m, (t * per).min(np)..((t + 1) * per).min(np))
            };
            if rows.is_empty() || cols.is_empty() {
                return;
            }
            // SAFETY: `c` is only reached through `cp`; jobs write disjoint rows or panels.
            unsafe { self.block(a, lda, rows, cols, cp.0, ldc, bias, accumulate, gelu) };
        };
        run_parts(parts, job);
    }

    /// Rows `rows` x panels `cols` of the product. Safety: `c` is valid for `[m, ldc]` (checked by
    /// `matmul`) and no other thread writes these rows x columns.
    #[allow(clippy::too_many_arguments)]
    unsafe fn block(
        &self,
        a: &[f32],
        lda: usize,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        c: *mut f32,
        ldc: usize,
        bias: &[f32],
        accumulate: bool,
        gelu: Option<bool>,
    ) {
        let (n, k) = (self.n, self.k);
        let panels = self.panels();
        // Even K blocks of at most KC; each row block runs all of them while its output rows
        // are still in cache.
        let kc_even = k.div_ceil(k.div_ceil(KC).max(1));
        let mut i0 = rows.start;
        while i0 < rows.end {
            let mc = (rows.end - i0).min(MC);
            let mut k0 = 0;
            while k0 < k {
                let kc = (k - k0).min(kc_even);
                let epi = Epilogue {
                    load: accumulate || k0 > 0,
                    bias: k0 == 0,
                    gelu: if k0 + kc == k { gelu } else { None },
                };
                for p in cols.clone() {
                    let b = &panels[(p * k + k0) * NR..(p * k + k0 + kc) * NR];
                    let ncols = (n - p * NR).min(NR);
                    let mut r = i0;
                    while r < i0 + mc {
                        let rs = (i0 + mc - r).min(MR);
                        let ar = &a[r * lda + k0..(r + rs - 1) * lda + k0 + kc];
                        #[cfg(target_arch = "x86_64")]
                        x86::tile(
                            rs,
                            kc,
                            ar.as_ptr(),
                            lda,
                            b.as_ptr(),
                            c.add(r * ldc + p * NR),
                            ldc,
                            ncols,
                            bias[p * NR..].as_ptr(),
                            epi,
                        );
                        r += rs;
                    }
                }
                k0 += kc;
            }
            i0 += mc;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::avx2::gelu8;
    use super::{Epilogue, MR, NR};
    use std::arch::x86_64::*;

    /// Up to MR rows x NR columns over depth `kc`: `a` the first row's slice of the K block
    /// (row stride `lda`), `b` a panel slice (`[kc][NR]`); stores `cols` columns of each row of
    /// `c` after the epilogue.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile(
        rows: usize,
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        bias: *const f32,
        epi: Epilogue,
    ) {
        match rows {
            6 => rows_tile::<6>(kc, a, lda, b, c, ldc, cols, bias, epi),
            5 => rows_tile::<5>(kc, a, lda, b, c, ldc, cols, bias, epi),
            4 => rows_tile::<4>(kc, a, lda, b, c, ldc, cols, bias, epi),
            3 => rows_tile::<3>(kc, a, lda, b, c, ldc, cols, bias, epi),
            2 => rows_tile::<2>(kc, a, lda, b, c, ldc, cols, bias, epi),
            _ => rows_tile::<1>(kc, a, lda, b, c, ldc, cols, bias, epi),
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows_tile<const R: usize>(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        bias: *const f32,
        epi: Epilogue,
    ) {
        debug_assert!(R <= MR);
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        let mut rp = [a; R];
        for (i, p) in rp.iter_mut().enumerate() {
            *p = a.add(i * lda);
        }
        // One depth step: two weight vectors, a broadcast and two FMAs per row.
        let step = |acc: &mut [[__m256; 2]; R], q: usize| {
            let b0 = _mm256_loadu_ps(b.add(q * NR));
            let b1 = _mm256_loadu_ps(b.add(q * NR + 8));
            for (row, p) in acc.iter_mut().zip(&rp) {
                let av = _mm256_broadcast_ss(&*p.add(q));
                row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                row[1] = _mm256_fmadd_ps(av, b1, row[1]);
            }
        };
        // Unrolled by 4 so the loop's address and counter updates do not compete with the FMAs
        // for the front end.
        let mut q = 0;
        while q + 4 <= kc {
            step(&mut acc, q);
            step(&mut acc, q + 1);
            step(&mut acc, q + 2);
            step(&mut acc, q + 3);
            q += 4;
        }
        while q < kc {
            step(&mut acc, q);
            q += 1;
        }
        let full = cols == NR;
        let mut bias_v = [0f32; NR];
        if epi.bias {
            std::ptr::copy_nonoverlapping(bias, bias_v.as_mut_ptr(), cols);
        }
        let bias0 = _mm256_loadu_ps(bias_v.as_ptr());
        let bias1 = _mm256_loadu_ps(bias_v.as_ptr().add(8));
        for (i, row) in acc.iter().enumerate() {
            let out = c.add(i * ldc);
            let mut v0 = _mm256_add_ps(row[0], bias0);
            let mut v1 = _mm256_add_ps(row[1], bias1);
            let mut tmp = [0f32; NR];
            if epi.load {
                if full {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(out));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(out.add(8)));
                } else {
                    std::ptr::copy_nonoverlapping(out, tmp.as_mut_ptr(), cols);
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(tmp.as_ptr()));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(tmp.as_ptr().add(8)));
                }
            }
            if let Some(tanh) = epi.gelu {
                v0 = gelu8(v0, tanh);
                v1 = gelu8(v1, tanh);
            }
            if full {
                _mm256_storeu_ps(out, v0);
                _mm256_storeu_ps(out.add(8), v1);
            } else {
                _mm256_storeu_ps(tmp.as_mut_ptr(), v0);
                _mm256_storeu_ps(tmp.as_mut_ptr().add(8), v1);
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), out, cols);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(m: usize, n: usize, k: usize, accumulate: bool, gelu: Option<bool>) {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 23) as f32 - 11.0) / 8.0)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 5 % 17) as f32 - 8.0) / 16.0)
            .collect();
        let bias: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 3.0).collect();
        let packed = PackedF32::pack(&w, n, k);
        let ldc = n + 3;
        let mut c = vec![1.0f32; m * ldc];
        packed.matmul(&a, k, m, &mut c, ldc, &bias, accumulate, gelu);
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|t| a[i * k + t] as f64 * w[j * k + t] as f64)
                    .sum();
                let mut want = (dot + bias[j] as f64 + if accumulate { 1.0 } else { 0.0 }) as f32;
                if let Some(t) = gelu {
                    let mut g = [want];
                    crate::models::fast::ops::gelu_rows(&mut g, t);
                    want = g[0];
                }
                let got = c[i * ldc + j];
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{m}x{n}x{k} at {i},{j}: {got} vs {want}"
                );
            }
            for j in n..ldc {
                assert_eq!(c[i * ldc + j], 1.0, "column {j} past n was written");
            }
        }
    }

    #[test]
    fn matches_a_plain_product_on_every_edge() {
        if !supported() {
            eprintln!("skipped: this CPU has no AVX2+FMA");
            return;
        }
        // Tails in rows (not a multiple of 6 or of the row block), columns (not a multiple of
        // 16), depth (one, two and three K blocks), both thread splits, every epilogue.
        check(1, 16, 8, false, None);
        check(13, 45, 70, true, None);
        check(7, 33, 300, false, Some(false));
        check(250, 40, 520, true, None);
        check(131, 64, 257, false, Some(true));
        check(48, 384, 384, true, None);
    }
}
