//! The calibrated confidence of a search hit: a logistic model over what the two retrievers
//! say of it (its cosine, its lead over the other hits, its BM25 and dense ranks), fitted by
//! `triage kb eval --fit` on tuning questions (never the dev split), and the answer threshold
//! chosen on the same tuning questions for a precision of 0.95.

use serde::Serialize;

/// What the retrievers say of one hit.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Features {
    /// Best cosine of the query with the article's passages.
    pub cosine: f32,
    /// Cosine minus the best cosine of any other hit (positive only for the top one).
    pub lead: f32,
    /// 1 / (1 + rank) in the BM25 list, 0 when absent.
    pub bm25: f32,
    /// 1 / (1 + rank) in the dense list, 0 when absent.
    pub dense: f32,
}

impl Features {
    pub fn vector(&self) -> [f32; 4] {
        [self.cosine, self.lead, self.bm25, self.dense]
    }
}

/// Logistic weights (bias first), as `triage kb eval --fit` printed them for the default
/// knowledge base and the shipped encoder.
pub const WEIGHTS: [f32; 5] = [-25.0, 28.0, 20.0, 1.5, 1.5];

/// The confidence a bot answer needs (chosen by `triage kb eval --fit`).
pub const ANSWER_THRESHOLD: f32 = 0.5;

/// The calibrated probability that the hit answers the question.
pub fn confidence(f: &Features, w: &[f32; 5]) -> f32 {
    let x = f.vector();
    let z = w[0] + w[1] * x[0] + w[2] * x[1] + w[3] * x[2] + w[4] * x[3];
    1.0 / (1.0 + (-z).exp())
}

/// Fit the weights by logistic regression (Newton steps, a small ridge) on `(features, label)`.
pub fn fit(data: &[(Features, bool)]) -> [f32; 5] {
    const D: usize = 5;
    let mut w = [0f64; D];
    let rows: Vec<([f64; D], f64)> = data
        .iter()
        .map(|(f, y)| {
            let v = f.vector();
            (
                [1.0, v[0] as f64, v[1] as f64, v[2] as f64, v[3] as f64],
                f64::from(u8::from(*y)),
            )
        })
        .collect();
    for _ in 0..50 {
        let mut g = [0f64; D];
        let mut h = [[0f64; D]; D];
        for i in 1..D {
            h[i][i] = 1e-3;
            g[i] = 1e-3 * w[i];
        }
        for (x, y) in &rows {
            let z: f64 = (0..D).map(|i| w[i] * x[i]).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let s = (p * (1.0 - p)).max(1e-9);
            for i in 0..D {
                g[i] += (p - y) * x[i];
                for j in 0..D {
                    h[i][j] += s * x[i] * x[j];
                }
            }
        }
        let step = solve(h, g);
        let mut moved = 0f64;
        for i in 0..D {
            w[i] -= step[i];
            moved = moved.max(step[i].abs());
        }
        if moved < 1e-7 {
            break;
        }
    }
    w.map(|x| x as f32)
}

/// Solve `h x = g` (Gaussian elimination with partial pivoting; h is positive definite).
fn solve<const D: usize>(mut h: [[f64; D]; D], mut g: [f64; D]) -> [f64; D] {
    for c in 0..D {
        let p = (c..D)
            .max_by(|a, b| h[*a][c].abs().total_cmp(&h[*b][c].abs()))
            .unwrap_or(c);
        h.swap(c, p);
        g.swap(c, p);
        if h[c][c].abs() < 1e-12 {
            continue;
        }
        for r in c + 1..D {
            let f = h[r][c] / h[c][c];
            let (top, bottom) = h.split_at_mut(r);
            for (x, p) in bottom[0][c..].iter_mut().zip(&top[c][c..]) {
                *x -= f * p;
            }
            g[r] -= f * g[c];
        }
    }
    let mut x = [0f64; D];
    for c in (0..D).rev() {
        let s: f64 = (c + 1..D).map(|k| h[c][k] * x[k]).sum();
        x[c] = if h[c][c].abs() < 1e-12 {
            0.0
        } else {
            (g[c] - s) / h[c][c]
        };
    }
    x
}

/// The lowest threshold whose answered set has precision >= `target` over `(confidence,
/// correct)` pairs, with that precision and the share answered; None when none reaches it.
pub fn threshold_for(scored: &[(f32, bool)], target: f32) -> Option<(f32, f32, f32)> {
    let mut s: Vec<(f32, bool)> = scored.to_vec();
    s.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut best = None;
    let mut right = 0usize;
    for (i, (c, ok)) in s.iter().enumerate() {
        right += usize::from(*ok);
        let n = i + 1;
        // Only cut between distinct confidences.
        if s.get(n).is_some_and(|x| x.0 == *c) {
            continue;
        }
        let p = right as f32 / n as f32;
        if p >= target {
            best = Some((*c, p, n as f32 / s.len() as f32));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_separates_and_threshold_meets_precision() {
        let mut data = Vec::new();
        for i in 0..200 {
            let c = 0.7 + 0.002 * i as f32;
            let f = Features {
                cosine: c,
                lead: c - 0.8,
                bm25: 0.0,
                dense: 1.0,
            };
            data.push((f, c > 0.85));
        }
        let w = fit(&data);
        let hi = confidence(&data[190].0, &w);
        let lo = confidence(&data[10].0, &w);
        assert!(hi > 0.9 && lo < 0.1, "{hi} {lo} {w:?}");
        let scored: Vec<(f32, bool)> = data.iter().map(|(f, y)| (confidence(f, &w), *y)).collect();
        let (t, p, share) = threshold_for(&scored, 0.95).unwrap();
        assert!(p >= 0.95 && share > 0.55 && share < 0.7, "{t} {p} {share}");
        assert!(threshold_for(&[(0.9, false)], 0.95).is_none());
    }
}
