//! ROUGE-1, ROUGE-2 and ROUGE-L F1 (English by lowercase words, Chinese by characters), with
//! several references scored as the best match, as rouge-score's multi-reference mode does.

use super::sentences::tokens;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Rouge {
    pub rouge1: f64,
    pub rouge2: f64,
    pub rouge_l: f64,
}

fn f1(overlap: usize, cand: usize, reference: usize) -> f64 {
    if overlap == 0 || cand == 0 || reference == 0 {
        return 0.0;
    }
    let p = overlap as f64 / cand as f64;
    let r = overlap as f64 / reference as f64;
    2.0 * p * r / (p + r)
}

fn ngram_f1(c: &[String], r: &[String], n: usize) -> f64 {
    fn grams(t: &[String], n: usize) -> HashMap<&[String], usize> {
        let mut m: HashMap<&[String], usize> = HashMap::new();
        for g in t.windows(n) {
            *m.entry(g).or_default() += 1;
        }
        m
    }
    let (gc, gr) = (grams(c, n), grams(r, n));
    let overlap: usize = gc
        .iter()
        .map(|(g, k)| (*k).min(gr.get(g).copied().unwrap_or(0)))
        .sum();
    f1(
        overlap,
        c.len().saturating_sub(n - 1),
        r.len().saturating_sub(n - 1),
    )
}

fn lcs(a: &[String], b: &[String]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// ROUGE of `candidate` against one reference.
pub fn score(candidate: &str, reference: &str) -> Rouge {
    let (c, r) = (tokens(candidate), tokens(reference));
    Rouge {
        rouge1: ngram_f1(&c, &r, 1),
        rouge2: ngram_f1(&c, &r, 2),
        rouge_l: f1(lcs(&c, &r), c.len(), r.len()),
    }
}

/// Each measure's best value over `references` (0 when there are none).
pub fn score_multi(candidate: &str, references: &[String]) -> Rouge {
    references
        .iter()
        .map(|r| score(candidate, r))
        .fold(Rouge::default(), |a, b| Rouge {
            rouge1: a.rouge1.max(b.rouge1),
            rouge2: a.rouge2.max(b.rouge2),
            rouge_l: a.rouge_l.max(b.rouge_l),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // rouge-score: "the cat sat on the mat" vs "the cat lay on the mat":
        // R1 = 5/6, R2 = 3/5, RL = 5/6.
        let s = score("the cat sat on the mat", "The cat lay on the mat.");
        assert!((s.rouge1 - 5.0 / 6.0).abs() < 1e-9);
        assert!((s.rouge2 - 0.6).abs() < 1e-9);
        assert!((s.rouge_l - 5.0 / 6.0).abs() < 1e-9);
        assert_eq!(score("", "x"), Rouge::default());
        // Chinese by characters: 3 of 4 characters; 1 of 3 bigrams (订单).
        let z = score("订单没到", "订单已到");
        assert!((z.rouge1 - 0.75).abs() < 1e-9, "{z:?}");
        assert!((z.rouge2 - 1.0 / 3.0).abs() < 1e-9, "{z:?}");
        let m = score_multi("a b c", &["x y".into(), "a b d".into()]);
        assert!((m.rouge1 - 2.0 / 3.0).abs() < 1e-9);
    }
}
