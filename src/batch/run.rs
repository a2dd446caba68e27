//! The engine: stream the input line by line, skip ids the output already holds, summarise
//! batches of conversations, append each batch with one write + fsync; bad lines go to rejects.
//! Memory is bounded by one batch plus 16 bytes per id seen (ids are kept as 128-bit hashes).

use super::input::{parse_line, Reject};
use super::jsonl::{Appender, LineReader};
use super::{Conversation, Summarizer};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What to read, where to write, how many conversations per summarizer call.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub input: PathBuf,
    pub output: PathBuf,
    pub rejects: PathBuf,
    pub batch_size: usize,
    pub max_line_bytes: usize,
}

/// Counts of one run (a rerun counts again from zero).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    /// Non-blank input lines read.
    pub read: u64,
    /// Summaries written by this run.
    pub written: u64,
    /// Conversations already in the output (done by an earlier run).
    pub skipped: u64,
    /// Lines rejected, whether recorded now or by an earlier run.
    pub rejected: u64,
    /// Reject lines written by this run.
    pub rejected_new: u64,
    /// Turns of the conversations summarised by this run.
    pub turns: u64,
    pub bytes_done: u64,
    pub total_bytes: u64,
    pub elapsed_secs: f64,
    /// Time spent inside the summarizer.
    pub summarize_secs: f64,
    /// True when the run stopped early on request (the next run resumes).
    pub stopped: bool,
}

/// An id, hashed (SHA-256, first 128 bits): the resume and duplicate sets stay small.
type Key = u128;

fn key(id: &str) -> Key {
    let d = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_le_bytes(b)
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct LineOnly {
    line: u64,
}

/// The path as the file system names it (the folder resolved when the file does not exist).
fn canonical(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (dir.canonicalize(), p.file_name()) {
        (Ok(d), Some(n)) => d.join(n),
        _ => p.to_path_buf(),
    }
}

/// Refuse to write over the input, or output and rejects into one file.
pub fn check_paths(o: &RunOptions) -> Result<()> {
    let (i, out, rej) = (
        canonical(&o.input),
        canonical(&o.output),
        canonical(&o.rejects),
    );
    if i == out || i == rej {
        bail!("the output and rejects files must not be the input file");
    }
    if out == rej {
        bail!("the output and rejects files must differ");
    }
    if o.batch_size == 0 {
        bail!("batch size must be at least 1");
    }
    Ok(())
}

/// One reject record: `{"line", "id"?, "reason"}` and its newline.
fn reject_line(line: u64, r: &Reject) -> Result<Vec<u8>> {
    let mut m = serde_json::Map::new();
    m.insert("line".into(), line.into());
    if let Some(id) = &r.id {
        m.insert("id".into(), Value::String(id.clone()));
    }
    m.insert("reason".into(), Value::String(r.reason.clone()));
    let mut b = serde_json::to_vec(&Value::Object(m))?;
    b.push(b'\n');
    Ok(b)
}

/// Reject lines waiting to be written; at most this many before they are flushed.
const MAX_PENDING_REJECTS: usize = 1024;

struct Sink<'a> {
    out: Appender,
    rej: Appender,
    rejected_before: HashSet<u64>,
    pending_rejects: Vec<u8>,
    n_pending_rejects: usize,
    summarizer: &'a dyn Summarizer,
    stats: Stats,
    /// Asked before every write; false ends the run with `FENCED`, writing nothing more.
    fence: &'a mut dyn FnMut() -> bool,
}

/// The error of a run whose fence refused a write (another runner owns the output now).
pub const FENCED: &str = "batch: the fence refused a write (the job's lease was lost)";

impl Sink<'_> {
    fn reject(&mut self, line: u64, r: Reject) -> Result<()> {
        self.stats.rejected += 1;
        if self.rejected_before.contains(&line) {
            return Ok(());
        }
        self.pending_rejects.extend(reject_line(line, &r)?);
        self.n_pending_rejects += 1;
        self.stats.rejected_new += 1;
        if self.n_pending_rejects >= MAX_PENDING_REJECTS {
            self.flush_rejects()?;
        }
        Ok(())
    }

    fn check_fence(&mut self) -> Result<()> {
        if !(self.fence)() {
            bail!(FENCED);
        }
        Ok(())
    }

    fn flush_rejects(&mut self) -> Result<()> {
        if self.pending_rejects.is_empty() {
            return Ok(());
        }
        self.check_fence()?;
        self.rej.append(&self.pending_rejects)?;
        self.pending_rejects.clear();
        self.n_pending_rejects = 0;
        Ok(())
    }

    /// Summarise `batch`, append its lines with one write, then the pending rejects.
    fn flush(&mut self, batch: &mut Vec<Conversation>) -> Result<()> {
        if !batch.is_empty() {
            let t = Instant::now();
            let values = self.summarizer.summarize_batch(batch)?;
            self.stats.summarize_secs += t.elapsed().as_secs_f64();
            if values.len() != batch.len() {
                bail!(
                    "the summarizer returned {} summaries for {} conversations",
                    values.len(),
                    batch.len()
                );
            }
            let mut buf = Vec::with_capacity(batch.len() * 512);
            for (c, v) in batch.iter().zip(values) {
                let Value::Object(mut m) = v else {
                    bail!("the summarizer returned a non-object for `{}`", c.id);
                };
                m.insert("id".into(), Value::String(c.id.clone()));
                serde_json::to_writer(&mut buf, &Value::Object(m))?;
                buf.push(b'\n');
            }
            self.check_fence()?;
            self.out.append(&buf)?;
            self.stats.written += batch.len() as u64;
            self.stats.turns += batch.iter().map(|c| c.turns.len() as u64).sum::<u64>();
            batch.clear();
        }
        self.flush_rejects()
    }
}

