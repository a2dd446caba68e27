//! Quality inspection of agent replies (issue 22, first slice): every agent reply is checked
//! against the scorecard (forbidden words through their evasions, promises the agent may not
//! make, card and ID numbers) when it is posted, and the findings come back with the reply.

pub mod batch;
pub mod conversation;
pub mod lexicon;
pub mod live;
pub mod normalize;
pub mod period;
pub mod pii;
pub mod report;
pub mod scorecard;
pub mod similar;
pub mod synth;

use scorecard::{Check, Scorecard, Signal};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[qa]`: inspection of agent replies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QaConfig {
    /// Inspect agent replies posted to `POST /v1/conversations/{id}/messages`.
    pub enabled: bool,
    /// A scorecard (TOML) that replaces the shipped `models/qa/scorecard.toml`.
    pub scorecard: Option<PathBuf>,
    /// The supervisor queue that `qa` live events go to (`GET /v1/events?queue=...`).
    pub queue: String,
    /// POST a reply's fatal findings to the webhook URLs (`webhooks.urls`) as `qa.fatal`.
    pub webhook_fatal: bool,
}

impl Default for QaConfig {
    fn default() -> Self {
        QaConfig {
            enabled: true,
            scorecard: None,
            queue: "qa".into(),
            webhook_fatal: true,
        }
    }
}

/// Where a finding is in the reply: the text (masked for personal data) and its character
/// offsets (Unicode scalar values, end exclusive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// A scorecard item the reply failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    pub item: String,
    pub title: String,
    /// `lexicon`, `regex`, `pii` or `model` (for `pii`: `card_number`, `chinese_id` or `phone`
    /// in `kind`; for `model`: the signal, `abuse`).
    pub check: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A `model` item's score of the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    pub weight: u32,
    pub fatal: bool,
    pub evidence: Vec<Evidence>,
}

/// One reply's inspection: the failed items and the score (100 less the failed items'
/// weights, 0 after a fatal one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Inspection {
    pub score: u32,
    pub fatal: bool,
    pub findings: Vec<Finding>,
    /// The abuse head's score of the reply, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abusive: Option<f32>,
}

/// The models' scores of one reply (None: the model did not run; its items are not checked).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReplyScores {
    pub abusive: Option<f32>,
}

pub struct Inspector {
    card: Scorecard,
    /// The `required` items' example embeddings, by item id, once computed (`similar.rs`).
    pub(crate) example_embeddings:
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Vec<Vec<f32>>>>>,
}

impl Inspector {
    /// The configured scorecard (`qa.scorecard`, else the shipped one).
    pub fn open(cfg: &QaConfig) -> anyhow::Result<Inspector> {
        let card = match &cfg.scorecard {
            Some(p) => Scorecard::load(p)?,
            None => Scorecard::shipped()?,
        };
        Ok(Inspector {
            card,
            example_embeddings: Default::default(),
        })
    }

    pub fn scorecard(&self) -> &Scorecard {
        &self.card
    }

    /// Whether an item needs a model's score of each reply.
    pub fn needs_abuse(&self) -> bool {
        self.card
            .items
            .iter()
            .any(|it| matches!(it.check, Check::Model(Signal::Abuse, _)))
    }

    /// Inspect one reply with the rule checks only.
    pub fn inspect(&self, text: &str) -> Inspection {
        self.inspect_scored(text, ReplyScores::default())
    }

    /// Inspect one reply, with the models' scores for the `model` items.
    pub fn inspect_scored(&self, text: &str, scores: ReplyScores) -> Inspection {
        let chars: Vec<char> = text.chars().collect();
        let slice = |s: usize, e: usize| {
            chars[s.min(chars.len())..e.min(chars.len())]
                .iter()
                .collect()
        };
        let mut findings: Vec<Finding> = Vec::new();
        let mut add = |i: usize, kind: Option<&str>, ev: Evidence, score: Option<f32>| {
            let it = &self.card.items[i];
            let kind = kind.map(str::to_string);
            match findings
                .iter_mut()
                .find(|f| f.item == it.id && f.kind == kind)
            {
                Some(f) => f.evidence.push(ev),
                None => findings.push(Finding {
                    item: it.id.clone(),
                    title: it.title.clone(),
                    check: it.check.name().to_string(),
                    kind,
                    score,
                    weight: it.weight,
                    fatal: it.fatal,
                    evidence: vec![ev],
                }),
            }
        };
        for f in self.card.lexicon.find(text) {
            let text = slice(f.start, f.end);
            add(
                f.item,
                None,
                Evidence {
                    text,
                    start: f.start,
                    end: f.end,
                },
                None,
            );
        }
        for (i, it) in self.card.items.iter().enumerate() {
            match &it.check {
                // Conversation-level checks (`conversation.rs`).
                Check::Lexicon
                | Check::Required(..)
                | Check::Timing(..)
                | Check::Trajectory(_)
                | Check::Outcome(_) => {}
                Check::Model(Signal::Abuse, threshold) => {
                    if let Some(s) = scores.abusive.filter(|s| s >= threshold) {
                        // The whole reply is the evidence (the head reads all of it), with
                        // any card or ID number in it masked.
                        let ev = Evidence {
                            text: pii::mask_all(text),
                            start: 0,
                            end: chars.len(),
                        };
                        add(i, Some("abuse"), ev, Some(s));
                    }
                }
                Check::Regex(res) => {
                    for re in res {
                        // A pattern's first group, when it has one, is the evidence (the rest
                        // is context, such as the character before a promise).
                        for caps in re.captures_iter(text) {
                            let Some(m) = caps.get(1).or_else(|| caps.get(0)) else {
                                continue;
                            };
                            let start = text[..m.start()].chars().count();
                            let end = start + m.as_str().chars().count();
                            let ev = Evidence {
                                text: m.as_str().to_string(),
                                start,
                                end,
                            };
                            add(i, None, ev, None);
                        }
                    }
                }
                Check::Pii(kinds) => {
                    for p in pii::find(text, kinds) {
                        let ev = Evidence {
                            text: p.masked,
                            start: p.start,
                            end: p.end,
                        };
                        add(i, Some(p.kind.as_str()), ev, None);
                    }
                }
            }
        }
        // One item counts once however many times it was found.
        let mut failed: Vec<&str> = findings.iter().map(|f| f.item.as_str()).collect();
        failed.dedup();
        let fatal = findings.iter().any(|f| f.fatal);
        let lost: u32 = self
            .card
            .items
            .iter()
            .filter(|it| failed.contains(&it.id.as_str()))
            .map(|it| it.weight)
            .sum();
        Inspection {
            score: if fatal {
                0
            } else {
                100u32.saturating_sub(lost)
            },
            fatal,
            findings,
            abusive: scores.abusive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(text: &str) -> Inspection {
        Inspector::open(&QaConfig::default()).unwrap().inspect(text)
    }

    #[test]
    fn every_labelled_evasion_of_a_listed_word_is_found() {
        let qa = Inspector::open(&QaConfig::default()).unwrap();
        let data = include_str!("../../models/qa/data/replies.jsonl");
        let mut n = 0;
        for line in data.lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            if r["evasion"] == "none" || r["kind"] == "paraphrase" {
                continue;
            }
            let found: Vec<String> = qa
                .inspect(r["text"].as_str().unwrap())
                .findings
                .into_iter()
                .map(|f| f.item)
                .collect();
            for l in r["labels"].as_array().unwrap() {
                assert!(found.iter().any(|f| f == l), "{l} not found in {r}");
                n += 1;
            }
        }
        assert!(n > 100, "{n}");
    }

    #[test]
    fn a_clean_reply_scores_100() {
        let i = inspect("您好，很抱歉给您带来不便，我马上为您查询退款进度。");
        assert_eq!(
            (i.score, i.fatal, i.findings.len()),
            (100, false, 0),
            "{i:?}"
        );
        let i = inspect("Hello, sorry for the trouble. I will check your refund now.");
        assert_eq!(i.score, 100, "{i:?}");
    }

    #[test]
    fn findings_carry_evidence_and_set_the_score() {
        let i = inspect("你是不是傻 逼？爱买不买");
        assert!(i.fatal && i.score == 0, "{i:?}");
        let abuse = i
            .findings
            .iter()
            .find(|f| f.item == "abusive_language")
            .unwrap();
        assert_eq!(abuse.evidence[0].text, "傻 逼");
        assert_eq!((abuse.evidence[0].start, abuse.evidence[0].end), (4, 7));
        assert!(i.findings.iter().any(|f| f.item == "dismissive"));
        let i = inspect("I promise you a full refund, we guarantee a refund.");
        assert_eq!((i.score, i.fatal), (70, false), "{i:?}");
        let i = inspect("Your card 4111 1111 1111 1111 is confirmed");
        let p = &i.findings[0];
        assert_eq!(
            (p.item.as_str(), p.kind.as_deref()),
            ("pii_leak", Some("card_number"))
        );
        assert_eq!(p.evidence[0].text, "**** **** **** 1111");
        assert_eq!(i.score, 0);
    }
}
