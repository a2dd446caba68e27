//! The bounded store of unmatched texts kept for discovery: in memory, oldest dropped first,
//! persisted as an append-only JSONL file that is rewritten (atomically) when it grows to twice
//! the bound or when texts are taken out.

use super::files::{decode_vec, encode_vec};
use crate::fsutil::write_atomic;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Longest line read back (a text within the request limits and one embedding fit easily).
const MAX_LINE_BYTES: usize = 4 << 20;

/// One kept text.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: u64,
    pub text: String,
    pub set: String,
    pub encoder: String,
    pub prefix: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// Unit length.
    pub vector: Vec<f32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: u64,
    text: String,
    intent_set: String,
    encoder: String,
    prefix: String,
    at: u64,
    embedding: String,
}

/// One kept text as the shared store holds it (a JSON line; the row id is its id).
pub(super) fn to_body(i: &Item) -> Result<String> {
    Ok(serde_json::to_string(&Line::of(i))?)
}

/// A kept text back from the shared store's row `id`.
pub(super) fn from_body(id: u64, body: &str) -> Result<Item> {
    let l: Line = serde_json::from_str(body)?;
    Ok(Item {
        vector: decode_vec(&l.embedding)?,
        id,
        text: l.text,
        set: l.intent_set,
        encoder: l.encoder,
        prefix: l.prefix,
        at: l.at,
    })
}

impl Line {
    fn of(i: &Item) -> Line {
        Line {
            id: i.id,
            text: i.text.clone(),
            intent_set: i.set.clone(),
            encoder: i.encoder.clone(),
            prefix: i.prefix.clone(),
            at: i.at,
            embedding: encode_vec(&i.vector),
        }
    }
}

pub struct Unmatched {
    items: VecDeque<Item>,
    max: usize,
    next_id: u64,
    path: Option<PathBuf>,
    lines_in_file: usize,
}

impl Unmatched {
    /// An empty store (in memory until `load` names its file).
    pub fn new(max: usize) -> Self {
        Unmatched {
            items: VecDeque::new(),
            max,
            next_id: 1,
            path: None,
            lines_in_file: 0,
        }
    }

