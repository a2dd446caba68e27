//! Summaries (`[summarize]`). A plain serde type with its defaults and checks; it imports nothing
//! of the project, so `config` can aggregate it without depending on the feature.

use anyhow::ensure;
use serde::{Deserialize, Serialize};

/// `[summarize]` in the config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SummarizeConfig {
    /// Word budget of an extractive summary when a request gives none.
    pub max_words: usize,
    /// Most turns one conversation may have.
    pub max_turns: usize,
    /// Abstractive model (T5 family): a local Hugging Face folder or a hub id. None: requests
    /// for `mode: abstractive` get 503 saying how to install one.
    pub model: Option<String>,
    /// Text put before the conversation for the abstractive model.
    pub prefix: String,
    pub num_beams: usize,
    pub max_new_tokens: usize,
    pub no_repeat_ngram_size: usize,
    pub length_penalty: f64,
}

impl Default for SummarizeConfig {
    fn default() -> Self {
        SummarizeConfig {
            max_words: 40,
            max_turns: 500,
            model: None,
            prefix: "summarize: ".into(),
            num_beams: 4,
            max_new_tokens: 96,
            no_repeat_ngram_size: 3,
            length_penalty: 1.0,
        }
    }
}

impl SummarizeConfig {
    pub fn check(&self) -> anyhow::Result<()> {
        ensure!(
            (5..=2000).contains(&self.max_words),
            "config: summarize.max_words must be 5..=2000"
        );
        ensure!(
            self.max_turns >= 1,
            "config: summarize.max_turns must be >= 1"
        );
        ensure!(
            (1..=16).contains(&self.num_beams),
            "config: summarize.num_beams must be 1..=16"
        );
        ensure!(
            (1..=1024).contains(&self.max_new_tokens),
            "config: summarize.max_new_tokens must be 1..=1024"
        );
        Ok(())
    }
}
