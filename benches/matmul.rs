//! The encoder's dense-layer products on their own: triage's packed AVX2 f32 kernel against the
//! `gemm` crate (the kernel it replaces) on the same inputs and thread count, GFLOP/s and ratio;
//! on AVX-512 BF16 CPUs also the bf16 kernel, and on AMX CPUs the bf16 tiles against it.
//!
//!     RAYON_NUM_THREADS=2 cargo bench --bench matmul -- [--rows 3338] [--min-seconds 2]
//! Shapes: MiniLM / e5-small layers (hidden 384): QKV 1152x384, output 384x384, FFN 1536x384 and
//! 384x1536, at `--rows` token rows (3338 = 32 texts of ~104 tokens; 485 = 32 x ~15).

use std::time::Instant;
use triage::models::fast::bf16::{self, PackedBf16};
use triage::models::fast::f32pack::{supported, PackedF32};

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn time(min_secs: f64, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut n = 0u32;
    while n < 3 || start.elapsed().as_secs_f64() < min_secs {
        f();
        n += 1;
    }
    start.elapsed().as_secs_f64() / n as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !supported() {
        eprintln!("matmul bench: this CPU has no AVX2+FMA, nothing to compare");
        return;
    }
    let m = arg(&args, "--rows", 3338.0) as usize;
    let secs = arg(&args, "--min-seconds", 2.0);
    let threads = rayon::current_num_threads();
    println!("rows {m}, threads {threads}");
    for (n, k) in [(1152, 384), (384, 384), (1536, 384), (384, 1536)] {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 23) as f32 - 11.0) / 8.0)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 5 % 17) as f32 - 8.0) / 16.0)
            .collect();
        let bias = vec![0.5f32; n];
        let packed = PackedF32::pack(&w, n, k);
        let mut c1 = vec![0f32; m * n];
        let mut c2 = vec![0f32; m * n];
        let ours = time(secs, || {
            packed.matmul(&a, k, m, &mut c1, n, &bias, false, None)
        });
        let par = if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        let theirs = time(secs, || {
            for row in c2.chunks_exact_mut(n) {
                row.copy_from_slice(&bias);
            }
            // SAFETY: c2 [m, n], a [m, k], w [n, k] read as Wᵀ; all in bounds.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c2.as_mut_ptr(),
                    1,
                    n as isize,
                    true,
                    a.as_ptr(),
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
        });
        let diff = c1
            .iter()
            .zip(&c2)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        let gf = |s: f64| 2.0 * (m * n * k) as f64 / s / 1e9;
        println!(
            "{n:>5}x{k:<5} packed {:6.1} GFLOP/s  gemm {:6.1} GFLOP/s  ratio {:.2}  max diff {diff:.1e}",
            gf(ours),
            gf(theirs),
            theirs / ours
        );
        if bf16::supported() {
            let vector = PackedBf16::pack_for(&w, n, k, false);
            let tiles = PackedBf16::pack_for(&w, n, k, true);
            let mut ab = Vec::new();
            let mut run = |p: &PackedBf16, c: &mut Vec<f32>| {
                time(secs, || {
                    bf16::convert_rows(&a, m, k, k, p.pairs(), &mut ab);
                    p.matmul(&ab, m, c, n, &bias, false, None)
                })
            };
            let t_vec = run(&vector, &mut c1);
            let line = format!(
                "{n:>5}x{k:<5} bf16 AVX-512 {:6.1} GFLOP/s ({:.2}x gemm f32)",
                gf(t_vec),
                theirs / t_vec
            );
            if tiles.uses_amx() {
                let t_amx = run(&tiles, &mut c2);
                let diff = c1
                    .iter()
                    .zip(&c2)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                println!(
                    "{line}  AMX {:6.1} GFLOP/s ({:.2}x AVX-512 bf16, {:.2}x gemm f32)  max diff {diff:.1e}",
                    gf(t_amx),
                    t_vec / t_amx,
                    theirs / t_amx
                );
            } else {
                println!("{line}  (no AMX here)");
            }
        }
    }
}
