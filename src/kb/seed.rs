//! The default knowledge base shipped in the binary: articles for the `bitext` intents in
//! English (from Bitext's responses, `scripts/make_kb.py`) and Chinese (written by the project,
//! `models/kb/README.md`), loaded into `kb.default_kb` when it is empty at start.

use super::import::{parse, Format};
use super::{Kb, Written};
use crate::engine::Models;
use crate::error::AppResult;
use std::sync::atomic::Ordering;

const ARTICLES: [(&str, &str); 2] = [
    ("en", include_str!("../../models/kb/en/articles.jsonl")),
    ("zh", include_str!("../../models/kb/zh/articles.jsonl")),
];

impl Kb {
    /// Whether the default knowledge base will be seeded; if so, `seeding()` is true until
    /// `seed_builtin` has run.
    pub fn mark_seeding(&self) -> bool {
        let due = self.cfg.seed_builtin && self.index(None, "kb").is_err();
        if due {
            self.seeding.store(true, Ordering::SeqCst);
        }
        due
    }

    /// The shipped articles are still being loaded.
    pub fn seeding(&self) -> bool {
        self.seeding.load(Ordering::SeqCst)
    }

    /// Load the shipped articles into the default knowledge base when it has none (another
    /// replica may do the same at once: the writes replace by id, so the result is the same).
    pub async fn seed_builtin(&self, models: &Models) -> AppResult<Option<Written>> {
        let r = self.seed_now(models).await;
        self.seeding.store(false, Ordering::SeqCst);
        r
    }

    async fn seed_now(&self, models: &Models) -> AppResult<Option<Written>> {
        let name = self.cfg.default_kb.clone();
        if !self.cfg.seed_builtin || self.index(Some(&name), "kb").is_ok() {
            return Ok(None);
        }
        let mut articles = Vec::new();
        for (lang, text) in ARTICLES {
            articles.extend(parse(text, Format::Jsonl, lang, &self.cfg)?);
        }
        self.put(models, &name, articles, "seed").await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_articles_parse_and_cover_every_intent_in_both_languages() {
        let cfg = crate::kb::KbConfig::default();
        for (lang, text) in ARTICLES {
            let a = parse(text, Format::Jsonl, lang, &cfg).unwrap();
            assert_eq!(a.len(), 54, "{lang}");
            let intents: std::collections::BTreeSet<&str> =
                a.iter().map(|x| x.tags[0].as_str()).collect();
            assert_eq!(intents.len(), 27, "{lang}");
            assert!(a.iter().all(|x| x.language.as_deref() == Some(lang)));
        }
    }
}
