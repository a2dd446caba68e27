//! Translation: a table of `(source, target)` language pairs to Marian (opus-mt) models, with
//! pivoting through English when no direct model exists, sentence splitting, batched
//! generation and reassembly. Models load on first use into a cache shared with abstractive
//! summarization (`Seq2SeqModels`).

pub mod models;
pub mod segment;

use anyhow::ensure;
use serde::{Deserialize, Serialize};

pub use models::Seq2SeqModels;

/// One direct model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    pub source: String,
    pub target: String,
    /// `hf:org/name`, a local Hugging Face folder, or `pack:NAME`.
    pub model: String,
}

/// `[translate]` in the config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranslateConfig {
    pub pairs: Vec<Pair>,
    /// Language used as the pivot when no direct model exists.
    pub pivot: String,
    /// Most texts per request.
    pub max_texts: usize,
    /// Most tokens of one sentence (longer ones are refused, naming the text).
    pub max_input_tokens: usize,
    /// Sentences generated together.
    pub batch_size: usize,
    pub num_beams: usize,
    pub max_new_tokens: usize,
}

fn opus(s: &str, t: &str) -> Pair {
    Pair {
        source: s.into(),
        target: t.into(),
        model: format!("hf:Helsinki-NLP/opus-mt-{s}-{t}"),
    }
}

impl Default for TranslateConfig {
    fn default() -> Self {
        let mut pairs = Vec::new();
        for l in ["zh", "de", "fr", "es", "ru", "it"] {
            pairs.push(opus(l, "en"));
            pairs.push(opus("en", l));
        }
        pairs.push(opus("ja", "en"));
        TranslateConfig {
            pairs,
            pivot: "en".into(),
            max_texts: 64,
            max_input_tokens: 400,
            batch_size: 16,
            num_beams: 4,
            max_new_tokens: 400,
        }
    }
}

impl TranslateConfig {
    pub fn check(&self) -> anyhow::Result<()> {
        for p in &self.pairs {
            ensure!(
                !p.source.is_empty() && !p.target.is_empty() && p.source != p.target,
                "config: translate.pairs: `{} -> {}` is not a language pair",
                p.source,
                p.target
            );
            crate::models::source::Source::parse(&p.model)?;
        }
        ensure!(
            (1..=1024).contains(&self.max_texts),
            "config: translate.max_texts must be 1..=1024"
        );
        ensure!(
            (1..=256).contains(&self.batch_size),
            "config: translate.batch_size must be 1..=256"
        );
        ensure!(
            (1..=16).contains(&self.num_beams),
            "config: translate.num_beams must be 1..=16"
        );
        ensure!(
            self.max_input_tokens >= 8 && self.max_new_tokens >= 1,
            "config: translate.max_input_tokens must be >= 8 and max_new_tokens >= 1"
        );
        Ok(())
    }

    fn direct(&self, s: &str, t: &str) -> Option<&Pair> {
        self.pairs.iter().find(|p| p.source == s && p.target == t)
    }

    /// The models to run, in order, to go from `s` to `t` (one, or two through the pivot);
    /// `None` when the table has no way. Empty when `s == t`.
    pub fn plan(&self, s: &str, t: &str) -> Option<Vec<&Pair>> {
        if s == t {
            return Some(Vec::new());
        }
        if let Some(p) = self.direct(s, t) {
            return Some(vec![p]);
        }
        let a = self.direct(s, &self.pivot)?;
        let b = self.direct(&self.pivot, t)?;
        Some(vec![a, b])
    }

    /// Every `source->target` the table can do (direct or pivoted), for error messages.
    pub fn supported(&self) -> Vec<String> {
        let mut langs: Vec<&str> = self
            .pairs
            .iter()
            .flat_map(|p| [p.source.as_str(), p.target.as_str()])
            .collect();
        langs.sort();
        langs.dedup();
        let mut out = Vec::new();
        for s in &langs {
            for t in &langs {
                if s != t && self.plan(s, t).is_some() {
                    out.push(format!("{s}->{t}"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_pivot_and_unsupported() {
        let c = TranslateConfig::default();
        c.check().unwrap();
        assert_eq!(c.plan("zh", "en").unwrap().len(), 1);
        let p = c.plan("zh", "de").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].model, "hf:Helsinki-NLP/opus-mt-zh-en");
        assert_eq!(p[1].model, "hf:Helsinki-NLP/opus-mt-en-de");
        assert!(c.plan("en", "ja").is_none());
        assert!(c.plan("xx", "en").is_none());
        assert_eq!(c.plan("en", "en").unwrap().len(), 0);
        let s = c.supported();
        assert!(s.contains(&"ja->de".to_string()) && !s.contains(&"en->ja".to_string()));
        let mut bad = c.clone();
        bad.pairs.push(opus("en", "en"));
        assert!(bad.check().is_err());
    }
}
