//! An HTTP job's upload, spooled into a temporary file beside its final name and made durable
//! there (fsync, rename, fsync of the folder) when complete (`crate::fsutil::Pending`); an
//! upload that fails or is dropped leaves nothing behind.

use crate::fsutil::Pending;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An upload being written; `finish` makes it durable under its final name.
pub struct Spool {
    file: Pending,
    path: PathBuf,
    bytes: u64,
    /// The first byte that is not ASCII whitespace, once seen.
    first: Option<u8>,
}

impl Spool {
    pub fn create(path: &Path) -> Result<Spool> {
        Ok(Spool {
            file: Pending::create(path)?,
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
            .file()
            .write_all(chunk)
            .with_context(|| format!("writing the upload for {}", self.path.display()))
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn first_byte(&self) -> Option<u8> {
        self.first
    }

    /// fsync, rename to the final name, fsync the folder.
    pub fn finish(self) -> Result<u64> {
        self.file.persist()?;
        Ok(self.bytes)
    }
}
