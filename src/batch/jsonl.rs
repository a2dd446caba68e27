//! JSONL output of batch jobs: a crash-safe appender that repairs a torn last line and reports
//! the lines already there. The capped line reader is `crate::jsonl` (re-exported here).

pub use crate::jsonl::{LineReader, RawLine};
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

/// An output file opened for crash-safe appends.
pub struct Appender {
    file: File,
    path: PathBuf,
}

/// What `Appender::open` found in the file.
#[derive(Debug, Default, Clone, Copy)]
pub struct Recovered {
    /// Complete lines kept.
    pub lines: u64,
    /// Bytes of a torn last line (no newline) cut off.
    pub truncated: u64,
}

/// Longest line expected in an output file we wrote.
const MAX_OUTPUT_LINE: usize = 64 << 20;

impl Appender {
    /// Open (or create) `path` for appending. Every complete line already there goes to
    /// `on_line`, which refuses a line it does not recognise (the file is then left alone: it is
    /// not ours). A torn last line, the trace of a killed run, is cut off.
    pub fn open(
        path: &Path,
        on_line: &mut dyn FnMut(&[u8]) -> std::result::Result<(), String>,
    ) -> Result<(Appender, Recovered)> {
        let mut rec = Recovered::default();
        let existed = path.exists();
        if existed {
            let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let mut r = LineReader::new(BufReader::with_capacity(1 << 20, f), MAX_OUTPUT_LINE);
            let mut keep = 0u64;
            while let Some(l) = r
                .next_line()
                .with_context(|| format!("reading {}", path.display()))?
            {
                if !l.terminated {
                    rec.truncated = r.consumed() - l.start;
                    break;
                }
                let Some(bytes) = l.bytes.as_deref() else {
                    bail!(
                        "{} line {}: longer than {MAX_OUTPUT_LINE} bytes; not a file this command wrote",
                        path.display(),
                        l.no
                    );
                };
                if !bytes.iter().all(u8::is_ascii_whitespace) {
                    on_line(bytes).map_err(|e| {
                        anyhow::anyhow!(
                            "{} line {}: {e}; not a file this command wrote (choose another path)",
                            path.display(),
                            l.no
                        )
                    })?;
                    rec.lines += 1;
                }
                keep = r.consumed();
            }
            if rec.truncated > 0 {
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                f.set_len(keep)?;
                f.sync_all()?;
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {} for appending", path.display()))?;
        if !existed {
            crate::fsutil::sync_dir(path)?;
        }
        Ok((
            Appender {
                file,
                path: path.to_path_buf(),
            },
            rec,
        ))
    }

    /// Append whole lines (each ending in `\n`) with one write, then fsync.
    pub fn append(&mut self, lines: &[u8]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(lines)
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}
