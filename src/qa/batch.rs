//! `triage qa run`: the conversation scorecard over historical conversations in JSONL, on the
//! resumable batch engine (`batch::run`): each output line is the conversation's `id`, its
//! `agent_id` and its `ConversationQa`. Timings need `at_ms` on every turn; without them they are
//! not measured (null) and the timing items pass.

use super::conversation::{ConversationQa, Timings};
use super::Inspector;
use crate::batch::{Conversation, Summarizer};
use crate::jsonl::LineReader;
use crate::store::signals::StoredSignals;
use crate::store::turns::TurnRecord;
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use std::io::BufReader;
use std::path::Path;
use std::sync::Mutex;

/// Scores of inspected conversations, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub conversations: u64,
    pub score_sum: u64,
    pub fatal: u64,
}

impl Totals {
    pub fn mean_score(&self) -> f64 {
        self.score_sum as f64 / self.conversations.max(1) as f64
    }

    pub fn fatal_share(&self) -> f64 {
        self.fatal as f64 / self.conversations.max(1) as f64
    }

    fn add(&mut self, score: u32, fatal: bool) {
        self.conversations += 1;
        self.score_sum += u64::from(score);
        self.fatal += u64::from(fatal);
    }
}

/// The batch engine's `Summarizer` for quality inspection; it sums the scores it hands out.
pub struct QaBatch {
    inspector: Inspector,
    totals: Mutex<Totals>,
}

/// The detail of a timing item when the input gave no timestamps.
pub const NOT_MEASURED: &str = "not measured (no at_ms on every turn)";

impl QaBatch {
    pub fn new(inspector: Inspector) -> QaBatch {
        QaBatch {
            inspector,
            totals: Mutex::new(Totals::default()),
        }
    }

    /// What this run inspected so far.
    pub fn totals(&self) -> Totals {
        self.totals.lock().map(|t| *t).unwrap_or_default()
    }

    /// The scorecard over one conversation (turns numbered from 1, as in the store).
    pub fn inspect(&self, c: &Conversation) -> ConversationQa {
        let timed = c.meta.len() == c.turns.len() && c.meta.iter().all(|m| m.at_ms.is_some());
        let records: Vec<TurnRecord> = c
            .turns
            .iter()
            .enumerate()
            .map(|(i, t)| TurnRecord {
                turn: i as u32 + 1,
                // Untimed: every turn at 0, so each timing is 0 and passes; reported as null.
                at_ms: if timed {
                    c.meta[i].at_ms.unwrap_or(0)
                } else {
                    0
                },
                role: t.role.clone(),
                text: t.text.clone(),
                channel: None,
                agent_id: c.meta.get(i).and_then(|m| m.agent_id.clone()),
                signals: StoredSignals::default(),
                route: None,
                memo: None,
            })
            .collect();
        let mut q = self.inspector.conversation(&c.id, &records);
        if !timed {
            q.timings = Timings::default();
            for it in q.items.iter_mut().filter(|i| i.check == "timing") {
                it.detail = Some(NOT_MEASURED.into());
            }
        }
        q
    }

    /// The agent of the conversation's agent replies: the first `agent_id` on one.
    pub fn agent_id(c: &Conversation) -> Option<&str> {
        c.turns
            .iter()
            .zip(&c.meta)
            .filter(|(t, _)| t.role == "agent")
            .find_map(|(_, m)| m.agent_id.as_deref())
    }

    /// One output object (the engine adds `id`).
    fn line(&self, c: &Conversation) -> Result<(Value, u32, bool)> {
        let q = self.inspect(c);
        let (score, fatal) = (q.score, q.fatal);
        let mut v = serde_json::to_value(&q)
            .with_context(|| format!("conversation `{}`: encoding its inspection", c.id))?;
        if let Value::Object(m) = &mut v {
            let agent = Self::agent_id(c).map_or(Value::Null, |a| Value::String(a.into()));
            m.insert("agent_id".into(), agent);
        }
        Ok((v, score, fatal))
    }
}

impl Summarizer for QaBatch {
    fn summarize_batch(&self, convs: &[Conversation]) -> Result<Vec<Value>> {
        let lines: Vec<(Value, u32, bool)> = convs
            .par_iter()
            .map(|c| self.line(c))
            .collect::<Result<_>>()?;
        let mut totals = self
            .totals
            .lock()
            .map_err(|_| anyhow::anyhow!("qa: totals poisoned"))?;
        let mut out = Vec::with_capacity(lines.len());
        for (v, score, fatal) in lines {
            totals.add(score, fatal);
            out.push(v);
        }
        Ok(out)
    }

