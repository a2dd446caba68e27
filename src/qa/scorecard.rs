//! The scorecard: inspection items in TOML (`[[item]]`: `id`, `title`, `weight`, `fatal`, and the
//! check: `lexicon` words inline or from files, `regex` patterns, `pii` kinds), checked at
//! start; an error names the file and the line. The shipped one is `models/qa/scorecard.toml`
//! with its word lists; `qa.scorecard` names one that replaces it.

use super::lexicon::Lexicon;
use super::pii::Kind;
use anyhow::{anyhow, bail, Context, Result};
use regex::Regex;
use serde::Deserialize;
use std::path::{Path, PathBuf};

const SHIPPED: &str = include_str!("../../models/qa/scorecard.toml");
/// The shipped scorecard's word lists, by the name it gives them.
const SHIPPED_FILES: [(&str, &str); 2] = [
    (
        "lexicon/forbidden.zh.txt",
        include_str!("../../models/qa/lexicon/forbidden.zh.txt"),
    ),
    (
        "lexicon/forbidden.en.txt",
        include_str!("../../models/qa/lexicon/forbidden.en.txt"),
    ),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    item: Vec<ItemToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemToml {
    id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    weight: u32,
    #[serde(default)]
    fatal: bool,
    check: String,
    #[serde(default)]
    words: Vec<String>,
    #[serde(default)]
    files: Vec<PathBuf>,
    #[serde(default)]
    patterns: Vec<String>,
    #[serde(default)]
    pii: Vec<String>,
    /// `required`: which agent reply must have one of `words` (`first_reply`, `last_reply`,
    /// `after_complaint`).
    #[serde(default)]
    when: Option<String>,
    /// `timing`: `first_response_ms`, `max_response_ms` or `handle_ms`, and its limit.
    #[serde(default)]
    metric: Option<String>,
    #[serde(default)]
    max_ms: Option<u64>,
    /// `required`: example phrasings; a reply whose sentence is this similar (encoder cosine)
    /// to one of them passes too.
    #[serde(default)]
    examples: Vec<String>,
    #[serde(default)]
    similarity: Option<f32>,
    /// `outcome`: `resolved` (the conversation ends resolved) or `not_reopened` (no customer
    /// message after its resolution).
    #[serde(default)]
    outcome: Option<String>,
    /// `model`: which signal (`abuse`); `trajectory`: nothing.
    #[serde(default)]
    model: Option<String>,
    /// `model`: the score at or over which a reply fails (default 0.5, the head's tuned
    /// threshold); `trajectory`: the rise of the customer's negative emotion that counts as
    /// worse (default 0.2).
    #[serde(default)]
    threshold: Option<f32>,
}

/// What an item checks. `lexicon`, `regex`, `pii` and `model` look at each agent reply as it is
/// posted; `required`, `timing` and `trajectory` at the whole conversation
/// (`GET /v1/qa/conversations/{id}`).
pub enum Check {
    /// Words of the shared lexicon automaton.
    Lexicon,
    Regex(Vec<Regex>),
    Pii(Vec<Kind>),
    /// One of the phrases must be in the agent reply `when` names (or, with examples, one of
    /// its sentences must be similar enough to one of them).
    Required(When, Lexicon, Option<Examples>),
    /// A conversation timing must stay within `max_ms`.
    Timing(Metric, u64),
    /// A model's score of each agent reply must stay under the threshold.
    Model(Signal, f32),
    /// The customer's negative emotion must not rise by more than this across the agent's turns.
    Trajectory(f32),
    /// How the conversation ended, from the store's resolution.
    Outcome(Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Resolved, with no turn after the resolution.
    Resolved,
    /// No customer message after a resolution.
    NotReopened,
}

/// Example phrasings of a required item and the cosine at which a sentence counts as one.
#[derive(Debug, Clone)]
pub struct Examples {
    pub texts: Vec<String>,
    pub similarity: f32,
}

/// A model signal of an agent reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The abuse head (`emotion.abuse_head`).
    Abuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    FirstReply,
    LastReply,
    /// The first agent reply after a customer turn whose intent is `complaint` or that escalated.
    AfterComplaint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// First agent reply after the first customer message.
    FirstResponse,
    /// The longest wait of a customer message for the next agent reply.
    MaxResponse,
    /// First turn to last.
    Handle,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::FirstResponse => "first_response_ms",
            Metric::MaxResponse => "max_response_ms",
            Metric::Handle => "handle_ms",
        }
    }
}

impl Check {
    pub fn name(&self) -> &'static str {
        match self {
            Check::Lexicon => "lexicon",
            Check::Regex(_) => "regex",
            Check::Pii(_) => "pii",
            Check::Required(..) => "required",
            Check::Timing(..) => "timing",
            Check::Model(..) => "model",
            Check::Trajectory(..) => "trajectory",
            Check::Outcome(..) => "outcome",
        }
    }
}

pub struct Item {
    pub id: String,
    pub title: String,
    /// Points the item takes off the 100 of a reply that fails it.
    pub weight: u32,
    /// A failure zeroes the score.
    pub fatal: bool,
    pub check: Check,
}

