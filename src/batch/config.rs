//! `[batch]`: conversations per summarizer call, the longest input line, the largest HTTP upload
//! and where HTTP jobs are kept.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Conversations per summarizer call (one encoder pass over all their turns).
    pub batch_size: usize,
    /// Longest input line in bytes; a longer line is rejected (`line too long`), never loaded.
    pub max_line_bytes: usize,
    /// Largest `POST /v1/batch/summarize` body in bytes (spooled to disk, not held in memory).
    pub max_upload_bytes: u64,
    /// Seconds a client has to send the whole `POST /v1/batch/summarize` body; past it: 408.
    pub upload_timeout_secs: u64,
    /// Folder of the HTTP jobs; default: `batch/` beside the store database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            batch_size: 32,
            max_line_bytes: 1 << 20,
            max_upload_bytes: 256 << 20,
            upload_timeout_secs: 3600,
            dir: None,
        }
    }
}

impl BatchConfig {
    /// Check every value; the error names the key at fault.
    pub fn check(&self) -> Result<()> {
        if self.batch_size == 0 || self.batch_size > 4096 {
            bail!("config: batch.batch_size must be between 1 and 4096");
        }
        if self.max_line_bytes < 1024 {
            bail!("config: batch.max_line_bytes must be at least 1024");
        }
        if self.max_upload_bytes == 0 {
            bail!("config: batch.max_upload_bytes must be greater than 0");
        }
        if !(1..=86_400).contains(&self.upload_timeout_secs) {
            bail!("config: batch.upload_timeout_secs must be within 1..=86400");
        }
        Ok(())
    }

    /// The jobs folder: `dir`, else `batch/` in the folder of the store database `store_path`.
    pub fn resolved_dir(&self, store_path: &Path) -> PathBuf {
        match &self.dir {
            Some(d) => d.clone(),
            None => store_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
                .join("batch"),
        }
    }
}
