//! One knowledge base in memory: its articles, their passages in BM25 (tantivy) and in the dense
//! matrix, and hybrid search: both retrievers' candidates fused by reciprocal rank, each article
//! once (its best passage), with a calibrated confidence.

use super::bm25::Bm25;
use super::center::Centering;
use super::confidence::{confidence, Features, WEIGHTS};
use super::dense::{Dense, Near};
use super::Article;
use anyhow::Result;
use parking_lot::{RwLock, RwLockUpgradableReadGuard};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An article as indexed: the article, its passages, its key in both retrievers.
#[derive(Debug)]
pub struct Entry {
    pub article: Article,
    pub chunks: Vec<String>,
    key: u64,
}

/// Which retrievers a search uses (the evaluation compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Hybrid,
    Bm25,
    Dense,
}

impl Hit {
    /// What a bot or an agent sends from this hit: the article's `answer`, else the passage
    /// that matched without its title line.
    pub fn reply(&self) -> String {
        match &self.answer {
            Some(a) => a.clone(),
            None => self
                .passage
                .split_once('\n')
                .map_or(self.passage.as_str(), |(_, p)| p)
                .to_string(),
        }
    }

    /// How feedback names this hit as a suggestion: `kb:<knowledge base>/<article id>`.
    pub fn key(&self, kb: &str) -> String {
        format!("kb:{kb}/{}", self.id)
    }
}

/// How the two retrievers' lists are fused.
#[derive(Debug, Clone, Copy)]
pub struct Fusion {
    /// Passages each retriever hands over.
    pub candidates: usize,
    /// Reciprocal rank fusion constant.
    pub rrf_k: f32,
    /// The BM25 rank's weight (the dense rank's is 1).
    pub bm25_weight: f32,
    /// Hybrid mode: a candidate tagged with the query's intent gains this many times the fused
    /// score of a first rank (`1 / (rrf_k + 1)`).
    pub intent_weight: f32,
}

/// How many of the candidates tagged with the question's intent the intent prior lifts.
pub const INTENT_LIFTS: usize = 2;

/// What one search asks.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub text: &'a str,
    /// The text's embedding (unit length).
    pub vec: &'a [f32],
    pub top_k: usize,
    /// Only articles in this language (ISO 639-1).
    pub language: Option<&'a str>,
    pub mode: Mode,
    /// The question's intent (an in-scope label of the intent head), when known: hybrid search
    /// prefers the articles tagged with it.
    pub intent: Option<&'a str>,
}

/// One search hit: an article, the passage that matched best, and how sure the search is.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Hit {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Calibrated probability that this article answers the query.
    pub confidence: f32,
    /// Reciprocal-rank fusion score (the order of the hits).
    pub score: f32,
    /// The passage that matched best, and its number within the article.
    pub passage: String,
    pub chunk: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// Ranks (from 1) in the BM25 and dense candidate lists, when the article was in them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bm25_rank: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dense_rank: Option<u32>,
    /// The BM25 score over the best BM25 score of this query (1 for the top), when ranked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bm25_share: Option<f32>,
    /// Best cosine of the query with the article's passages.
    pub cosine: f32,
    /// What the confidence was computed from.
    #[serde(skip)]
    pub features: Features,
}

/// An article's best ranks in the two candidate lists, and its passage that ranked best.
#[derive(Clone, Copy)]
struct Ranked {
    bm25: Option<u32>,
    bm25_share: Option<f32>,
    dense: Option<u32>,
    chunk: u32,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, u64>,
    by_key: HashMap<u64, Arc<Entry>>,
    dense: Dense,
}

pub struct KbIndex {
    /// Language centring of the dense ranking (None: plain cosine).
    centering: Option<Arc<Centering>>,
    inner: RwLock<Inner>,
    bm25: Bm25,
    next_key: AtomicU64,
}

