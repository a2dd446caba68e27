//! Matching OCR text (and what the customer typed) to the catalog: error-code patterns first,
//! then embedding similarity to each fault's example phrasings, with keywords as a tie-breaker.

use super::catalog::Catalog;
use crate::intents::sim::cosine;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = FaultScore)]
pub struct Scored {
    pub id: String,
    pub title: String,
    pub score: f32,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CodeHit {
    pub fault: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Evidence {
    /// Error-code pattern matches, per fault.
    pub error_codes: Vec<CodeHit>,
    /// Keywords found (fault id: keyword).
    pub matched: Vec<String>,
    /// Failure cues found (`[polarity]` of the catalog); error codes count as failure too.
    pub failure: Vec<String>,
    /// Success cues found. A fault is recognised only with an error code or with more
    /// failure than success evidence.
    pub success: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// Index into the catalog of the recognised fault, when sure enough.
    pub best: Option<usize>,
    pub candidates: Vec<(usize, f32)>,
    pub evidence: Evidence,
    /// Code matches and keyword hits of the top candidate (for evaluation).
    pub top_codes: usize,
    pub top_keywords: usize,
}

/// Thresholds (from `[screenshot]`).
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Similarity at which a fault is recognised without codes or keywords.
    pub similarity: f32,
    /// Similarity at which a fault with a keyword hit is recognised.
    pub with_keyword: f32,
}

/// (fault index, code matches, keyword hits, best similarity)
type Row = (usize, usize, usize, f32);

/// Rank the faults for `text` (OCR text and the customer's text). `queries` are embeddings of
/// the text and of its lines; `examples[i]` the embeddings of fault i's examples.
pub fn rank(
    catalog: &Catalog,
    text: &str,
    queries: &[Vec<f32>],
    examples: &[Vec<Vec<f32>>],
    th: Thresholds,
) -> Ranking {
    // OCR wraps lines mid-phrase: match patterns and keywords on whitespace collapsed to spaces.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = flat.as_str();
    let lower = text.to_lowercase();
    let polarity = catalog.polarity.weigh(&lower);
    let mut evidence = Evidence {
        error_codes: Vec::new(),
        matched: Vec::new(),
        failure: polarity.failure.clone(),
        success: polarity.success.clone(),
    };
    let mut rows: Vec<Row> = Vec::new();
    for (i, f) in catalog.faults.iter().enumerate() {
        let mut codes = 0;
        for r in &f.codes {
            for m in r.find_iter(text).take(3) {
                codes += 1;
                evidence.error_codes.push(CodeHit {
                    fault: f.spec.id.clone(),
                    text: m.as_str().chars().take(80).collect(),
                });
            }
        }
        let mut kws = 0;
        for k in &f.keywords {
            if !k.is_empty() && lower.contains(k.as_str()) {
                kws += 1;
                evidence.matched.push(format!("{}: {k}", f.spec.id));
            }
        }
        let sim = examples
            .get(i)
            .map(|ex| {
                queries
                    .iter()
                    .flat_map(|q| ex.iter().map(move |e| cosine(q, e)))
                    .fold(0.0f32, f32::max)
            })
            .unwrap_or(0.0);
        rows.push((i, codes, kws, sim));
    }
    // Codes first, then similarity nudged by keywords.
    let key = |r: &Row| r.3 + 0.01 * r.2.min(3) as f32;
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(key(b).total_cmp(&key(a))));
    let best = rows.first().and_then(|&(i, codes, kws, sim)| {
        let close = sim >= th.similarity || (kws > 0 && sim >= th.with_keyword);
        (codes > 0 || (close && polarity.failing())).then_some(i)
    });
    let candidates = rows
        .iter()
        .take(3)
        .map(|r| {
            let score = if r.1 > 0 { r.3.max(0.95) } else { r.3 };
            (r.0, score)
        })
        .collect();
    let top = rows.first().map_or((0, 0), |r| (r.1, r.2));
    Ranking {
        best,
        candidates,
        evidence,
        top_codes: top.0,
        top_keywords: top.1,
    }
}
