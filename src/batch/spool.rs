//! Durable files for HTTP jobs: an upload spooled to `<name>.part` and renamed when complete,
//! and small records written atomically (temporary file, fsync, rename, fsync of the folder).

use super::jsonl::sync_dir;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Write `bytes` to `path` so that a crash leaves either the old or the new content.
pub fn sync_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    sync_dir(path)
}

/// An upload being written; `finish` makes it durable under its final name.
pub struct Spool {
    file: File,
    part: PathBuf,
    path: PathBuf,
    bytes: u64,
    /// The first byte that is not ASCII whitespace, once seen.
    first: Option<u8>,
}

impl Spool {
    pub fn create(path: &Path) -> Result<Spool> {
        let part = path.with_extension("part");
        let file = File::create(&part).with_context(|| format!("creating {}", part.display()))?;
        Ok(Spool {
            file,
            part,
            path: path.to_path_buf(),
            bytes: 0,
            first: None,
        })
    }

    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        if self.first.is_none() {
            self.first = chunk.iter().copied().find(|b| !b.is_ascii_whitespace());
        }
        self.bytes += chunk.len() as u64;
        self.file
            .write_all(chunk)
            .with_context(|| format!("writing {}", self.part.display()))
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn first_byte(&self) -> Option<u8> {
        self.first
    }

    /// fsync, rename to the final name, fsync the folder.
    pub fn finish(self) -> Result<u64> {
        self.file.sync_all()?;
        std::fs::rename(&self.part, &self.path)
            .with_context(|| format!("renaming to {}", self.path.display()))?;
        sync_dir(&self.path)?;
        Ok(self.bytes)
    }
}