pub struct Scorecard {
    pub items: Vec<Item>,
    pub lexicon: Lexicon,
    /// Where it came from (`shipped` or the file).
    pub source: String,
}

impl Scorecard {
    /// The shipped scorecard.
    pub fn shipped() -> Result<Scorecard> {
        Self::parse(SHIPPED, "models/qa/scorecard.toml", &|p| {
            let name = p.to_string_lossy();
            SHIPPED_FILES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.as_bytes().to_vec())
                .ok_or_else(|| anyhow!("no shipped word list {name}"))
        })
    }

    /// The scorecard in `path`; word-list files are relative to its folder.
    pub fn load(path: &Path) -> Result<Scorecard> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("qa.scorecard: cannot read {}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &path.display().to_string(), &|p| {
            let full = dir.join(p);
            std::fs::read(&full).with_context(|| format!("cannot read {}", full.display()))
        })
    }

    fn parse(text: &str, name: &str, read: &dyn Fn(&Path) -> Result<Vec<u8>>) -> Result<Scorecard> {
        let f: FileToml = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| {
                text.as_bytes()[..s.start.min(text.len())]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1
            });
            anyhow!("{name}: line {}: {}", line.unwrap_or(1), e.message())
        })?;
        let mut items = Vec::with_capacity(f.item.len());
        let mut words = Vec::new();
        for (i, it) in f.item.into_iter().enumerate() {
            let at = format!("{name}: line {} (item `{}`)", line_of(text, &it.id), it.id);
            if it.id.is_empty() || items.iter().any(|x: &Item| x.id == it.id) {
                bail!("{at}: item ids must be unique and not empty");
            }
            if it.weight > 100 {
                bail!("{at}: weight is at most 100");
            }
            let check = match it.check.as_str() {
                "lexicon" => {
                    words.extend(word_list(&it, read, &at)?.into_iter().map(|w| (i, w)));
                    Check::Lexicon
                }
                "regex" => {
                    if it.patterns.is_empty() {
                        bail!("{at}: a regex item needs `patterns`");
                    }
                    let re = it
                        .patterns
                        .iter()
                        .map(|p| Regex::new(p).map_err(|e| anyhow!("{at}: pattern {p:?}: {e}")))
                        .collect::<Result<Vec<_>>>()?;
                    Check::Regex(re)
                }
                "pii" => {
                    let kinds = it
                        .pii
                        .iter()
                        .map(|k| {
                            Kind::parse(k).ok_or_else(|| {
                                anyhow!("{at}: pii {k:?}: one of card_number, chinese_id, phone")
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    if kinds.is_empty() {
                        bail!("{at}: a pii item needs `pii` kinds");
                    }
                    Check::Pii(kinds)
                }
                "required" => {
                    let when = match it.when.as_deref() {
                        Some("first_reply") => When::FirstReply,
                        Some("last_reply") => When::LastReply,
                        Some("after_complaint") => When::AfterComplaint,
                        w => bail!(
                            "{at}: when {w:?}: one of first_reply, last_reply, after_complaint"
                        ),
                    };
                    let list = word_list(&it, read, &at)?;
                    let phrases = Lexicon::new(list.into_iter().map(|w| (i, w)).collect())
                        .map_err(|e| anyhow!("{at}: {e}"))?;
                    let examples = match (it.examples.is_empty(), it.similarity) {
                        (true, None) => None,
                        (false, Some(t)) if (0.0..=1.0).contains(&t) => Some(Examples {
                            texts: it.examples.clone(),
                            similarity: t,
                        }),
                        _ => bail!(
                            "{at}: `examples` and `similarity` (a cosine within 0 and 1) go together"
                        ),
                    };
                    Check::Required(when, phrases, examples)
                }
                "timing" => {
                    let metric = match it.metric.as_deref() {
                        Some("first_response_ms") => Metric::FirstResponse,
                        Some("max_response_ms") => Metric::MaxResponse,
                        Some("handle_ms") => Metric::Handle,
                        m => bail!(
                            "{at}: metric {m:?}: one of first_response_ms, max_response_ms, handle_ms"
                        ),
                    };
                    let Some(max) = it.max_ms.filter(|m| *m > 0) else {
                        bail!("{at}: a timing item needs `max_ms` > 0");
                    };
                    Check::Timing(metric, max)
                }
                "model" => {
                    let signal = match it.model.as_deref() {
                        Some("abuse") => Signal::Abuse,
                        m => bail!("{at}: model {m:?}: one of abuse"),
                    };
                    Check::Model(signal, threshold(&it, 0.5, &at)?)
                }
                "trajectory" => Check::Trajectory(threshold(&it, 0.2, &at)?),
                "outcome" => Check::Outcome(match it.outcome.as_deref() {
                    Some("resolved") => Outcome::Resolved,
                    Some("not_reopened") => Outcome::NotReopened,
                    o => bail!("{at}: outcome {o:?}: one of resolved, not_reopened"),
                }),
                other => {
                    bail!(
                        "{at}: check {other:?}: one of lexicon, regex, pii, required, timing, \
                         model, trajectory, outcome"
                    )
                }
            };
            items.push(Item {
                title: it.title.unwrap_or_else(|| it.id.clone()),
                id: it.id,
                weight: it.weight,
                fatal: it.fatal,
                check,
            });
        }
        if items.is_empty() {
            bail!("{name}: no [[item]]");
        }
        let lexicon = Lexicon::new(words).map_err(|e| anyhow!("{name}: {e}"))?;
        Ok(Scorecard {
            items,
            lexicon,
            source: name.to_string(),
        })
    }
}

/// An item's `threshold` (within 0..=1), or `default`.
fn threshold(it: &ItemToml, default: f32, at: &str) -> Result<f32> {
    match it.threshold {
        None => Ok(default),
        Some(t) if (0.0..=1.0).contains(&t) => Ok(t),
        Some(t) => bail!("{at}: threshold {t}: must be within 0 and 1"),
    }
}

/// An item's `words` and the words of its `files` (at least one word).
fn word_list(
    it: &ItemToml,
    read: &dyn Fn(&Path) -> Result<Vec<u8>>,
    at: &str,
) -> Result<Vec<String>> {
    let mut list = it.words.clone();
    for p in &it.files {
        list.extend(read_words(
            &read(p).with_context(|| at.to_string())?,
            p,
            at,
        )?);
    }
    if list.is_empty() {
        bail!("{at}: a {} item needs `words` or `files`", it.check);
    }
    Ok(list)
}

/// The line of `id = "<id>"` in `text` (1 when not found).
fn line_of(text: &str, id: &str) -> usize {
    let quoted = format!("\"{id}\"");
    text.lines()
        .position(|l| l.trim_start().starts_with("id") && l.contains(&quoted))
        .map_or(1, |i| i + 1)
}

/// A word list: one word or phrase per line, `#` comments and blank lines skipped; a line that
/// is not UTF-8 is named.
fn read_words(bytes: &[u8], path: &Path, at: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = std::str::from_utf8(line)
            .map_err(|_| anyhow!("{at}: {}: line {} is not UTF-8", path.display(), i + 1))?;
        let w = line.trim();
        if !w.is_empty() && !w.starts_with('#') {
            out.push(w.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scorecard> {
        Scorecard::parse(text, "card.toml", &|p| match p.to_str() {
            Some("bad.txt") => Ok(b"ok\n\xff\xfe\n".to_vec()),
            Some("good.txt") => Ok("# comment\n\n蠢货\n".as_bytes().to_vec()),
            _ => Err(anyhow!("missing")),
        })
    }

    #[test]
    fn the_shipped_scorecard_loads() {
        let s = Scorecard::shipped().unwrap();
        assert!(s.items.iter().any(|i| i.fatal));
        assert!(s.lexicon.len() > 20);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("[[item]]\nid = \"a\"\ncheck = \"lexicon\"\nwords = [\"x\"]\n\n[[item]]\nid = \"b\"\ncheck = \"regex\"\npatterns = [\"(\"]\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 7 (item `b`)"), "{e}");
        let e = parse("[[item]]\nid = \"a\"\ncheck = \"lexicon\"\nwordz = [\"x\"]\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("card.toml: line 4"), "{e}");
        let e = parse("[[item]]\nid = \"a\"\ncheck = \"lexicon\"\nfiles = [\"bad.txt\"]\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("bad.txt: line 2 is not UTF-8"), "{e}");
        let e = parse("[[item]]\nid = \"a\"\ncheck = \"tone\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("one of lexicon, regex, pii, required, timing"),
            "{e}"
        );
        let e = parse("[[item]]\nid = \"a\"\ncheck = \"timing\"\nmetric = \"handle_ms\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("needs `max_ms`"), "{e}");
        let e =
            parse("[[item]]\nid = \"a\"\ncheck = \"required\"\nwhen = \"x\"\nwords = [\"hi\"]\n")
                .err()
                .unwrap()
                .to_string();
        assert!(e.contains("one of first_reply"), "{e}");
        for bad in [
            "check = \"required\"\nwhen = \"first_reply\"\nwords = [\"hi\"]\nexamples = [\"hello\"]\n",
            "check = \"required\"\nwhen = \"first_reply\"\nwords = [\"hi\"]\nexamples = [\"hello\"]\nsimilarity = 1.5\n",
            "check = \"model\"\nmodel = \"tone\"\n",
            "check = \"model\"\nmodel = \"abuse\"\nthreshold = -1\n",
        ] {
            let e = parse(&format!("[[item]]\nid = \"a\"\n{bad}"))
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains("card.toml: line 2 (item `a`)"), "{bad}: {e}");
        }
        let ok =
            parse("[[item]]\nid = \"a\"\ncheck = \"lexicon\"\nfiles = [\"good.txt\"]\n").unwrap();
        assert_eq!(ok.lexicon.len(), 1);
    }
}
