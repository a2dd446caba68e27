//! A compact HNSW graph (Malkov & Yashunin) over the rows of a matrix of unit vectors that the
//! caller holds (the dense retriever's): similarity is the dot product, a node is a row number,
//! rows are linked in order as they are added, and a search walks through every row but returns
//! only those a predicate accepts (tombstones, a language filter).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Links per node on the upper layers (twice as many on layer 0).
pub const M: usize = 16;
/// Candidates kept while linking a new node.
pub const EF_CONSTRUCTION: usize = 200;
/// The highest layer a node may get (1 in 16^16 would go higher).
const MAX_LEVEL: usize = 16;

/// A row and its similarity to the query, ordered by similarity (then lower row first).
#[derive(Clone, Copy, PartialEq)]
struct Scored(f32, u32);

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Scored {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(o.1.cmp(&self.1))
    }
}

pub struct Hnsw {
    dim: usize,
    /// Each node's neighbours on each layer it is on (`links[node][layer]`).
    links: Vec<Vec<Vec<u32>>>,
    entry: u32,
    top: usize,
    /// The level draws' state (splitmix64: the same rows give the same graph).
    seed: u64,
}

impl Hnsw {
    pub fn new(dim: usize) -> Hnsw {
        Hnsw {
            dim,
            links: Vec::new(),
            entry: 0,
            top: 0,
            seed: 0x2545_F491_4F6C_DD1D,
        }
    }

    /// Rows linked (rows `0..len()` of the matrix).
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Bytes held by the links.
    pub fn bytes(&self) -> usize {
        self.links
            .iter()
            .map(|n| 24 + n.iter().map(|l| 24 + l.capacity() * 4).sum::<usize>())
            .sum()
    }

