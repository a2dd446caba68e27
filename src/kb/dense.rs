//! Dense retrieval over one knowledge base's passage embeddings: cosine (the embeddings are unit
//! length, so a dot product) over one contiguous matrix, rows of deleted articles marked dead and
//! compacted away once they are half of it. Exact while the knowledge base is small; past
//! `kb.ann_min_passages` live passages an HNSW graph over the rows answers searches (new rows are
//! linked as they are added, dead rows are walked through but never returned, compaction
//! rebuilds it), and the exact scan still answers whatever the graph cannot fill. Optionally
//! language-centred (`center.rs`): the matrix keeps the embeddings as they are (cosines stay
//! comparable), and each row remembers its language's slot and the length of its shifted
//! vector, so a scan ranks by the centred cosine `(q'.v - q'.s) / |v - s|` at the cost of one
//! multiply per row (the graph, over the raw rows, proposes twice the candidates to re-rank).

use super::hnsw::{dot, Hnsw};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Candidates a graph search keeps: at least this many, and twice the passages asked for.
pub const EF_SEARCH: usize = 128;

/// A passage found by embedding: the article's key, the passage's number, the cosine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    pub key: u64,
    pub chunk: u32,
    pub cosine: f32,
}

#[derive(Default)]
pub struct Dense {
    dim: usize,
    data: Vec<f32>,
    /// (article key, passage number) of each row; key 0 marks a dead row.
    rows: Vec<(u64, u32)>,
    /// Rows of each live article.
    of_key: HashMap<u64, Vec<usize>>,
    /// Per row: its language's centring slot and 1 / |v - shift| (slot 0 and 1 when added
    /// without a shift).
    meta: Vec<(u8, f32)>,
    dead: usize,
    /// Live passages past which the graph is built (0: never).
    ann_min: usize,
    /// The graph over rows `0..ann.len()`, once built.
    ann: Option<Hnsw>,
    /// How long the last graph build took.
    ann_took: Duration,
}

impl Dense {
    /// An empty index that builds its graph past `ann_min` live passages (0: never).
    pub fn new(ann_min: usize) -> Dense {
        Dense {
            ann_min,
            ..Dense::default()
        }
    }

    /// Whether searches go through the graph.
    pub fn has_ann(&self) -> bool {
        self.ann.is_some()
    }

    /// The graph's last build time and the bytes its links hold, when there is one.
    pub fn ann_stats(&self) -> Option<(Duration, usize)> {
        self.ann.as_ref().map(|g| (self.ann_took, g.bytes()))
    }

