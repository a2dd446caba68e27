//! JSONL reading with a bound on line length, the one reader for every JSONL file the project
//! reads (batch inputs and outputs, training data, the unmatched-text store): a line longer than
//! the bound is skipped without being held in memory, and each line keeps its number and offset.
//! Kept hand-written: `BufRead::lines`/`read_until` and the JSON-stream readers (serde_json's
//! `StreamDeserializer`) load a line of any length before anything can refuse it, and the batch
//! runner needs byte offsets and a torn last line told apart (its resume and repair logic).

use anyhow::Result;
use std::io::{self, BufRead};

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

/// A line as `each_line` hands it: its bytes, or its length when over the bound.
pub type Line<'a> = std::result::Result<&'a [u8], u64>;

/// Every line of `r` that is not blank (ASCII whitespace only), in order: `f(number, line)`
/// with `Err(length)` for a line longer than `max` bytes. A last line without a newline counts.
pub fn each_line<R: BufRead>(
    r: R,
    max: usize,
    mut f: impl FnMut(u64, Line<'_>) -> Result<()>,
) -> Result<()> {
    let mut r = LineReader::new(r, max);
    while let Some(l) = r.next_line()? {
        match l.bytes.as_deref() {
            Some(b) if b.iter().all(u8::is_ascii_whitespace) => {}
            Some(b) => f(l.no, Ok(b))?,
            None => f(l.no, Err(l.len))?,
        }
    }
    Ok(())
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

    #[test]
    fn non_blank_lines_with_numbers() {
        let mut got = Vec::new();
        each_line(&b"a\n  \n\r\n0123456789\nb"[..], 5, |no, l| {
            got.push((no, l.map(<[u8]>::to_vec)));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            got,
            vec![(1, Ok(b"a".to_vec())), (4, Err(10)), (5, Ok(b"b".to_vec()))]
        );
    }
}
