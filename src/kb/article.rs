//! A knowledge-base article: its fields, the checks every write passes (field named in each
//! error), and how its text is cut into the passages that are indexed and embedded.

use super::KbConfig;
use crate::error::{AppError, AppResult};
use serde::{Deserialize, Serialize};

/// One article, as written by the API, an import file or the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Article {
    /// Unique within its knowledge base: 1-128 characters of letters, digits, `-_.:`.
    #[serde(default)]
    pub id: String,
    pub title: String,
    pub body: String,
    /// A short reply a bot may send as it is (else the matched passage is quoted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// ISO 639-1; detected from the text when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The procedure, step by step (SOP), for an agent or the customer.
    #[serde(default)]
    pub steps: Vec<String>,
}

/// A knowledge-base name: 1-64 of `[A-Za-z0-9_-]`.
pub fn check_kb_name(field: &str, name: &str) -> AppResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            field,
            "a knowledge base name is 1-64 letters, digits, `-` or `_`",
        ))
    }
}

/// An article tag: 1-64 bytes, not blank.
pub fn valid_tag(t: &str) -> bool {
    !t.trim().is_empty() && t.len() <= 64
}

/// An article id: 1-128 of `[A-Za-z0-9_.:-]`.
pub fn check_id(field: &str, id: &str) -> AppResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            field,
            "an article id is 1-128 letters, digits, `-`, `_`, `.` or `:`",
        ))
    }
}

impl Article {
    /// Check every field (`at` prefixes the field names, e.g. `articles[3].`), trim the text.
    pub fn checked(mut self, at: &str, cfg: &KbConfig) -> AppResult<Article> {
        check_id(&format!("{at}id"), &self.id)?;
        let f = |name: &str| format!("{at}{name}");
        self.title = self.title.trim().to_string();
        self.body = self.body.trim().to_string();
        if self.title.is_empty() {
            return Err(AppError::invalid(f("title"), "must not be empty"));
        }
        if self.title.chars().count() > 300 {
            return Err(AppError::invalid(f("title"), "at most 300 characters"));
        }
        if self.body.is_empty() {
            return Err(AppError::invalid(f("body"), "must not be empty"));
        }
        let size = self.title.len()
            + self.body.len()
            + self.answer.as_ref().map_or(0, String::len)
            + self
                .tags
                .iter()
                .chain(&self.steps)
                .map(String::len)
                .sum::<usize>();
        if size > cfg.max_article_bytes {
            return Err(AppError::too_large(
                f("body"),
                format!(
                    "the article has {size} bytes of text; the limit is {} (kb.max_article_bytes)",
                    cfg.max_article_bytes
                ),
            ));
        }
        if let Some(a) = &self.answer {
            let a = a.trim();
            if a.is_empty() {
                return Err(AppError::invalid(
                    f("answer"),
                    "must not be empty when given",
                ));
            }
            self.answer = Some(a.to_string());
        }
        if let Some(l) = &self.language {
            let ok = l.len() == 2 && l.chars().all(|c| c.is_ascii_lowercase());
            if !ok {
                return Err(AppError::invalid(
                    f("language"),
                    "an ISO 639-1 code (two lowercase letters)",
                ));
            }
        }
        if self.tags.len() > 32 || !self.tags.iter().all(|t| valid_tag(t)) {
            return Err(AppError::invalid(
                f("tags"),
                "at most 32 tags, each 1-64 bytes",
            ));
        }
        if self.steps.len() > 50 || self.steps.iter().any(|s| s.trim().is_empty()) {
            return Err(AppError::invalid(
                f("steps"),
                "at most 50 steps, none empty",
            ));
        }
        Ok(self)
    }

    /// The passages indexed and embedded: the title with the answer (or the body's start), then
    /// the body cut at sentence ends into pieces of at most `max_chars` characters.
    pub fn chunks(&self, max_chars: usize) -> Vec<String> {
        let mut out = Vec::new();
        let body = split_passages(&self.body, max_chars);
        let lead = match &self.answer {
            Some(a) => a.clone(),
            None => body.first().cloned().unwrap_or_default(),
        };
        out.push(format!("{}\n{}", self.title, lead));
        let skip = usize::from(self.answer.is_none());
        for p in body.into_iter().skip(skip) {
            out.push(format!("{}\n{}", self.title, p));
        }
        out
    }
}

/// `text` cut into pieces of at most `max` characters, at sentence ends where there are any
/// (a sentence longer than `max` is cut where it reaches it).
pub fn split_passages(text: &str, max: usize) -> Vec<String> {
    let max = max.max(20);
    let mut sentences: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if matches!(c, '。' | '！' | '？' | '.' | '!' | '?' | '\n' | '；' | ';') {
            sentences.push(std::mem::take(&mut cur));
        }
    }
    if !cur.trim().is_empty() {
        sentences.push(cur);
    }
    let mut out: Vec<String> = Vec::new();
    let mut piece = String::new();
    let mut n = 0;
    for s in sentences {
        let s = s.trim();
        if s.is_empty() {
            continue;
        }
        let len = s.chars().count();
        if n > 0 && n + len > max {
            out.push(std::mem::take(&mut piece));
            n = 0;
        }
        if len > max {
            let chars: Vec<char> = s.chars().collect();
            for part in chars.chunks(max) {
                out.push(part.iter().collect());
            }
            continue;
        }
        if n > 0 && !ends_cjk(&piece) {
            piece.push(' ');
        }
        piece.push_str(s);
        n += len;
    }
    if !piece.is_empty() {
        out.push(piece);
    }
    out
}

fn ends_cjk(s: &str) -> bool {
    s.chars().last().is_some_and(crate::lang::is_cjk_text_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bodies_are_cut_at_sentence_ends() {
        let body = "第一句话。".repeat(40);
        let p = split_passages(&body, 50);
        assert!(p.len() >= 4, "{p:?}");
        assert!(p
            .iter()
            .all(|x| x.chars().count() <= 50 && x.ends_with('。')));
        assert_eq!(p.concat(), body);
        let en = split_passages("One two three. Four five six seven! Eight? Nine.", 20);
        assert_eq!(
            en,
            vec!["One two three.", "Four five six seven!", "Eight? Nine."]
        );
    }

    #[test]
    fn the_first_chunk_carries_title_and_answer() {
        let a = Article {
            id: "a".into(),
            title: "T".into(),
            body: "B one. B two.".into(),
            answer: Some("A".into()),
            language: None,
            tags: vec![],
            steps: vec![],
        };
        assert_eq!(a.chunks(400), vec!["T\nA", "T\nB one. B two."]);
        let b = Article { answer: None, ..a };
        assert_eq!(b.chunks(400), vec!["T\nB one. B two."]);
    }
}
