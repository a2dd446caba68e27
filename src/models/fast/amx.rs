//! Intel AMX tiles for the bf16 dense layers: the same packed bf16 weights and activations as the
//! AVX-512 BF16 kernel (`bf16.rs`), multiplied 16x16x32 per `tdpbf16ps` instead of 16 lanes at a time.
//!
//! The instructions are written in inline assembly (Rust's AMX intrinsics are not stable), and
//! Linux must grant the process the tile state once (`arch_prctl(ARCH_REQ_XCOMP_PERM)`) before any
//! thread touches it; `available()` (from `cpu.rs`) does both checks and is false everywhere else.

/// Whether AMX-BF16 can run here (`cpu::amx_bf16`: the CPU has it, Linux granted the tile state,
/// and `TRIAGE_AMX=0` does not turn it off, to compare against the AVX-512 kernel).
pub fn available() -> bool {
    super::cpu::amx_bf16()
}

/// Pairs per row the tiles consume at a time (32 bf16 values = 64 bytes).
pub const KSTEP: usize = 16;

/// `out[rows(32 or 16), 32]` (row stride 32 floats) = `a` rows · the 32-column bf16 panel `b`.
/// `a`: bf16 pairs with row stride `kp` u32, `rows` rows readable; `b`: `kp` rows of 32 u32 pairs;
/// `kp` a non-zero multiple of `KSTEP`.
///
/// # Safety
/// `available()` returned true, the calling thread holds a tile configuration from
/// `Tiles::new()`, and the pointers cover what is described above.
pub unsafe fn panel(rows: usize, a: *const u32, kp: usize, b: *const u32, out: *mut f32) {
    panel_ld(rows, a, kp, b, out, 32)
}

/// `panel` with the output's row stride `ldo` floats (>= 32) instead of 32 (attention writes its
/// score tiles straight into the score rows).
///
/// # Safety
/// As `panel`, with `out` covering `rows` rows of stride `ldo`.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub unsafe fn panel_ld(
    rows: usize,
    a: *const u32,
    kp: usize,
    b: *const u32,
    out: *mut f32,
    ldo: usize,
) {
    use std::arch::asm;
    debug_assert!(kp > 0 && kp.is_multiple_of(KSTEP) && (rows == 16 || rows == 32));
    debug_assert!(ldo >= 32);
    let steps = kp / KSTEP;
    let (sa, sb, so) = (kp * 4, 128usize, ldo * 4);
    if rows == 32 {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            "2:",
            "tileloadd tmm4, [{a} + {sa}*1]",
            "tileloadd tmm5, [{a2} + {sa}*1]",
            "tileloadd tmm6, [{b} + {sb}*1]",
            "tileloadd tmm7, [{b} + {sb}*1 + 64]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {a}, 64",
            "add {a2}, 64",
            "add {b}, 2048",
            "dec {n}",
            "jnz 2b",
            "tilestored [{o} + {so}*1], tmm0",
            "tilestored [{o} + {so}*1 + 64], tmm1",
            "tilestored [{o2} + {so}*1], tmm2",
            "tilestored [{o2} + {so}*1 + 64], tmm3",
            a = inout(reg) a => _,
            a2 = inout(reg) a.add(16 * kp) => _,
            b = inout(reg) b => _,
            n = inout(reg) steps => _,
            sa = in(reg) sa,
            sb = in(reg) sb,
            o = in(reg) out,
            o2 = in(reg) out.add(16 * ldo),
            so = in(reg) so,
            options(nostack),
        );
    } else {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "2:",
            "tileloadd tmm4, [{a} + {sa}*1]",
            "tileloadd tmm6, [{b} + {sb}*1]",
            "tileloadd tmm7, [{b} + {sb}*1 + 64]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "add {a}, 64",
            "add {b}, 2048",
            "dec {n}",
            "jnz 2b",
            "tilestored [{o} + {so}*1], tmm0",
            "tilestored [{o} + {so}*1 + 64], tmm1",
            a = inout(reg) a => _,
            b = inout(reg) b => _,
            n = inout(reg) steps => _,
            sa = in(reg) sa,
            sb = in(reg) sb,
            o = in(reg) out,
            so = in(reg) so,
            options(nostack),
        );
    }
}

/// The calling thread's tile configuration for `panel` (all eight tiles 16 rows x 64 bytes),
/// released when dropped.
pub struct Tiles(());

impl Tiles {
    /// # Safety
    /// `available()` returned true.
    pub unsafe fn new() -> Self {
        imp::configure();
        Tiles(())
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: a `Tiles` exists only after `available()` and `configure()` on this thread.
        unsafe { imp::release() }
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod imp {
    use std::arch::asm;

    #[repr(C, align(64))]
    struct Config([u8; 64]);

    pub unsafe fn configure() {
        let mut cfg = Config([0; 64]);
        cfg.0[0] = 1; // palette 1
        for t in 0..8 {
            cfg.0[16 + 2 * t] = 64; // bytes per row
            cfg.0[48 + t] = 16; // rows
        }
        asm!("ldtilecfg [{c}]", c = in(reg) cfg.0.as_ptr(), options(nostack, readonly));
    }

    pub unsafe fn release() {
        asm!("tilerelease", options(nostack, nomem));
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod imp {
    pub unsafe fn configure() {}
    pub unsafe fn release() {}
}

/// Off x86_64 Linux `available()` is false, so this is never called.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub unsafe fn panel_ld(
    _rows: usize,
    _a: *const u32,
    _kp: usize,
    _b: *const u32,
    _out: *mut f32,
    _ldo: usize,
) {
    unreachable!("AMX is x86_64 Linux only")
}
