//! Durable store settings (`[store]`). A plain serde type with its defaults and checks; it imports
//! nothing of the project, so `config` can aggregate it without depending on the feature.

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `store.synchronous`: SQLite's `synchronous` pragma, parsed once when the config is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// fsync every commit: survives power loss.
    Full,
    /// Survives a killed process.
    Normal,
}

impl Synchronous {
    /// The pragma's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The database file; default `$TRIAGE_HOME/store/triage.sqlite`.
    pub path: Option<PathBuf>,
    /// Conversations untouched for this many days are deleted (0 = keep forever).
    pub retention_days: u32,
    /// Most conversations kept; the least recently updated go first.
    pub max_conversations: u64,
    /// Most turns per conversation; more get 409 (start a new conversation).
    pub max_turns: u32,
    /// `full` (fsync every commit: survives power loss) or `normal` (survives a killed process).
    pub synchronous: Synchronous,
    /// Seconds between SSE keep-alive comments.
    pub keepalive_secs: u64,
    /// Most open SSE streams; more get 503.
    pub max_subscribers: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: None,
            retention_days: 30,
            max_conversations: 1_000_000,
            max_turns: 1000,
            synchronous: Synchronous::Full,
            keepalive_secs: 15,
            max_subscribers: 256,
        }
    }
}

impl StoreConfig {
    pub fn check(&self) -> Result<()> {
        ensure!(
            self.max_conversations > 0,
            "config: store.max_conversations must be > 0"
        );
        ensure!(self.max_turns > 0, "config: store.max_turns must be > 0");
        ensure!(
            (1..=3600).contains(&self.keepalive_secs),
            "config: store.keepalive_secs must be 1..=3600"
        );
        ensure!(
            self.max_subscribers > 0,
            "config: store.max_subscribers must be > 0"
        );
        Ok(())
    }

    pub fn resolved_path(&self, home: &Path) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| home.join("store").join("triage.sqlite"))
    }
}
