//! The `[fewshot]` and `[discovery]` sections of the configuration, with their checks.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Few-shot intents: intents defined by example utterances, matched by cosine similarity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FewShotConfig {
    /// A few-shot intent matches when the cosine similarity of a text to its nearest example is
    /// at least this (under it: out of scope). Measured, see README "Few-shot intents".
    pub threshold: f32,
    /// A trained set's answer under this calibrated score counts as unsure: a matching few-shot
    /// intent takes over, and with discovery on the text is kept as unmatched.
    pub low_confidence: f32,
    /// In a trained set, a few-shot intent at least this similar wins even over a confident head.
    pub strong_match: f32,
    /// Most few-shot intents in the store.
    pub max_intents: usize,
    /// Most examples per intent.
    pub max_examples: usize,
    /// Most characters per example.
    pub max_example_chars: usize,
    /// A TOML or JSON file of intents defined by example utterances, loaded at start.
    pub file: Option<PathBuf>,
}

/// Unmatched-question discovery: keep the texts no intent answered, cluster them on demand.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// Off by default: the kept texts are customer messages (personal data), stored on disk.
    pub enabled: bool,
    /// Most unmatched texts kept; the oldest are dropped first.
    pub max_items: usize,
    /// Two texts belong together when their cosine similarity is at least this. Measured.
    pub cluster_threshold: f32,
    /// Smallest cluster reported (a request's `min_size` wins).
    pub min_size: usize,
    /// Most candidates reported (a request's `max_candidates` wins).
    pub max_candidates: usize,
}

impl Default for FewShotConfig {
    fn default() -> Self {
        FewShotConfig {
            threshold: 0.905,
            low_confidence: 0.5,
            strong_match: 0.95,
            max_intents: 500,
            max_examples: 50,
            max_example_chars: 500,
            file: None,
        }
    }
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            enabled: false,
            max_items: 5000,
            cluster_threshold: 0.91,
            min_size: 3,
            max_candidates: 20,
        }
    }
}

fn unit(key: &str, v: f32) -> Result<()> {
    if !(0.0..=1.0).contains(&v) {
        bail!("config: {key} must be between 0 and 1, not {v}");
    }
    Ok(())
}

impl FewShotConfig {
    pub fn check(&self) -> Result<()> {
        unit("fewshot.threshold", self.threshold)?;
        unit("fewshot.low_confidence", self.low_confidence)?;
        unit("fewshot.strong_match", self.strong_match)?;
        for (key, v) in [
            ("fewshot.max_intents", self.max_intents),
            ("fewshot.max_examples", self.max_examples),
            ("fewshot.max_example_chars", self.max_example_chars),
        ] {
            if v == 0 {
                bail!("config: {key} must be greater than 0");
            }
        }
        Ok(())
    }
}

impl DiscoveryConfig {
    pub fn check(&self) -> Result<()> {
        unit("discovery.cluster_threshold", self.cluster_threshold)?;
        if self.max_items == 0 || self.max_items > 1_000_000 {
            bail!("config: discovery.max_items must be between 1 and 1000000");
        }
        if self.min_size < 2 {
            bail!("config: discovery.min_size must be at least 2");
        }
        if self.max_candidates == 0 {
            bail!("config: discovery.max_candidates must be greater than 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn example_file_matches_defaults() {
        let cfg = Config::from_toml(include_str!("../../triage.example.toml")).unwrap();
        let d = Config::default();
        assert_eq!(
            serde_json::to_value(&cfg.fewshot).unwrap(),
            serde_json::to_value(&d.fewshot).unwrap()
        );
        assert_eq!(
            serde_json::to_value(&cfg.discovery).unwrap(),
            serde_json::to_value(&d.discovery).unwrap()
        );
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = Config::default();
        c.fewshot.threshold = 1.5;
        let e = format!("{:#}", c.validate().unwrap_err());
        assert!(e.contains("fewshot.threshold"), "{e}");
        let mut c = Config::default();
        c.discovery.min_size = 1;
        let e = format!("{:#}", c.validate().unwrap_err());
        assert!(e.contains("discovery.min_size"), "{e}");
        let e = Config::from_toml("[discovery]\nenabled = true\nmax_itemz = 3\n").unwrap_err();
        assert!(format!("{e:#}").contains("max_itemz"));
    }
}
