//! Knowledge bases in the store: articles with their chunks and chunk embeddings
//! (`kb_articles`), written a whole batch per transaction, and the agents' feedback on
//! suggestions (`kb_feedback`). Both backends (`sqlite/kb.rs`, `pg/kb.rs`); on PostgreSQL every
//! article write also sends `NOTIFY triage_reload, 'kb:<kb>'` so other replicas re-read it.
//! Embeddings are kept as one little-endian f32 blob per article with its `dim`.

use super::{Backend, Store};
use crate::error::{AppError, AppResult};
use std::collections::HashSet;

/// One stored knowledge-base article with its chunks and their embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct KbRow {
    pub kb: String,
    pub id: String,
    /// The article, as JSON text (the kb service's type; the store does not parse it).
    pub article: String,
    /// The encoder that embedded the chunks.
    pub model: String,
    /// Chunk texts, in order.
    pub chunks: Vec<String>,
    /// One embedding per chunk, all the same length (may be empty vectors when chunks is empty).
    pub vectors: Vec<Vec<f32>>,
    /// Set by the store on write (ms since epoch); ignored on input.
    pub updated_ms: i64,
}

/// NOTIFY payloads stay under this (PostgreSQL's limit is 8000 bytes).
const MAX_RELOAD_PAYLOAD: usize = 7000;

/// What a write tells the other replicas: `kb:<kb>`, then the written or deleted ids one per
/// line when they fit (a replica re-reads just those rows), else the name alone (it re-reads the
/// whole knowledge base). Ids and names never hold a newline (checked on write).
pub fn reload_payload(kb: &str, ids: &[&str]) -> String {
    let mut p = format!("kb:{kb}");
    let len: usize = ids.iter().map(|i| i.len() + 1).sum();
    if !ids.is_empty() && p.len() + len <= MAX_RELOAD_PAYLOAD {
        for id in ids {
            p.push('\n');
            p.push_str(id);
        }
    }
    p
}

/// The knowledge base a reload payload names, and its ids (empty: all of it); None when the
/// payload is not a knowledge base's.
pub fn parse_reload(payload: &str) -> Option<(&str, Vec<&str>)> {
    let rest = payload.strip_prefix("kb:")?;
    let mut lines = rest.split('\n');
    let kb = lines.next()?;
    Some((kb, lines.filter(|l| !l.is_empty()).collect()))
}

/// One agent's verdict on a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackAction {
    Used,
    Edited,
    Dismissed,
}

impl FeedbackAction {
    /// The stored (and API) name: `used`, `edited` or `dismissed`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackAction::Used => "used",
            FeedbackAction::Edited => "edited",
            FeedbackAction::Dismissed => "dismissed",
        }
    }

    /// The action named `s`, or None.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "used" => Some(FeedbackAction::Used),
            "edited" => Some(FeedbackAction::Edited),
            "dismissed" => Some(FeedbackAction::Dismissed),
            _ => None,
        }
    }
}

impl std::str::FromStr for FeedbackAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FeedbackAction::parse(s)
            .ok_or_else(|| format!("unknown feedback action {s:?} (used, edited or dismissed)"))
    }
}

/// How often a suggestion was used, edited and dismissed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedbackCounts {
    pub used: u64,
    pub edited: u64,
    pub dismissed: u64,
}

impl FeedbackCounts {
    /// Add `n` verdicts named `action` (unknown names are ignored).
    pub(crate) fn add(&mut self, action: &str, n: i64) {
        let n = n.max(0) as u64;
        match FeedbackAction::parse(action) {
            Some(FeedbackAction::Used) => self.used += n,
            Some(FeedbackAction::Edited) => self.edited += n,
            Some(FeedbackAction::Dismissed) => self.dismissed += n,
            None => {}
        }
    }
}

/// A row as its columns: `dim`, the chunks as JSON and the vectors as one blob.
pub(crate) struct Encoded {
    pub dim: i64,
    pub chunks: String,
    pub vectors: Vec<u8>,
}

fn bad(msg: String) -> AppError {
    AppError::Internal(anyhow::anyhow!(msg))
}

/// Check a whole batch for `kb` before anything is written: every row in `kb`, no id twice,
/// one vector per chunk, all of one length. Returns the rows' columns, in order.
pub(crate) fn encode_all(kb: &str, rows: &[KbRow]) -> AppResult<Vec<Encoded>> {
    let mut seen = HashSet::with_capacity(rows.len());
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if r.kb != kb {
            return Err(bad(format!(
                "store: kb_put into {kb:?} got article {:?} of knowledge base {:?}",
                r.id, r.kb
            )));
        }
        if !seen.insert(r.id.as_str()) {
            return Err(bad(format!(
                "store: kb_put into {kb:?} got article {:?} twice",
                r.id
            )));
        }
        out.push(encode(r)?);
    }
    Ok(out)
}

fn encode(r: &KbRow) -> AppResult<Encoded> {
    if r.vectors.len() != r.chunks.len() {
        return Err(bad(format!(
            "store: kb article {:?}/{:?} has {} chunks but {} vectors",
            r.kb,
            r.id,
            r.chunks.len(),
            r.vectors.len()
        )));
    }
    let dim = r.vectors.first().map_or(0, Vec::len);
    if let Some(v) = r.vectors.iter().find(|v| v.len() != dim) {
        return Err(bad(format!(
            "store: kb article {:?}/{:?} mixes vectors of {dim} and {} floats",
            r.kb,
            r.id,
            v.len()
        )));
    }
    let mut blob = Vec::with_capacity(r.vectors.len() * dim * 4);
    for x in r.vectors.iter().flatten() {
        blob.extend_from_slice(&x.to_le_bytes());
    }
    let chunks = serde_json::to_string(&r.chunks).map_err(|e| bad(format!("store: {e}")))?;
    Ok(Encoded {
        dim: dim as i64,
        chunks,
        vectors: blob,
    })
}