/// Summarise `o.input` into `o.output` (resuming it), rejects into `o.rejects`. `progress` is
/// called after every batch and every few thousand lines; `stop` ends the run between batches.
pub fn run(
    o: &RunOptions,
    summarizer: &dyn Summarizer,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Stats),
) -> Result<Stats> {
    run_fenced(o, summarizer, stop, progress, &mut || true)
}

/// `run`, asking `fence` before each write to the output or rejects: when it answers false the
/// run ends with the error `FENCED` and writes nothing more (a batch job whose lease another
/// replica took must not append after the new holder starts).
pub fn run_fenced(
    o: &RunOptions,
    summarizer: &dyn Summarizer,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Stats),
    fence: &mut dyn FnMut() -> bool,
) -> Result<Stats> {
    let started = Instant::now();
    check_paths(o)?;
    let input = File::open(&o.input).with_context(|| format!("opening {}", o.input.display()))?;
    let total_bytes = input.metadata()?.len();
    let mut done: HashSet<Key> = HashSet::new();
    let (out, _) = Appender::open(&o.output, &mut |b| {
        let r: IdOnly = serde_json::from_slice(b).map_err(|e| format!("no `id`: {e}"))?;
        done.insert(key(&r.id));
        Ok(())
    })?;
    let mut rejected_before = HashSet::new();
    let (rej, _) = Appender::open(&o.rejects, &mut |b| {
        let r: LineOnly = serde_json::from_slice(b).map_err(|e| format!("no `line`: {e}"))?;
        rejected_before.insert(r.line);
        Ok(())
    })?;
    let mut sink = Sink {
        out,
        rej,
        rejected_before,
        pending_rejects: Vec::new(),
        n_pending_rejects: 0,
        summarizer,
        fence,
        stats: Stats {
            total_bytes,
            ..Stats::default()
        },
    };
    let mut reader = LineReader::new(BufReader::with_capacity(1 << 20, input), o.max_line_bytes);
    let mut seen: HashSet<Key> = HashSet::new();
    let mut batch: Vec<Conversation> = Vec::with_capacity(o.batch_size);
    let report = |sink: &mut Sink, reader_pos: u64, progress: &mut dyn FnMut(&Stats)| {
        sink.stats.bytes_done = reader_pos;
        sink.stats.elapsed_secs = started.elapsed().as_secs_f64();
        progress(&sink.stats);
    };
    while let Some(line) = reader
        .next_line()
        .with_context(|| format!("reading {}", o.input.display()))?
    {
        let Some(bytes) = line.bytes else {
            sink.stats.read += 1;
            let reason = format!(
                "line too long ({} bytes, over the limit of {})",
                line.len, o.max_line_bytes
            );
            sink.reject(line.no, Reject { id: None, reason })?;
            continue;
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        sink.stats.read += 1;
        match parse_line(&bytes) {
            Err(r) => {
                if let Some(id) = &r.id {
                    seen.insert(key(id));
                }
                sink.reject(line.no, r)?;
            }
            Ok(c) => {
                let k = key(&c.id);
                if !seen.insert(k) {
                    let r = Reject {
                        id: Some(c.id),
                        reason: "duplicate id".into(),
                    };
                    sink.reject(line.no, r)?;
                } else if done.contains(&k) {
                    sink.stats.skipped += 1;
                } else if let Err(reason) = summarizer.check(&c) {
                    let r = Reject {
                        id: Some(c.id),
                        reason,
                    };
                    sink.reject(line.no, r)?;
                } else {
                    batch.push(c);
                }
            }
        }
        if batch.len() >= o.batch_size {
            sink.flush(&mut batch)?;
            report(&mut sink, reader.consumed(), progress);
            if stop.load(Ordering::Relaxed) {
                sink.stats.stopped = true;
                return Ok(sink.stats);
            }
        } else if sink.stats.read.is_multiple_of(4096) {
            report(&mut sink, reader.consumed(), progress);
        }
    }
    sink.flush(&mut batch)?;
    report(&mut sink, reader.consumed(), progress);
    Ok(sink.stats)
}