impl KbIndex {
    /// An empty knowledge base whose dense retriever builds an ANN graph past `ann_min` live
    /// passages (`kb.ann_min_passages`; 0: always exact) and ranks language-centred by
    /// `centering` when given.
    pub fn new(ann_min: usize, centering: Option<Arc<Centering>>) -> Result<KbIndex> {
        Ok(KbIndex {
            centering,
            inner: RwLock::new(Inner {
                dense: Dense::new(ann_min),
                ..Inner::default()
            }),
            bm25: Bm25::new()?,
            next_key: AtomicU64::new(1),
        })
    }

    /// Articles and passages held.
    pub fn size(&self) -> (usize, usize) {
        let g = self.inner.read();
        (g.by_id.len(), g.dense.len())
    }

    /// Bytes held by the dense matrix (tantivy's arena is separate and bounded).
    pub fn dense_bytes(&self) -> usize {
        self.inner.read().dense.bytes()
    }

    /// Give back the spare capacity of the dense matrix (after a bulk load).
    pub fn shrink(&self) {
        self.inner.write().dense.shrink();
    }

    /// The ANN graph's last build time and its bytes, when dense searches go through one.
    pub fn ann_stats(&self) -> Option<(Duration, usize)> {
        self.inner.read().dense.ann_stats()
    }

    /// Build the ANN graph now whatever the size (benchmarks); how long that took.
    pub fn build_ann(&self) -> Duration {
        self.inner.write().dense.build_ann()
    }

    /// The `n` passages nearest `q` by the exact scan (benchmarks, evaluation).
    pub fn dense_exact(&self, q: &[f32], n: usize) -> Vec<Near> {
        self.inner.read().dense.search_exact(q, n, |_| true)
    }

    /// The `n` passages nearest `q` by the ANN graph; None without one or when it found fewer.
    pub fn dense_ann(&self, q: &[f32], n: usize) -> Option<Vec<Near>> {
        self.inner.read().dense.search_ann(q, n, &|_| true)
    }