/// The columns of one stored article, as read.
pub(crate) struct Columns {
    pub kb: String,
    pub id: String,
    pub article: String,
    pub model: String,
    pub dim: i64,
    pub chunks: String,
    pub vectors: Vec<u8>,
    pub updated_ms: i64,
}

/// An article from its columns; a blob that does not hold `chunks × dim` floats, or chunks that
/// are not a JSON array of strings, is an error naming the article.
pub(crate) fn decode(c: Columns) -> AppResult<KbRow> {
    let corrupt = |what: String| bad(format!("store: kb article {:?}/{:?}: {what}", c.kb, c.id));
    let chunks: Vec<String> = serde_json::from_str(&c.chunks)
        .map_err(|e| corrupt(format!("chunks are not a JSON array of strings: {e}")))?;
    let dim = usize::try_from(c.dim).map_err(|_| corrupt(format!("dim {} < 0", c.dim)))?;
    let want = chunks.len().checked_mul(dim).and_then(|n| n.checked_mul(4));
    if want != Some(c.vectors.len()) {
        return Err(corrupt(format!(
            "vectors hold {} bytes, not {} chunks × {dim} floats",
            c.vectors.len(),
            chunks.len()
        )));
    }
    let vectors = if dim == 0 {
        vec![Vec::new(); chunks.len()]
    } else {
        c.vectors
            .chunks_exact(dim * 4)
            .map(|v| {
                v.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            })
            .collect()
    };
    Ok(KbRow {
        kb: c.kb,
        id: c.id,
        article: c.article,
        model: c.model,
        chunks,
        vectors,
        updated_ms: c.updated_ms,
    })
}

impl Store {
    /// Write `rows` into knowledge base `kb` in one transaction (all or none), replacing
    /// articles with the same id: `(created, replaced)`. A row of another kb, or an id twice,
    /// is an error and nothing is written. PostgreSQL: other replicas are told (`kb:<kb>`).
    pub fn kb_put(&self, kb: &str, rows: &[KbRow]) -> AppResult<(usize, usize)> {
        let encoded = encode_all(kb, rows)?;
        match &self.backend {
            Backend::Sqlite(s) => s.kb_put(kb, rows, &encoded),
            Backend::Postgres(p) => p.kb_put(kb, rows, &encoded),
        }
    }

    /// Delete one article: whether it existed.
    pub fn kb_delete(&self, kb: &str, id: &str) -> AppResult<bool> {
        match &self.backend {
            Backend::Sqlite(s) => s.kb_delete(kb, id),
            Backend::Postgres(p) => p.kb_delete(kb, id),
        }
    }

    /// Every article of `kb`, ordered by id.
    pub fn kb_articles(&self, kb: &str) -> AppResult<Vec<KbRow>> {
        match &self.backend {
            Backend::Sqlite(s) => s.kb_articles(kb),
            Backend::Postgres(p) => p.kb_articles(kb),
        }
    }

    /// One article.
    pub fn kb_article(&self, kb: &str, id: &str) -> AppResult<Option<KbRow>> {
        match &self.backend {
            Backend::Sqlite(s) => s.kb_article(kb, id),
            Backend::Postgres(p) => p.kb_article(kb, id),
        }
    }

    /// The knowledge bases that have articles, with their article counts, ordered by name.
    pub fn kb_names(&self) -> AppResult<Vec<(String, usize)>> {
        match &self.backend {
            Backend::Sqlite(s) => s.kb_names(),
            Backend::Postgres(p) => p.kb_names(),
        }
    }

    /// Remove a whole knowledge base: how many articles it had.
    pub fn kb_drop(&self, kb: &str) -> AppResult<usize> {
        match &self.backend {
            Backend::Sqlite(s) => s.kb_drop(kb),
            Backend::Postgres(p) => p.kb_drop(kb),
        }
    }

    /// Store one feedback row: its id.
    pub fn kb_feedback_add(
        &self,
        conversation_id: &str,
        suggestion: &str,
        action: FeedbackAction,
        text: Option<&str>,
    ) -> AppResult<i64> {
        let now = super::now_ms();
        match &self.backend {
            Backend::Sqlite(s) => s.kb_feedback_add(conversation_id, suggestion, action, text, now),
            Backend::Postgres(p) => {
                p.kb_feedback_add(conversation_id, suggestion, action, text, now)
            }
        }
    }

    /// Feedback counts for each of `suggestions` (absent ones get zeros), in the same order.
    pub fn kb_feedback_counts(&self, suggestions: &[String]) -> AppResult<Vec<FeedbackCounts>> {
        match &self.backend {
            Backend::Sqlite(s) => s.kb_feedback_counts(suggestions),
            Backend::Postgres(p) => p.kb_feedback_counts(suggestions),
        }
    }
}

#[cfg(test)]
mod reload_tests {
    use super::*;

    #[test]
    fn reload_payloads_name_the_ids_when_they_fit() {
        let p = reload_payload("faq", &["a", "b:1"]);
        assert_eq!(p, "kb:faq\na\nb:1");
        assert_eq!(parse_reload(&p), Some(("faq", vec!["a", "b:1"])));
        assert_eq!(parse_reload("kb:faq"), Some(("faq", vec![])));
        assert_eq!(parse_reload("intents"), None);
        let many: Vec<String> = (0..2000).map(|i| format!("article-{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(reload_payload("faq", &refs), "kb:faq");
    }
}
