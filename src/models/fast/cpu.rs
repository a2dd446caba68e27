//! The CPU features the fast kernels dispatch on, detected once per process and cached: AVX2+FMA
//! (packed f32 kernel, vectorised element-wise ops), AVX-512 (element-wise ops), AVX-512 BF16
//! (bf16 kernel) and AMX-BF16 (tile unit, which also needs Linux's permission and honours
//! `TRIAGE_AMX=0`/`off`). Every kernel file asks here instead of probing the CPU itself.

use std::sync::OnceLock;

/// What this CPU (and OS) lets the kernels use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// AVX2 and FMA: the packed f32 kernel and the 256-bit element-wise ops.
    pub avx2_fma: bool,
    /// AVX-512 F, VL, DQ and FMA: the 512-bit element-wise ops.
    pub avx512: bool,
    /// AVX-512 F and BF16 (`vdpbf16ps`): the bf16 kernel.
    pub avx512_bf16: bool,
}

/// The features, probed on first use.
pub fn features() -> Features {
    static F: OnceLock<Features> = OnceLock::new();
    *F.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Features {
    use std::arch::is_x86_feature_detected as has;
    let fma = has!("fma");
    Features {
        avx2_fma: has!("avx2") && fma,
        avx512: has!("avx512f") && has!("avx512vl") && has!("avx512dq") && fma,
        avx512_bf16: has!("avx512f") && has!("avx512bf16"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Features {
    Features::default()
}

/// AVX2 and FMA (the packed f32 kernel).
pub fn avx2_fma() -> bool {
    features().avx2_fma
}

/// AVX-512 F/VL/DQ with FMA (the 512-bit element-wise ops).
pub fn avx512() -> bool {
    features().avx512
}

/// AVX-512 BF16 (the bf16 kernel).
pub fn avx512_bf16() -> bool {
    features().avx512_bf16
}

/// Whether AMX-BF16 can run here: the CPU has AMX-TILE and AMX-BF16, Linux granted the tile
/// state, and the environment does not turn it off (`TRIAGE_AMX=0` or `off`, to compare against
/// the AVX-512 kernel). Decided once; the permission request is made at most once.
pub fn amx_bf16() -> bool {
    static AMX: OnceLock<bool> = OnceLock::new();
    *AMX.get_or_init(|| {
        let off = std::env::var("TRIAGE_AMX").is_ok_and(|v| v == "0" || v == "off");
        !off && request_amx()
    })
}

/// CPUID AMX-TILE and AMX-BF16, then ask Linux for the tile data state.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_amx() -> bool {
    let r = std::arch::x86_64::__cpuid_count(7, 0);
    let (tile, bf16) = ((r.edx >> 24) & 1 == 1, (r.edx >> 22) & 1 == 1);
    if !(tile && bf16) {
        return false;
    }
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a plain syscall with integer arguments; it changes only what this process may use.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn request_amx() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_is_stable_and_consistent() {
        let f = features();
        assert_eq!(f, features());
        // Every AVX-512 CPU the kernels target also has AVX2 and FMA.
        assert!(!f.avx512 || f.avx2_fma);
        assert_eq!(amx_bf16(), amx_bf16());
    }
}