    /// Live passages.
    pub fn len(&self) -> usize {
        self.rows.len() - self.dead
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the matrix, its row table and the graph.
    pub fn bytes(&self) -> usize {
        self.data.capacity() * 4
            + self.rows.capacity() * 16
            + self.meta.capacity() * 8
            + self.ann.as_ref().map_or(0, Hnsw::bytes)
    }

    /// Drop the rows of `key` (a no-op for an unknown key).
    pub fn remove(&mut self, key: u64) {
        if let Some(rows) = self.of_key.remove(&key) {
            for r in rows {
                self.rows[r].0 = 0;
                self.dead += 1;
            }
        }
        if self.dead > 1024 && self.dead * 2 > self.rows.len() {
            self.compact();
        }
    }

    /// Add the passage embeddings of article `key` (non-zero), unit length, all one width.
    pub fn add(&mut self, key: u64, vectors: &[Vec<f32>]) -> anyhow::Result<()> {
        self.add_shifted(key, vectors, None)
    }

    /// `add`, with the centring `(slot, shift)` of the article's language.
    pub fn add_shifted(
        &mut self,
        key: u64,
        vectors: &[Vec<f32>],
        shift: Option<(u8, &[f32])>,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(key != 0, "kb: article key 0 is reserved");
        for (i, v) in vectors.iter().enumerate() {
            if self.dim == 0 {
                self.dim = v.len();
            }
            anyhow::ensure!(
                v.len() == self.dim,
                "kb: embedding of width {} in an index of width {}",
                v.len(),
                self.dim
            );
            let row = self.rows.len();
            let meta = match shift {
                Some((slot, s)) if s.len() == v.len() => {
                    let n = v.iter().zip(s).map(|(x, y)| (x - y) * (x - y)).sum::<f32>();
                    (slot, if n > 0.0 { 1.0 / n.sqrt() } else { 1.0 })
                }
                _ => (0, 1.0),
            };
            self.meta.push(meta);
            self.data.extend_from_slice(v);
            self.rows.push((key, i as u32));
            self.of_key.entry(key).or_default().push(row);
        }
        if let Some(g) = &mut self.ann {
            while g.len() < self.rows.len() {
                g.insert(&self.data);
            }
        }
        Ok(())
    }

    /// Whether a graph should be built: there is none and more than `ann_min` passages are live
    /// (after a bulk load, the write that crosses the size, or a compaction; writes in between
    /// link their rows into an existing graph).
    pub fn needs_ann(&self) -> bool {
        self.ann.is_none() && self.ann_min > 0 && self.len() > self.ann_min && self.dim > 0
    }

    /// A graph over every row (whatever the size), and how long it took to build.
    pub(super) fn make_ann(&self) -> (Hnsw, Duration) {
        let t = Instant::now();
        let mut g = Hnsw::new(self.dim);
        for _ in 0..self.rows.len() {
            g.insert(&self.data);
        }
        (g, t.elapsed())
    }

    /// Search through `g`, made by `make_ann` over the rows there are now.
    pub(super) fn set_ann(&mut self, g: Hnsw, took: Duration) {
        debug_assert_eq!(g.len(), self.rows.len());
        self.ann = Some(g);
        self.ann_took = took;
    }

    /// Build the graph if `needs_ann`.
    pub fn index_if_large(&mut self) {
        if self.needs_ann() {
            let (g, took) = self.make_ann();
            self.set_ann(g, took);
        }
    }

    /// Build the graph over every row now, whatever the size; how long that took (an empty
    /// index, whose width is not known yet, gets none).
    pub fn build_ann(&mut self) -> Duration {
        if self.dim == 0 {
            return Duration::ZERO;
        }
        let (g, took) = self.make_ann();
        self.set_ann(g, took);
        took
    }

    /// The `n` passages nearest `q`, nearest first, keeping those `keep` accepts: from the graph
    /// when there is one and it finds `n`, else by the exact scan.
    pub fn search(&self, q: &[f32], n: usize, keep: impl Fn(u64) -> bool) -> Vec<Near> {
        self.search_centred(q, None, n, keep)
    }

    /// `search` by the centred cosine when `offsets` (q'.shift per slot, `q` being the centred
    /// query) is given; `cosine` in the result is then the centred one. The graph, when there
    /// is one, proposes twice `n` candidates by the plain dot product to re-rank.
    pub fn search_centred(
        &self,
        q: &[f32],
        offsets: Option<&[f32]>,
        n: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Vec<Near> {
        if self.dim == 0 || q.len() != self.dim || n == 0 {
            return Vec::new();
        }
        let score = |r: usize, d: f32| match offsets {
            None => d,
            Some(o) => {
                let (slot, inv) = self.meta[r];
                (d - o.get(slot as usize).copied().unwrap_or(0.0)) * inv
            }
        };
        let wide = if offsets.is_some() { 2 * n } else { n };
        let mut scored: Vec<(f32, usize)> = match self.ann_rows(q, wide, &keep) {
            Some(found) if found.len() >= n => {
                found.into_iter().map(|(d, r)| (score(r, d), r)).collect()
            }
            _ => self.scan(q, &keep, score),
        };
        self.nearest(&mut scored, n)
    }

    /// The `n` passages nearest `q` by the graph (plain cosine); None without a graph, for an
    /// empty query, or when the graph found fewer than `n` that `keep` accepts within the
    /// scan's cost.
    pub fn search_ann(&self, q: &[f32], n: usize, keep: &dyn Fn(u64) -> bool) -> Option<Vec<Near>> {
        let mut found: Vec<(f32, usize)> = self.ann_rows(q, n, keep)?;
        Some(self.nearest(&mut found, n))
    }

    /// (dot product, row) of up to `n` rows the graph finds for `q` among those `keep` accepts.
    fn ann_rows(
        &self,
        q: &[f32],
        n: usize,
        keep: &dyn Fn(u64) -> bool,
    ) -> Option<Vec<(f32, usize)>> {
        let g = self.ann.as_ref()?;
        if self.dim == 0 || q.len() != self.dim || n == 0 {
            return None;
        }
        let live = |r: u32| {
            let key = self.rows[r as usize].0;
            key != 0 && keep(key)
        };
        let ef = EF_SEARCH.max(2 * n);
        // A walk past half the rows costs about what the scan does (its reads are scattered).
        let budget = (self.rows.len() / 2).max(32 * ef);
        let found = g.search(&self.data, q, n, ef, &live, budget)?;
        Some(found.into_iter().map(|(c, r)| (c, r as usize)).collect())
    }

    /// The `n` passages nearest `q` by cosine with every live row `keep` accepts.
    pub fn search_exact(&self, q: &[f32], n: usize, keep: impl Fn(u64) -> bool) -> Vec<Near> {
        if self.dim == 0 || q.len() != self.dim || n == 0 {
            return Vec::new();
        }
        let mut scored = self.scan(q, &keep, |_, d| d);
        self.nearest(&mut scored, n)
    }

    /// (score, row) of every live row `keep` accepts: `score(row, q . v)`.
    fn scan(
        &self,
        q: &[f32],
        keep: &dyn Fn(u64) -> bool,
        score: impl Fn(usize, f32) -> f32,
    ) -> Vec<(f32, usize)> {
        self.data
            .chunks_exact(self.dim)
            .enumerate()
            .filter(|(r, _)| self.rows[*r].0 != 0 && keep(self.rows[*r].0))
            .map(|(r, v)| (score(r, dot(q, v)), r))
            .collect()
    }

    /// The best `n` of `scored` (score, row), best first, as passages.
    fn nearest(&self, scored: &mut Vec<(f32, usize)>, n: usize) -> Vec<Near> {
        // A bounded min-heap by score would save little at these sizes: a partial sort of the
        // scores is a few milliseconds at 100k passages.
        let n = n.min(scored.len());
        if n == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(n - 1, |a, b| b.0.total_cmp(&a.0));
        scored.truncate(n);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored
            .iter()
            .map(|&(c, r)| Near {
                key: self.rows[r].0,
                chunk: self.rows[r].1,
                cosine: c,
            })
            .collect()
    }

    /// Give back the spare capacity of a fully built matrix.
    pub fn shrink(&mut self) {
        self.data.shrink_to_fit();
        self.rows.shrink_to_fit();
        self.meta.shrink_to_fit();
    }

    /// The best cosine of `q` with the passages of `key` (-1 when it has none).
    pub fn best_cosine(&self, key: u64, q: &[f32]) -> f32 {
        let Some(rows) = self.of_key.get(&key) else {
            return -1.0;
        };
        if q.len() != self.dim {
            return -1.0;
        }
        rows.iter()
            .map(|r| dot(q, &self.data[r * self.dim..(r + 1) * self.dim]))
            .fold(-1.0, f32::max)
    }

    fn compact(&mut self) {
        let mut data = Vec::with_capacity(self.len() * self.dim);
        let mut rows = Vec::with_capacity(self.len());
        let mut meta = Vec::with_capacity(self.len());
        self.of_key.clear();
        for (r, &(key, chunk)) in self.rows.iter().enumerate() {
            if key == 0 {
                continue;
            }
            self.of_key.entry(key).or_default().push(rows.len());
            rows.push((key, chunk));
            meta.push(self.meta[r]);
            data.extend_from_slice(&self.data[r * self.dim..(r + 1) * self.dim]);
        }
        self.data = data;
        self.rows = rows;
        self.meta = meta;
        self.dead = 0;
        // Row numbers changed: the graph goes (the exact scan answers until the owner rebuilds it,
        // see `needs_ann`).
        self.ann = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn nearest_first_and_deletes_compact() {
        let mut d = Dense::default();
        d.add(1, &[unit(&[1.0, 0.0]), unit(&[0.7, 0.7])]).unwrap();
        d.add(2, &[unit(&[0.0, 1.0])]).unwrap();
        assert!(d.add(3, &[vec![1.0, 0.0, 0.0]]).is_err());
        let n = d.search(&unit(&[0.1, 1.0]), 2, |_| true);
        assert_eq!((n[0].key, n[1].key, n[1].chunk), (2, 1, 1));
        assert_eq!(d.search(&unit(&[0.1, 1.0]), 5, |k| k != 2).len(), 2);
        d.remove(2);
        assert_eq!(d.len(), 2);
        for k in 10..3000u64 {
            d.add(k, &[unit(&[1.0, k as f32])]).unwrap();
            d.remove(k);
        }
        assert_eq!(d.len(), 2);
        assert!(d.rows.len() < 2100, "compacted: {}", d.rows.len());
        assert_eq!(d.search(&unit(&[1.0, 0.0]), 1, |_| true)[0].key, 1);
    }

    #[test]
    fn centred_scores_equal_the_cosine_of_shifted_vectors() {
        let shift = [0.3f32, 0.1, 0.0];
        let vs = [
            unit(&[1.0, 0.2, 0.1]),
            unit(&[0.1, 1.0, 0.3]),
            unit(&[0.2, 0.2, 1.0]),
        ];
        let mut d = Dense::default();
        for (i, v) in vs.iter().enumerate() {
            d.add_shifted(i as u64 + 1, std::slice::from_ref(v), Some((1, &shift)))
                .unwrap();
        }
        let q = unit(&[0.5, 0.9, 0.1]);
        let offsets = [0.0, q.iter().zip(&shift).map(|(a, b)| a * b).sum::<f32>()];
        let got = d.search_centred(&q, Some(&offsets), 3, |_| true);
        for n in got {
            let v = &vs[n.key as usize - 1];
            let c = unit(&v.iter().zip(&shift).map(|(a, b)| a - b).collect::<Vec<_>>());
            let want: f32 = q.iter().zip(&c).map(|(a, b)| a * b).sum();
            assert!((n.cosine - want).abs() < 1e-5, "{} vs {want}", n.cosine);
        }
    }

    #[test]
    fn the_graph_proposes_candidates_for_the_centred_ranking() {
        let vs = random(3000, 32, 7);
        let shifts = [random(1, 32, 8).remove(0), random(1, 32, 9).remove(0)];
        let (mut graph, mut scan) = (Dense::new(500), Dense::new(0));
        for (i, v) in vs.iter().enumerate() {
            let slot = (i % 2) as u8;
            let shift = Some((
                slot,
                &shifts[i % 2].iter().map(|x| x * 0.3).collect::<Vec<_>>()[..],
            ));
            graph
                .add_shifted(i as u64 + 1, std::slice::from_ref(v), shift)
                .unwrap();
            scan.add_shifted(i as u64 + 1, std::slice::from_ref(v), shift)
                .unwrap();
        }
        graph.index_if_large();
        assert!(graph.has_ann() && !scan.has_ann());
        let mut hit = 0;
        for q in random(50, 32, 10) {
            let offsets: Vec<f32> = shifts
                .iter()
                .map(|s| q.iter().zip(s).map(|(a, b)| a * b * 0.3).sum())
                .collect();
            let exact = scan.search_centred(&q, Some(&offsets), 10, |_| true);
            let approx = graph.search_centred(&q, Some(&offsets), 10, |_| true);
            assert_eq!(approx.len(), 10);
            assert!(approx.windows(2).all(|w| w[0].cosine >= w[1].cosine));
            hit += approx
                .iter()
                .filter(|a| exact.iter().any(|e| e.key == a.key))
                .count();
        }
        assert!(
            hit as f32 / 500.0 >= 0.85,
            "centred recall@10 {}",
            hit as f32 / 500.0
        );
    }

    fn random(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                unit(
                    &(0..dim)
                        .map(|_| rng.random::<f32>() - 0.5)
                        .collect::<Vec<_>>(),
                )
            })
            .collect()
    }

    /// Mean recall@10 of the graph against the exact scan, checking both keep to `keep`.
    fn recall(d: &Dense, queries: &[Vec<f32>], keep: impl Fn(u64) -> bool) -> f32 {
        let mut hit = 0;
        for q in queries {
            let exact = d.search_exact(q, 10, &keep);
            let ann = d.search_ann(q, 10, &keep).expect("the graph finds 10");
            assert!(ann.iter().all(|n| keep(n.key)));
            assert!(ann.windows(2).all(|w| w[0].cosine >= w[1].cosine));
            hit += ann
                .iter()
                .filter(|a| exact.iter().any(|e| (e.key, e.chunk) == (a.key, a.chunk)))
                .count();
        }
        hit as f32 / (10 * queries.len()) as f32
    }

    #[test]
    fn ann_recall_deletes_filter_fallback_and_rebuild() {
        let vs = random(3000, 32, 7);
        let queries = random(100, 32, 8);
        // 1000 articles of three passages: the first half loaded in bulk, then the graph built,
        // the rest linked as they are added.
        let mut d = Dense::new(500);
        for (i, c) in vs[..1500].chunks(3).enumerate() {
            d.add(i as u64 + 1, c).unwrap();
        }
        assert!(!d.has_ann());
        d.index_if_large();
        assert!(d.has_ann());
        for (i, c) in vs[1500..].chunks(3).enumerate() {
            d.add(i as u64 + 501, c).unwrap();
        }
        let r = recall(&d, &queries, |_| true);
        assert!(r >= 0.9, "recall@10 {r}");
        // Deleted articles are never returned.
        for k in (3..=1000).step_by(3) {
            d.remove(k);
        }
        let r = recall(&d, &queries, |k| k % 3 != 0);
        assert!(r >= 0.9, "recall@10 after deletes {r}");
        // A filter that leaves few rows: still n results (the scan fills in), and when fewer
        // than n are left, all of them.
        let few = |k: u64| k <= 12;
        for q in &queries[..10] {
            let got = d.search(q, 5, few);
            assert_eq!(got.len(), 5);
            assert!(got.iter().all(|n| n.key <= 12 && n.key % 3 != 0));
            let all = d.search(q, 50, few);
            assert_eq!(all, d.search_exact(q, 50, few));
            assert_eq!(all.len(), 8 * 3);
        }
        // Compaction renumbers the rows: the graph is rebuilt over the live ones.
        for k in (1..=1000).step_by(3) {
            d.remove(k);
        }
        assert!(d.rows.len() < 3000 && d.len() == 999, "compacted");
        assert!(!d.has_ann() && d.needs_ann());
        d.index_if_large();
        assert_eq!(d.ann.as_ref().map(Hnsw::len), Some(d.rows.len()));
        let r = recall(&d, &queries, |_| true);
        assert!(r >= 0.9, "recall@10 after compaction {r}");
        // Below the threshold a compaction drops the graph: exact again.
        for k in (2..=1000).step_by(3).take(200) {
            d.remove(k);
        }
        assert!(d.len() < 500 && !d.has_ann() && !d.needs_ann());
    }
}