    fn row<'a>(&self, data: &'a [f32], r: u32) -> &'a [f32] {
        let r = r as usize;
        &data[r * self.dim..(r + 1) * self.dim]
    }

    fn level(&mut self) -> usize {
        self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // Uniform in (0, 1], then the exponential level of the paper (mL = 1 / ln M).
        let u = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        ((-u.ln() / (M as f64).ln()) as usize).min(MAX_LEVEL)
    }

    /// Link the next row of `data` (row `len()`); `data` holds at least that many rows.
    pub fn insert(&mut self, data: &[f32]) {
        let id = self.links.len() as u32;
        let level = self.level();
        self.links.push(vec![Vec::new(); level + 1]);
        if id == 0 {
            self.entry = 0;
            self.top = level;
            return;
        }
        let q = self.row(data, id);
        let mut ep = Scored(dot(q, self.row(data, self.entry)), self.entry);
        for l in (level + 1..=self.top).rev() {
            ep = self.greedy(data, q, ep, l);
        }
        for l in (0..=level.min(self.top)).rev() {
            let found = self
                .layer(data, q, ep, EF_CONSTRUCTION, l, &|r| r != id, usize::MAX)
                .unwrap_or_default();
            let cap = if l == 0 { 2 * M } else { M };
            let chosen = self.select(data, &found, cap);
            for &Scored(s, nb) in &chosen {
                self.link(data, nb, Scored(s, id), l, cap);
            }
            self.links[id as usize][l] = chosen.iter().map(|s| s.1).collect();
            if let Some(&best) = found.first() {
                ep = best;
            }
        }
        if level > self.top {
            self.top = level;
            self.entry = id;
        }
    }

    /// The `n` rows nearest `q` that `keep` accepts, nearest first, from `ef` candidates; None
    /// when fewer than `n` turned up within `budget` similarity evaluations (then scan).
    pub fn search(
        &self,
        data: &[f32],
        q: &[f32],
        n: usize,
        ef: usize,
        keep: &dyn Fn(u32) -> bool,
        budget: usize,
    ) -> Option<Vec<(f32, u32)>> {
        if self.links.is_empty() || q.len() != self.dim {
            return None;
        }
        let mut ep = Scored(dot(q, self.row(data, self.entry)), self.entry);
        for l in (1..=self.top).rev() {
            ep = self.greedy(data, q, ep, l);
        }
        let found = self.layer(data, q, ep, ef.max(n), 0, keep, budget)?;
        (found.len() >= n).then(|| found[..n].iter().map(|s| (s.0, s.1)).collect())
    }

    /// Walk layer `l` to the nearest row it can reach from `ep`, one best step at a time.
    fn greedy(&self, data: &[f32], q: &[f32], mut ep: Scored, l: usize) -> Scored {
        loop {
            let from = ep.1;
            for &nb in &self.links[from as usize][l] {
                let s = dot(q, self.row(data, nb));
                if s > ep.0 {
                    ep = Scored(s, nb);
                }
            }
            if ep.1 == from {
                return ep;
            }
        }
    }

    /// The best-first search of one layer: the `ef` nearest rows `keep` accepts, nearest first
    /// (rows it rejects are walked through but not returned); None past `budget` evaluations.
    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        data: &[f32],
        q: &[f32],
        ep: Scored,
        ef: usize,
        l: usize,
        keep: &dyn Fn(u32) -> bool,
        budget: usize,
    ) -> Option<Vec<Scored>> {
        let mut seen = vec![0u64; self.links.len().div_ceil(64)];
        seen[ep.1 as usize / 64] |= 1 << (ep.1 % 64);
        let mut todo = BinaryHeap::from([ep]);
        let mut best: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(ef + 1);
        if keep(ep.1) {
            best.push(Reverse(ep));
        }
        let mut evaluated = 1usize;
        while let Some(c) = todo.pop() {
            let worst = best.peek().map_or(f32::NEG_INFINITY, |w| w.0 .0);
            if best.len() >= ef && c.0 < worst {
                break;
            }
            for &nb in &self.links[c.1 as usize][l] {
                let (w, bit) = (nb as usize / 64, 1u64 << (nb % 64));
                if seen[w] & bit != 0 {
                    continue;
                }
                seen[w] |= bit;
                evaluated += 1;
                if evaluated > budget {
                    return None;
                }
                let s = Scored(dot(q, self.row(data, nb)), nb);
                let worst = best.peek().map_or(f32::NEG_INFINITY, |w| w.0 .0);
                if best.len() < ef || s.0 > worst {
                    todo.push(s);
                    if keep(nb) {
                        best.push(Reverse(s));
                        if best.len() > ef {
                            best.pop();
                        }
                    }
                }
            }
        }
        let mut out: Vec<Scored> = best.into_iter().map(|r| r.0).collect();
        out.sort_by(|a, b| b.cmp(a));
        Some(out)
    }

    /// The paper's neighbour heuristic: from `cands` (nearest first) at most `cap` rows, each
    /// nearer the base than to any row chosen before it (links that spread out).
    fn select(&self, data: &[f32], cands: &[Scored], cap: usize) -> Vec<Scored> {
        let mut out: Vec<Scored> = Vec::with_capacity(cap);
        for &c in cands {
            if out.len() == cap {
                break;
            }
            let v = self.row(data, c.1);
            if out.iter().all(|o| dot(v, self.row(data, o.1)) < c.0) {
                out.push(c);
            }
        }
        out
    }

    /// Add the link `to` (with its similarity) to node `from` on layer `l`, pruning the list back
    /// to `cap` with the heuristic when it overflows.
    fn link(&mut self, data: &[f32], from: u32, to: Scored, l: usize, cap: usize) {
        let list = &self.links[from as usize][l];
        if list.len() < cap {
            self.links[from as usize][l].push(to.1);
            return;
        }
        let base = self.row(data, from);
        let mut cands: Vec<Scored> = list
            .iter()
            .map(|&r| Scored(dot(base, self.row(data, r)), r))
            .chain([to])
            .collect();
        cands.sort_by(|a, b| b.cmp(a));
        let kept = self.select(data, &cands, cap);
        self.links[from as usize][l] = kept.into_iter().map(|s| s.1).collect();
    }
}

/// The dot product of two vectors of one width (the cosine of unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight lanes: the compiler vectorises this; a plain fold stays scalar.
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}
