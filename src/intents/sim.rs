//! Cosine similarity between sets of embeddings: L2 normalisation and a blocked matrix product
//! (candle's gemm, so it stays fast in debug builds and on thousands of texts).

use anyhow::Result;
use candle_core::{Device, Tensor};

/// `v` scaled to unit length (left as is when it is all zeros).
pub fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// The normalised mean of unit vectors (the prototype of an intent).
pub fn centroid(vs: &[Vec<f32>]) -> Vec<f32> {
    let d = vs.first().map_or(0, |v| v.len());
    let mut c = vec![0f32; d];
    for v in vs {
        for (a, b) in c.iter_mut().zip(v) {
            *a += b;
        }
    }
    normalize(c)
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Cosine similarity (0 when either vector is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (na, nb) = (dot(a, a), dot(b, b));
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot(a, b) / (na.sqrt() * nb.sqrt())
    }
}

fn matrix(rows: &[Vec<f32>], d: usize) -> Result<Tensor> {
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Ok(Tensor::from_vec(flat, (rows.len(), d), &Device::Cpu)?)
}

/// `a[i] . b[j]` for every pair, row by row; calls `f(i, row)` for each row of `a` so that a
/// caller can keep only what it needs (memory stays at one block of rows).
pub fn for_each_row(
    a: &[Vec<f32>],
    b: &[Vec<f32>],
    mut f: impl FnMut(usize, &[f32]),
) -> Result<()> {
    let Some(d) = a.first().or(b.first()).map(|v| v.len()) else {
        return Ok(());
    };
    anyhow::ensure!(
        a.iter().chain(b).all(|v| v.len() == d),
        "embeddings of different sizes"
    );
    if b.is_empty() {
        (0..a.len()).for_each(|i| f(i, &[]));
        return Ok(());
    }
    let bt = matrix(b, d)?.t()?.contiguous()?;
    // About 4M similarities per block.
    let block = (4_000_000 / b.len()).clamp(1, 4096);
    for (k, chunk) in a.chunks(block).enumerate() {
        let s: Vec<Vec<f32>> = matrix(chunk, d)?.matmul(&bt)?.to_vec2()?;
        for (j, row) in s.iter().enumerate() {
            f(k * block + j, row);
        }
    }
    Ok(())
}

/// The full similarity matrix (for small inputs).
pub fn matrix_of(a: &[Vec<f32>], b: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(a.len());
    for_each_row(a, b, |_, r| out.push(r.to_vec()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosines() {
        let a = vec![normalize(vec![1.0, 0.0]), normalize(vec![1.0, 1.0])];
        let b = vec![normalize(vec![0.0, 2.0]), normalize(vec![3.0, 0.0])];
        let m = matrix_of(&a, &b).unwrap();
        assert!((m[0][0]).abs() < 1e-6 && (m[0][1] - 1.0).abs() < 1e-6);
        assert!((m[1][0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(matrix_of(&a, &[]).unwrap(), vec![Vec::<f32>::new(); 2]);
        assert!(matrix_of(&a, &[vec![1.0]]).is_err());
        let c = centroid(&b);
        assert!((dot(&c, &c) - 1.0).abs() < 1e-6);
    }
}