    /// A malformed `at_ms` or `agent_id` rejects the line (the timings would be wrong).
    fn check(&self, c: &Conversation) -> Result<(), String> {
        match &c.meta_error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

#[derive(Deserialize)]
struct ScoreOnly {
    score: u32,
    fatal: bool,
}

/// The scores of a whole output file (this run's and earlier runs' lines).
pub fn output_totals(path: &Path) -> Result<Totals> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut r = LineReader::new(BufReader::with_capacity(1 << 20, f), 64 << 20);
    let mut t = Totals::default();
    while let Some(l) = r
        .next_line()
        .with_context(|| format!("reading {}", path.display()))?
    {
        let Some(b) = l.bytes.filter(|b| !b.iter().all(u8::is_ascii_whitespace)) else {
            continue;
        };
        let s: ScoreOnly = serde_json::from_slice(&b)
            .with_context(|| format!("{} line {}: no `score`/`fatal`", path.display(), l.no))?;
        t.add(s.score, s.fatal);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::input::parse_line;
    use crate::qa::QaConfig;

    fn qa() -> QaBatch {
        QaBatch::new(Inspector::open(&QaConfig::default()).unwrap())
    }

    fn item<'a>(v: &'a Value, id: &str) -> &'a Value {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()
    }

    const TIMED: &str = r#"{"id":"t1","turns":[
        {"role":"customer","text":"我的快递三天没动了","at_ms":1000},
        {"role":"agent","text":"您好，我马上为您查询。","at_ms":901000,"agent_id":"a03"},
        {"role":"customer","text":"好的","at_ms":960000},
        {"role":"agent","text":"已为您催件，祝您生活愉快！","at_ms":990000,"agent_id":"a04"}]}"#;

    fn conv(line: &str) -> Conversation {
        parse_line(line.replace('\n', "").as_bytes()).unwrap()
    }

    #[test]
    fn timed_conversation_gets_timings_agent_and_score() {
        let q = qa();
        let c = conv(TIMED);
        let v = q
            .summarize_batch(std::slice::from_ref(&c))
            .unwrap()
            .remove(0);
        assert_eq!(v["agent_id"], "a03", "the first agent reply's agent");
        assert_eq!(v["conversation_id"], "t1");
        assert_eq!(v["timings"]["first_response_ms"], 900_000);
        assert_eq!(v["timings"]["handle_ms"], 989_000);
        assert_eq!(item(&v, "first_response")["passed"], false);
        assert_eq!(item(&v, "greeting")["passed"], true);
        assert_eq!(v["replies"].as_array().unwrap().len(), 2);
        assert_eq!(v["replies"][1]["turn"], 4);
        assert_eq!(
            (v["score"].as_u64(), v["fatal"].as_bool()),
            (Some(90), Some(false))
        );
        let t = q.totals();
        assert_eq!((t.conversations, t.score_sum, t.fatal), (1, 90, 0));
    }

    #[test]
    fn without_timestamps_timings_are_null_and_timing_items_pass() {
        let q = qa();
        for line in [
            TIMED.replace(r#","at_ms":901000"#, ""),
            r#"{"id":"u","turns":[{"role":"customer","text":"hi"},{"role":"agent","text":"Hello, done. Have a nice day!"}]}"#.into(),
        ] {
            let c = conv(&line);
            let v = q.summarize_batch(std::slice::from_ref(&c)).unwrap().remove(0);
            for k in ["first_response_ms", "max_response_ms", "mean_response_ms", "handle_ms"] {
                assert!(v["timings"][k].is_null(), "{k}: {v}");
            }
            let fr = item(&v, "first_response");
            assert_eq!((fr["passed"].as_bool(), fr["detail"].as_str()), (Some(true), Some(NOT_MEASURED)));
            assert_eq!(v["score"], 100, "{v}");
        }
        let c = conv(r#"{"id":"b","turns":[{"role":"bot","text":"hi","agent_id":"x"}]}"#);
        assert_eq!(
            QaBatch::agent_id(&c),
            None,
            "a bot turn's agent_id is not the agent"
        );
    }

    #[test]
    fn violations_fail_items_and_fatal_ones_zero_the_score() {
        let q = qa();
        let c = conv(
            r#"{"id":"v","turns":[{"role":"customer","text":"refund?"},
            {"role":"agent","text":"Hello. I promise you a full refund to 4111 1111 1111 1111. Have a nice day!"}]}"#,
        );
        let v = q.summarize_batch(&[c]).unwrap().remove(0);
        assert_eq!(item(&v, "unauthorised_promise")["passed"], false);
        assert_eq!(item(&v, "pii_leak")["passed"], false);
        assert_eq!(
            (v["score"].as_u64(), v["fatal"].as_bool()),
            (Some(0), Some(true))
        );
        assert!(v["agent_id"].is_null());
        assert_eq!(q.totals().fatal_share(), 1.0);
    }

    #[test]
    fn a_malformed_timestamp_is_a_reject_reason() {
        let q = qa();
        let c = conv(&TIMED.replace("901000", r#""noon""#));
        assert_eq!(
            q.check(&c),
            Err("turns[1].at_ms is not an integer (epoch milliseconds)".into())
        );
        assert_eq!(q.check(&conv(TIMED)), Ok(()));
    }
}