    /// Read `path` (absent: empty) and persist there from now on. A torn last line (a crash
    /// while appending), an unreadable line and one over `MAX_LINE_BYTES` are skipped.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let mut items = VecDeque::new();
        let mut lines = 0;
        let file = match std::fs::File::open(path) {
            Ok(f) => Some(std::io::BufReader::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let each = |n, l: crate::jsonl::Line<'_>| {
            lines += 1;
            let parsed: Result<Item> = l
                .map_err(|len| anyhow::anyhow!("a line of {len} bytes is over the bound"))
                .and_then(|l| Ok(serde_json::from_slice::<Line>(l)?))
                .and_then(|l| {
                    Ok(Item {
                        vector: decode_vec(&l.embedding)?,
                        id: l.id,
                        text: l.text,
                        set: l.intent_set,
                        encoder: l.encoder,
                        prefix: l.prefix,
                        at: l.at,
                    })
                });
            match parsed {
                Ok(i) => items.push_back(i),
                Err(e) => {
                    // serde's data errors can quote a value (customer text): log where, not what.
                    let error = match e.downcast_ref::<serde_json::Error>() {
                        Some(j) => format!("{:?} error at column {}", j.classify(), j.column()),
                        None => format!("{e}"),
                    };
                    tracing::warn!(file = %path.display(), line = n, %error, "skipping an unreadable unmatched text")
                }
            }
            Ok(())
        };
        if let Some(r) = file {
            crate::jsonl::each_line(r, MAX_LINE_BYTES, each)
                .with_context(|| format!("reading {}", path.display()))?;
        }
        while items.len() > self.max {
            items.pop_front();
        }
        self.next_id = items.iter().map(|i| i.id + 1).max().unwrap_or(1);
        self.items = items;
        self.path = Some(path.to_path_buf());
        self.lines_in_file = lines;
        if self.lines_in_file > self.items.len() {
            self.rewrite()?;
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Keep new texts (ids are assigned here); the oldest go when the bound is reached.
    pub fn push(&mut self, new: Vec<Item>) -> Result<()> {
        let mut lines = String::new();
        for mut i in new {
            i.id = self.next_id;
            self.next_id += 1;
            if self.path.is_some() {
                lines.push_str(&serde_json::to_string(&Line::of(&i))?);
                lines.push('\n');
            }
            self.items.push_back(i);
        }
        while self.items.len() > self.max {
            self.items.pop_front();
        }
        let Some(path) = &self.path else {
            return Ok(());
        };
        if self.lines_in_file + lines.lines().count() > 2 * self.max {
            return self.rewrite();
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        f.write_all(lines.as_bytes())
            .with_context(|| format!("appending to {}", path.display()))?;
        self.lines_in_file += lines.lines().count();
        Ok(())
    }

    /// Take out the texts with these ids; how many there were.
    pub fn remove(&mut self, ids: &HashSet<u64>) -> Result<usize> {
        let before = self.items.len();
        self.items.retain(|i| !ids.contains(&i.id));
        let n = before - self.items.len();
        if n > 0 {
            self.rewrite()?;
        }
        Ok(n)
    }

    /// Forget the texts of `set` (every set when None); how many there were.
    pub fn purge(&mut self, set: Option<&str>) -> Result<usize> {
        let before = self.items.len();
        self.items.retain(|i| set.is_some_and(|s| s != i.set));
        let n = before - self.items.len();
        if n > 0 || self.lines_in_file > self.items.len() {
            self.rewrite()?;
        }
        Ok(n)
    }

    /// The kept texts of one set made with this encoder and prefix, oldest first.
    pub fn of_set(&self, set: &str, encoder: &str, prefix: &str) -> Vec<&Item> {
        self.items
            .iter()
            .filter(|i| i.set == set && i.encoder == encoder && i.prefix == prefix)
            .collect()
    }

    /// The kept texts with these ids, in the order of `ids` (those gone are left out).
    pub fn by_ids(&self, ids: &[u64]) -> Vec<Item> {
        let at: std::collections::HashMap<u64, &Item> =
            self.items.iter().map(|i| (i.id, i)).collect();
        ids.iter()
            .filter_map(|id| at.get(id).map(|i| (*i).clone()))
            .collect()
    }

    /// How many texts of `set` are kept (any encoder).
    pub fn count_set(&self, set: &str) -> usize {
        self.items.iter().filter(|i| i.set == set).count()
    }

    fn rewrite(&mut self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut out = String::new();
        for i in &self.items {
            out.push_str(&serde_json::to_string(&Line::of(i))?);
            out.push('\n');
        }
        write_atomic(path, out.as_bytes())?;
        self.lines_in_file = self.items.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(text: &str) -> Item {
        Item {
            id: 0,
            text: text.into(),
            set: "s".into(),
            encoder: "m".into(),
            prefix: String::new(),
            at: 1,
            vector: vec![1.0, 0.0],
        }
    }

    #[test]
    fn bounded_persisted_and_compacted() {
        let dir = std::env::temp_dir().join(format!("triage-unmatched-{}", std::process::id()));
        let p = dir.join("unmatched.jsonl");
        let mut u = Unmatched::new(3);
        u.load(&p).unwrap();
        for t in ["a", "b", "c", "d"] {
            u.push(vec![item(t)]).unwrap();
        }
        assert_eq!(u.len(), 3);
        let mut again = Unmatched::new(3);
        again.load(&p).unwrap();
        let texts: Vec<&str> = again.items.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(texts, ["b", "c", "d"]);
        assert_eq!(again.next_id, 5);
        // A torn line is skipped; removal rewrites the file.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"id\": 9, \"te")
            .unwrap();
        let mut u = Unmatched::new(3);
        u.load(&p).unwrap();
        assert_eq!(u.len(), 3);
        assert_eq!(u.remove(&HashSet::from([3])).unwrap(), 1);
        let mut again = Unmatched::new(3);
        again.load(&p).unwrap();
        assert_eq!(again.of_set("s", "m", "").len(), 2);
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
