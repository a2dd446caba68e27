//! Deterministic threshold clustering of unit embeddings ("community detection"): the text with
//! the most neighbours (cosine >= threshold) founds a cluster of its unclaimed neighbours when
//! they are at least `min_size`; repeat. Memory stays linear: neighbour counts first, then one
//! similarity row per founder.

use super::sim::{centroid, dot, for_each_row};
use anyhow::Result;

/// Clusters as lists of indices into `vectors`, largest first (ties: earliest founder first);
/// texts in no cluster are left out.
pub fn cluster(vectors: &[Vec<f32>], threshold: f32, min_size: usize) -> Result<Vec<Vec<usize>>> {
    let n = vectors.len();
    let mut counts = vec![0usize; n];
    for_each_row(vectors, vectors, |i, row| {
        counts[i] = row.iter().filter(|s| **s >= threshold).count();
    })?;
    let mut order: Vec<usize> = (0..n).filter(|&i| counts[i] >= min_size).collect();
    order.sort_by(|a, b| counts[*b].cmp(&counts[*a]).then(a.cmp(b)));
    let mut taken = vec![false; n];
    let mut clusters: Vec<Vec<usize>> = Vec::new();
    for p in order {
        if taken[p] {
            continue;
        }
        let members: Vec<usize> = (0..n)
            .filter(|&j| !taken[j] && (j == p || dot(&vectors[p], &vectors[j]) >= threshold))
            .collect();
        if members.len() >= min_size {
            for &j in &members {
                taken[j] = true;
            }
            clusters.push(members);
        }
    }
    // Stable: equal sizes keep their founding order.
    clusters.sort_by_key(|c| std::cmp::Reverse(c.len()));
    Ok(clusters)
}

/// Members of a cluster ordered by similarity to its centroid, most central first.
pub fn by_centrality(vectors: &[Vec<f32>], members: &[usize]) -> Vec<(usize, f32)> {
    let vs: Vec<Vec<f32>> = members.iter().map(|&i| vectors[i].clone()).collect();
    let c = centroid(&vs);
    let mut out: Vec<(usize, f32)> = members.iter().map(|&i| (i, dot(&vectors[i], &c))).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intents::sim::normalize;

    #[test]
    fn groups_close_vectors_and_leaves_outliers() {
        let v: Vec<Vec<f32>> = [
            [1.0, 0.05, 0.0],
            [0.0, 1.0, 0.0],
            [1.0, 0.0, 0.05],
            [0.05, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [1.0, 0.02, 0.02],
            [0.0, 1.0, 0.05],
        ]
        .iter()
        .map(|r| normalize(r.to_vec()))
        .collect();
        let c = cluster(&v, 0.95, 2).unwrap();
        assert_eq!(c, vec![vec![0, 2, 5], vec![1, 3, 6]]);
        assert!(cluster(&v, 0.95, 4).unwrap().is_empty());
        assert!(cluster(&[], 0.9, 2).unwrap().is_empty());
        assert_eq!(by_centrality(&v, &[0, 2, 5])[0].0, 5);
    }
}
