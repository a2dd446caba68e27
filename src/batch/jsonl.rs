//! JSONL plumbing: a line reader with a length bound (a huge line is skipped, never loaded) and
//! a crash-safe appender that repairs a torn last line and reports the lines already there.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// One physical line. `bytes` is None when the line is longer than the reader's bound.
#[derive(Debug)]
pub struct RawLine {
    /// 1-based line number.
    pub no: u64,
    /// Byte offset of the line's start.
    pub start: u64,
    /// Length without the newline (and without a trailing `\r`).
    pub len: u64,
    /// Whether a newline ended it (false only for a last line without one).
    pub terminated: bool,
    pub bytes: Option<Vec<u8>>,
}

/// Reads lines of at most `max` bytes; longer ones come back without their bytes.
pub struct LineReader<R> {
    inner: R,
    max: usize,
    no: u64,
    consumed: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            max,
            no: 0,
            consumed: 0,
        }
    }

    /// Bytes consumed so far (the start of the next line).
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The next line, or None at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<RawLine>> {
        let start = self.consumed;
        let mut buf = Vec::new();
        let (mut len, mut over, mut terminated) = (0u64, false, false);
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            let nl = avail.iter().position(|&b| b == b'\n');
            let chunk = &avail[..nl.unwrap_or(avail.len())];
            len += chunk.len() as u64;
            if !over {
                if buf.len() + chunk.len() > self.max {
                    over = true;
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(chunk);
                }
            }
            let take = chunk.len() + usize::from(nl.is_some());
            self.inner.consume(take);
            self.consumed += take as u64;
            if nl.is_some() {
                terminated = true;
                break;
            }
        }
        if len == 0 && !terminated {
            return Ok(None);
        }
        self.no += 1;
        if !over && buf.last() == Some(&b'\r') {
            buf.pop();
            len -= 1;
        }
        Ok(Some(RawLine {
            no: self.no,
            start,
            len,
            terminated,
            bytes: (!over).then_some(buf),
        }))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(u64, Option<Vec<u8>>, bool)> {
        let mut r = LineReader::new(io::BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push((l.no, l.bytes, l.terminated));
        }
        out
    }

    #[test]
    fn bounded_lines() {
        let got = lines(b"ab\r\n0123456789\n\nxyz", 5);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], (1, Some(b"ab".to_vec()), true));
        assert_eq!(got[1], (2, None, true));
        assert_eq!(got[2], (3, Some(vec![]), true));
        assert_eq!(got[3], (4, Some(b"xyz".to_vec()), false));
        assert!(lines(b"", 5).is_empty());
    }
}