    /// Every article, by id.
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        let g = self.inner.read();
        let mut v: Vec<Arc<Entry>> = g.by_key.values().cloned().collect();
        v.sort_by(|a, b| a.article.id.cmp(&b.article.id));
        v
    }

    pub fn get(&self, id: &str) -> Option<Arc<Entry>> {
        let g = self.inner.read();
        g.by_id.get(id).and_then(|k| g.by_key.get(k)).cloned()
    }

    /// Write `puts` (article, passages, one unit embedding per passage) and delete `deletes`,
    /// searchable when this returns.
    pub fn apply(
        &self,
        puts: Vec<(Article, Vec<String>, Vec<Vec<f32>>)>,
        deletes: &[String],
    ) -> Result<()> {
        let mut g = self.inner.write();
        let mut gone = Vec::new();
        let ids = puts.iter().map(|p| &p.0.id).chain(deletes);
        for id in ids {
            if let Some(k) = g.by_id.remove(id) {
                g.by_key.remove(&k);
                g.dense.remove(k);
                gone.push(k);
            }
        }
        let mut added = Vec::with_capacity(puts.len());
        for (article, chunks, vectors) in puts {
            let key = self.next_key.fetch_add(1, Ordering::Relaxed);
            let shift = self.centering.as_ref().map(|c| {
                let slot = c.slot(article.language.as_deref());
                (slot, c.shift(slot))
            });
            g.dense.add_shifted(key, &vectors, shift)?;
            g.by_id.insert(article.id.clone(), key);
            let e = Arc::new(Entry {
                article,
                chunks,
                key,
            });
            g.by_key.insert(key, e.clone());
            added.push(e);
        }
        let lists: Vec<(u64, &[String])> =
            added.iter().map(|e| (e.key, e.chunks.as_slice())).collect();
        self.bm25.update(&gone, &lists)?;
        drop(g);
        self.index_if_large();
        Ok(())
    }

    /// Build the dense retriever's graph when the knowledge base has grown past
    /// `kb.ann_min_passages` or a compaction dropped it: under a read lock, so searches go on
    /// (by the exact scan) while it is built; writes wait.
    fn index_if_large(&self) {
        let g = self.inner.upgradable_read();
        if !g.dense.needs_ann() {
            return;
        }
        let (graph, took) = g.dense.make_ann();
        let mut w = RwLockUpgradableReadGuard::upgrade(g);
        tracing::info!(
            passages = w.dense.len(),
            secs = took.as_secs_f64(),
            "kb: ANN graph built"
        );
        w.dense.set_ann(graph, took);
    }

    /// The best `q.top_k` articles for `q` (in `query_language`, for the centring), fused from
    /// `candidates` passages of each retriever.
    pub fn search(
        &self,
        q: &Query<'_>,
        fusion: Fusion,
        query_language: Option<&str>,
    ) -> Result<Vec<Hit>> {
        let Fusion {
            candidates,
            rrf_k,
            bm25_weight,
            intent_weight,
        } = fusion;
        // BM25 alone ranks by its own list whatever its weight in the fusion.
        let bm25_weight = if q.mode == Mode::Bm25 {
            1.0
        } else {
            bm25_weight
        };
        let Query {
            text: query,
            vec: qvec,
            top_k,
            language,
            mode,
            intent,
        } = *q;
        let lexical = if mode == Mode::Dense {
            Vec::new()
        } else {
            // Extra candidates when a language filter will drop some.
            let n = if language.is_some() {
                candidates * 3
            } else {
                candidates
            };
            self.bm25.search(query, n)?
        };
        let g = self.inner.read();
        // Without a language every live row is kept: no lookup per row of the dense scan.
        let keep = |k: u64| match language {
            None => true,
            Some(l) => g
                .by_key
                .get(&k)
                .is_some_and(|e| e.article.language.as_deref() == Some(l)),
        };
        let near = if mode == Mode::Bm25 {
            Vec::new()
        } else {
            match &self.centering {
                Some(c) => {
                    let qc = c.apply(qvec, query_language);
                    let offsets = c.offsets(&qc);
                    g.dense
                        .search_centred(&qc, Some(&offsets), candidates, keep)
                }
                None => g.dense.search(qvec, candidates, keep),
            }
        };
        // Each article once, at its best rank in each list, with the passage that ranked it.
        let mut by: HashMap<u64, Ranked> = HashMap::new();
        let top_score = lexical.first().map_or(1.0, |f| f.score.max(1e-6));
        let mut rank = 0u32;
        for f in lexical.iter().filter(|f| keep(f.key)) {
            by.entry(f.key).or_insert_with(|| {
                rank += 1;
                Ranked {
                    bm25: Some(rank),
                    bm25_share: Some(f.score / top_score),
                    dense: None,
                    chunk: f.chunk,
                }
            });
            if rank as usize >= candidates {
                break;
            }
        }
        rank = 0;
        for n in &near {
            let slot = by.entry(n.key).or_insert(Ranked {
                bm25: None,
                bm25_share: None,
                dense: None,
                chunk: n.chunk,
            });
            if slot.dense.is_none() {
                rank += 1;
                slot.dense = Some(rank);
                if slot.bm25.is_none() || mode == Mode::Dense {
                    slot.chunk = n.chunk;
                }
            }
        }
        let rrf = |r: Option<u32>| r.map_or(0.0, |r| 1.0 / (rrf_k + r as f32));
        let mut hits: Vec<(f32, f32, u64, Ranked)> = by
            .into_iter()
            .map(|(key, r)| {
                let cos = g.dense.best_cosine(key, qvec);
                (bm25_weight * rrf(r.bm25) + rrf(r.dense), cos, key, r)
            })
            .collect();
        let order = |a: &(f32, f32, u64, Ranked), b: &(f32, f32, u64, Ranked)| {
            b.0.total_cmp(&a.0)
                .then(b.1.total_cmp(&a.1))
                .then(a.2.cmp(&b.2))
        };
        hits.sort_by(order);
        // The intent prior, only in the fusion (each retriever alone ranks by its own list): the
        // best `INTENT_LIFTS` candidates tagged with the question's intent gain `intent_weight`
        // first ranks; the others keep their place, so a wrong intent still leaves the fused
        // ranking below them.
        if let Some(i) = intent.filter(|_| mode == Mode::Hybrid && intent_weight > 0.0) {
            let tagged = |key: u64| {
                g.by_key
                    .get(&key)
                    .is_some_and(|e| e.article.tags.iter().any(|t| t == i))
            };
            for h in hits.iter_mut().filter(|h| tagged(h.2)).take(INTENT_LIFTS) {
                h.0 += intent_weight / (rrf_k + 1.0);
            }
            hits.sort_by(order);
        }
        let mut out = Vec::with_capacity(hits.len());
        for (
            score,
            cos,
            key,
            Ranked {
                bm25: b,
                dense: d,
                chunk,
                bm25_share,
            },
        ) in hits
        {
            let Some(e) = g.by_key.get(&key) else {
                continue;
            };
            let a = &e.article;
            out.push(Hit {
                id: a.id.clone(),
                title: a.title.clone(),
                language: a.language.clone(),
                confidence: 0.0,
                score,
                passage: e.chunks.get(chunk as usize).cloned().unwrap_or_default(),
                chunk,
                answer: a.answer.clone(),
                tags: a.tags.clone(),
                steps: a.steps.clone(),
                bm25_rank: b,
                dense_rank: d,
                bm25_share,
                cosine: cos,
                features: Features::default(),
            });
        }
        // Features over every fused hit (a hit's lead does not depend on top_k).
        let features = Self::features(&out);
        for (h, f) in out.iter_mut().zip(features) {
            h.confidence = confidence(&f, &WEIGHTS);
            h.features = f;
        }
        out.truncate(top_k);
        Ok(out)
    }

    /// The features of each of `hits` (all the fused hits of one search).
    fn features(hits: &[Hit]) -> Vec<Features> {
        // The three best cosines: a hit's lead is over the best others.
        let mut top = [f32::MIN; 3];
        for h in hits {
            if h.cosine > top[0] {
                top = [h.cosine, top[0], top[1]];
            } else if h.cosine > top[1] {
                top = [top[0], h.cosine, top[1]];
            } else if h.cosine > top[2] {
                top[2] = h.cosine;
            }
        }
        let lead = |c: f32, other: f32| if other == f32::MIN { c } else { c - other };
        hits.iter()
            .map(|h| {
                // The best two cosines of the other hits.
                let (o1, o2) = if h.cosine >= top[0] {
                    (top[1], top[2])
                } else if h.cosine >= top[1] {
                    (top[0], top[2])
                } else {
                    (top[0], top[1])
                };
                Features {
                    cosine: h.cosine,
                    lead: lead(h.cosine, o1),
                    lead2: lead(h.cosine, o2),
                    bm25: h.bm25_rank.map_or(0.0, |r| 1.0 / r as f32),
                    dense: h.dense_rank.map_or(0.0, |r| 1.0 / r as f32),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(from: usize, to: usize) -> Vec<(Article, Vec<String>, Vec<Vec<f32>>)> {
        (from..to)
            .map(|i| {
                let v: Vec<f32> = (0..16).map(|j| ((i * 31 + j * 17) as f32).sin()).collect();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                let article = Article {
                    id: format!("a{i}"),
                    title: format!("t{i}"),
                    body: format!("body {i}"),
                    answer: None,
                    language: Some(if i % 10 == 0 { "zh" } else { "en" }.into()),
                    tags: Vec::new(),
                    steps: Vec::new(),
                };
                (
                    article,
                    vec![format!("p{i}")],
                    vec![v.iter().map(|x| x / n).collect()],
                )
            })
            .collect()
    }

    #[test]
    fn the_intent_prior_lifts_tagged_articles_in_hybrid_search_only() {
        let ix = KbIndex::new(0, None).unwrap();
        let mut rows = put(0, 30);
        rows[20].0.tags = vec!["refund".into()];
        for r in &mut rows[25..28] {
            r.0.tags = vec!["track".into()];
        }
        ix.apply(rows, &[]).unwrap();
        let q = put(3, 4).remove(0).2.remove(0);
        let ranked = |intent| {
            let fusion = Fusion {
                candidates: 30,
                rrf_k: 20.0,
                bm25_weight: 0.5,
                intent_weight: 1.0,
            };
            let query = Query {
                text: "nothing matches",
                vec: &q,
                top_k: 30,
                language: None,
                mode: Mode::Hybrid,
                intent,
            };
            let hits = ix.search(&query, fusion, None).unwrap();
            hits.into_iter().map(|h| h.id).collect::<Vec<_>>()
        };
        // (A text no passage has: the dense ranks alone, a3 first.) Three articles of the intent:
        // the best two are lifted over it, the third keeps its place.
        let (plain, lifted) = (ranked(None), ranked(Some("track")));
        let tracked: Vec<&String> = plain
            .iter()
            .filter(|i| ["a25", "a26", "a27"].contains(&i.as_str()))
            .collect();
        assert_eq!(&lifted[..2], &[tracked[0].clone(), tracked[1].clone()]);
        assert_eq!(lifted[2], "a3");
        let at = |v: &[String], id: &String| v.iter().position(|x| x == id);
        assert!(at(&lifted, tracked[2]) >= at(&plain, tracked[2]));
        let search = |mode, intent, intent_weight| {
            let fusion = Fusion {
                candidates: 30,
                rrf_k: 20.0,
                bm25_weight: 0.5,
                intent_weight,
            };
            let query = Query {
                text: "nothing matches",
                vec: &q,
                top_k: 5,
                language: None,
                mode,
                intent,
            };
            ix.search(&query, fusion, None).unwrap()[0].id.clone()
        };
        assert_eq!(search(Mode::Hybrid, None, 1.0), "a3");
        assert_eq!(search(Mode::Hybrid, Some("refund"), 1.0), "a20");
        assert_eq!(search(Mode::Hybrid, Some("refund"), 0.0), "a3");
        assert_eq!(search(Mode::Hybrid, Some("other"), 1.0), "a3");
        assert_eq!(search(Mode::Dense, Some("refund"), 1.0), "a3");
    }

    #[test]
    fn writes_build_the_graph_past_the_threshold_and_compaction_rebuilds_it() {
        let ix = KbIndex::new(1000, None).unwrap();
        ix.apply(put(0, 1000), &[]).unwrap();
        assert!(ix.ann_stats().is_none(), "at the threshold: exact");
        ix.apply(put(1000, 2500), &[]).unwrap();
        assert!(ix.ann_stats().is_some(), "past it: the graph");
        let fusion = Fusion {
            candidates: 40,
            rrf_k: 20.0,
            bm25_weight: 0.5,
            intent_weight: 0.0,
        };
        let q = put(7, 8).remove(0).2.remove(0);
        let search = |language| {
            let query = Query {
                text: "p7",
                vec: &q,
                top_k: 40,
                language,
                mode: Mode::Dense,
                intent: None,
            };
            ix.search(&query, fusion, None).unwrap()
        };
        assert_eq!(search(None)[0].id, "a7");
        let zh = search(Some("zh"));
        assert_eq!(zh.len(), 40);
        assert!(zh.iter().all(|h| h.language.as_deref() == Some("zh")));
        // Deleting most articles compacts the rows and drops the graph; it is rebuilt after.
        let gone: Vec<String> = (1000..2400).map(|i| format!("a{i}")).collect();
        ix.apply(Vec::new(), &gone).unwrap();
        assert_eq!(ix.size(), (1100, 1100));
        assert!(ix.ann_stats().is_some());
        assert_eq!(search(None)[0].id, "a7");
        assert_eq!(search(Some("zh")).len(), 40);
    }
}
