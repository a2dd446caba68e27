//! Batch summarization: a resumable, crash-safe, streaming engine over JSONL conversations,
//! generic over how a summary is made (`Summarizer`), with a CLI and HTTP jobs on top. Quality
//! inspection (`qa::batch`, `triage qa run`) runs on the same engine.

pub mod config;
pub mod encoder;
pub mod input;
pub mod jobs;
pub mod jsonl;
pub mod lease;
#[cfg(test)]
mod replica_tests;
pub mod run;
pub mod spool;
pub mod synth;

pub use config::BatchConfig;
pub use encoder::EncoderSummarizer;
pub use run::{run, run_fenced, RunOptions, Stats};

use serde::{Deserialize, Serialize};

/// One turn of a conversation: `role` is `customer`, `agent` or `bot`.
pub use crate::summarize::Turn;

/// One conversation to summarise; `id` is unique within an input file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub turns: Vec<Turn>,
    /// The turns' optional `at_ms` and `agent_id`: one per turn when the line gave any, else
    /// empty. Summaries ignore them; quality inspection (`qa::batch`) reads them.
    #[serde(skip)]
    pub meta: Vec<TurnMeta>,
    /// The first malformed optional turn field (`turns[2].at_ms is not an integer ...`).
    /// Summaries ignore it; quality inspection rejects the line with it.
    #[serde(skip)]
    pub meta_error: Option<String>,
}

/// What an input turn may carry besides its role and text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnMeta {
    /// When it was sent, epoch milliseconds.
    pub at_ms: Option<i64>,
    /// Who sent it (agent replies).
    pub agent_id: Option<String>,
}

/// Makes summaries. The engine hands it a batch of valid conversations and expects one JSON
/// object per conversation, in order; the engine adds the `id`. An error stops the run (what
/// was written stays written: the next run resumes after it).
pub trait Summarizer: Send + Sync {
    fn summarize_batch(&self, convs: &[Conversation]) -> anyhow::Result<Vec<serde_json::Value>>;

    /// A summarizer's own condition on a parsed conversation: `Err(reason)` sends its line to
    /// the rejects file. Every conversation passes by default.
    fn check(&self, _conv: &Conversation) -> Result<(), String> {
        Ok(())
    }
}

/// The roles a turn may have.
pub const ROLES: [&str; 3] = ["customer", "agent", "bot"];
