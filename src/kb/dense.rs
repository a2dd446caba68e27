//! Dense retrieval over one knowledge base's passage embeddings: exact cosine (the embeddings
//! are unit length, so a dot product) over one contiguous matrix, rows of deleted articles
//! marked dead and compacted away once they are half of it. Optionally language-centred
//! (`center.rs`): the matrix keeps the embeddings as they are (cosines stay comparable), and
//! each row remembers its language's slot and the length of its shifted vector, so a scan ranks
//! by the centred cosine `(q'.v - q'.s) / |v - s|` at the cost of one multiply per row.

use std::collections::HashMap;

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
}

impl Dense {
    /// Live passages.
    pub fn len(&self) -> usize {
        self.rows.len() - self.dead
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the matrix and its row table.
    pub fn bytes(&self) -> usize {
        self.data.capacity() * 4 + self.rows.capacity() * 16 + self.meta.capacity() * 8
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
        Ok(())
    }

    /// The `n` passages nearest `q`, nearest first, keeping those `keep` accepts.
    pub fn search(&self, q: &[f32], n: usize, keep: impl Fn(u64) -> bool) -> Vec<Near> {
        self.search_centred(q, None, n, keep)
    }

    /// `search` by the centred cosine when `offsets` (q'.shift per slot, `q` being the centred
    /// query) is given; `cosine` in the result is then the centred one.
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
        // A bounded min-heap by score would save little at these sizes: a partial sort of the
        // scores is a few milliseconds at 100k passages.
        let mut scored: Vec<(f32, usize)> = self
            .data
            .chunks_exact(self.dim)
            .enumerate()
            .filter(|(r, _)| self.rows[*r].0 != 0 && keep(self.rows[*r].0))
            .map(|(r, v)| (score(r, dot(q, v)), r))
            .collect();
        let n = n.min(scored.len());
        if n == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(n - 1, |a, b| b.0.total_cmp(&a.0));
        scored.truncate(n);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored
            .into_iter()
            .map(|(c, r)| Near {
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
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
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
}
