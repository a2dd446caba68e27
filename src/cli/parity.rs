//! `triage parity`: Chinese against English on the same intents and emotions, with the served
//! heads exactly as the server runs them (language detection, per-language calibration, the
//! routing policy's escalation rules): intents, escalation, abusive language, agreement on
//! parallel sentences, and the eval-only public Chinese sets where present.

use crate::cli::heads::head_encoder;
use crate::config::Config;
use crate::heads::align::read_pairs;
use crate::heads::calibrate::ESCALATE;
use crate::heads::data::{self, Example};
use crate::heads::embed_cache::DatasetEncoder;
use crate::heads::head::Head;
use crate::heads::registry::{HeadRegistry, ABUSIVE};
use crate::routing::{self, Target, TurnSignals};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct ParityArgs {
    /// The project's own data (models/data): zh/ and en/ dev splits.
    #[arg(long, default_value = "models/data")]
    pub data: PathBuf,
    /// Prepared public data (scripts/prepare_data.py output): bitext.dev.jsonl, and the
    /// eval-only Chinese sets when present.
    #[arg(long)]
    pub prepared: Option<PathBuf>,
    /// Parallel text for the agreement check (held-out split of `triage align`).
    #[arg(long, default_value = "../shared/data/tatoeba_cmn_eng/train.tsv")]
    pub pairs: PathBuf,
    /// COLD dev split (CSV) for the abuse head.
    #[arg(long, default_value = "../shared/data/cold/dev.csv")]
    pub cold: PathBuf,
    #[arg(long)]
    pub json: bool,
    #[arg(long, env = "TRIAGE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Intent figures of one dev set.
#[derive(Debug, Clone, Serialize)]
pub struct IntentFigures {
    pub examples: usize,
    /// Top label right and not rejected as out of scope.
    pub accuracy: f32,
    pub rejected: f32,
    /// Expected calibration error of the answered confidence.
    pub ece: f32,
}

/// Escalation figures of one dev set (the routing policy's non-intent rules).
#[derive(Debug, Clone, Serialize)]
pub struct EscalationFigures {
    pub escalating: usize,
    pub calm: usize,
    /// Share of escalating messages sent to a person (emotion, keyword, abuse or human-request rules).
    pub recall: f32,
    /// Share of calm messages sent to a person by those rules.
    pub false_flags: f32,
    /// The same with the emotion flag alone.
    pub emotion_recall: f32,
    pub emotion_false_flags: f32,
}

/// Binary detection figures.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub examples: usize,
    pub precision: f32,
    pub recall: f32,
    pub f1: f32,
}

/// Agreement of the two sides of held-out parallel pairs.
#[derive(Debug, Clone, Serialize)]
pub struct PairFigures {
    pub pairs: usize,
    /// The same top in-scope intent (out of scope ignored).
    pub same_top_intent: f32,
    /// The same answer: the same intent, or both out of scope.
    pub same_answer: f32,
    /// The same escalation flag (emotion flag, as `/v1/emotion` gives it).
    pub same_flag: f32,
    /// Share flagged on each side (English, translation).
    pub flagged: (f32, f32),
}

#[derive(Debug, Default, Serialize)]
pub struct Parity {
    pub intents: BTreeMap<String, IntentFigures>,
    pub escalation: BTreeMap<String, EscalationFigures>,
    pub abuse: BTreeMap<String, Detection>,
    /// Held-out parallel pairs.
    pub pairs: Option<PairFigures>,
    /// NLPCC 2013 (eval only): anger group (anger + disgust posts) detection.
    pub nlpcc_anger: Option<Detection>,
}

/// The heads as served, each with its encoder (tuned layers included).
struct Served {
    cfg: Config,
    intent: (Head, DatasetEncoder),
    emotion: (Head, DatasetEncoder),
    abuse: Option<(Head, DatasetEncoder)>,
    escalation: Option<(Head, DatasetEncoder)>,
    esc: crate::heads::emotion::EscalationConfig,
    langid: crate::lang::LangId,
}

impl Served {
    fn load(config: Option<&Path>) -> Result<Served> {
        let cfg = Config::load(config, &Default::default())?;
        let reg = HeadRegistry::load(&cfg.intent, &cfg.emotion, &cfg.models)?;
        let open = |h: &Head| -> Result<(Head, DatasetEncoder)> {
            Ok((h.clone(), head_encoder(config, h)?))
        };
        let intent = reg
            .intents
            .get(&reg.default_intent)
            .context("no default intent head")?;
        let emotion = reg.emotion.as_ref().context("no emotion head")?;
        Ok(Served {
            intent: open(intent)?,
            emotion: open(emotion)?,
            abuse: reg.abuse.as_deref().map(open).transpose()?,
            escalation: reg.escalation_head.as_deref().map(open).transpose()?,
            esc: reg.escalation.clone(),
            cfg,
            langid: crate::lang::LangId::default(),
        })
    }

    fn langs(&self, texts: &[String]) -> Vec<String> {
        texts
            .iter()
            .map(|t| self.langid.detect(t).language)
            .collect()
    }

    /// The figures, and each text's (top label, answered out of scope).
    fn intents(&self, rows: &[Example]) -> Result<(IntentFigures, Vec<(String, bool)>)> {
        let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
        let (head, enc) = &self.intent;
        let x = enc.embed_all(&texts, "intent set")?;
        let langs = self.langs(&texts);
        let (mut ok, mut rejected, mut conf, mut top) = (0, 0, Vec::new(), Vec::new());
        for ((v, l), r) in x.iter().zip(&langs).zip(rows) {
            let p = head.predict_intent(v, 1, Some(l));
            let right = p.label == r.labels[0];
            ok += usize::from(right && !p.out_of_scope);
            rejected += usize::from(p.out_of_scope);
            conf.push((p.score, right));
            top.push((p.label, p.out_of_scope));
        }
        let n = rows.len().max(1) as f32;
        Ok((
            IntentFigures {
                examples: rows.len(),
                accuracy: ok as f32 / n,
                rejected: rejected as f32 / n,
                ece: crate::heads::calibrate::ece(&conf),
            },
            top,
        ))
    }

    /// Per text: (sent to a person by the non-intent rules, emotion flag, anger group score).
    fn escalations(&self, texts: &[String]) -> Result<Vec<(bool, bool, f32)>> {
        let (head, enc) = &self.emotion;
        let x = enc.embed_all(texts, "emotion set")?;
        let abuse = match &self.abuse {
            Some((h, e)) => Some((h, e.embed_all(texts, "abuse set")?)),
            None => None,
        };
        let escalation = match &self.escalation {
            Some((h, e)) => Some((h, e.embed_all(texts, "escalation set")?)),
            None => None,
        };
        let langs = self.langs(texts);
        let esc = &self.esc;
        Ok(texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let l = Some(langs[i].as_str());
                let groups = head.groups(&x[i], l);
                let head_score = escalation
                    .as_ref()
                    .map(|(h, ex)| h.label_score(&ex[i], l, ESCALATE));
                let flag = crate::heads::emotion::escalation(&groups, head_score, esc).0;
                let score = abuse
                    .as_ref()
                    .map(|(h, ax)| h.label_score(&ax[i], l, ABUSIVE));
                let s = TurnSignals {
                    text: t,
                    language: &langs[i],
                    intent: None,
                    emotion: Some(&groups),
                    tier: None,
                    abuse: score,
                    escalation: head_score,
                    screenshot: None,
                    kb: None,
                };
                let d = routing::decide(&self.cfg.routing, esc, &s, &[], 1);
                let anger = groups.get("anger").copied().unwrap_or(0.0);
                (d.route.target > Target::Bot, flag, anger)
            })
            .collect())
    }

    fn escalation(&self, rows: &[Example]) -> Result<EscalationFigures> {
        let rows: Vec<&Example> = rows.iter().filter(|r| r.escalate.is_some()).collect();
        let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
        let out = self.escalations(&texts)?;
        let (mut pos, mut neg) = (0usize, 0usize);
        let (mut tp, mut fp, mut etp, mut efp) = (0usize, 0usize, 0usize, 0usize);
        for (r, (routed, flag, _)) in rows.iter().zip(&out) {
            if r.escalate == Some(true) {
                pos += 1;
                tp += usize::from(*routed);
                etp += usize::from(*flag);
            } else {
                neg += 1;
                fp += usize::from(*routed);
                efp += usize::from(*flag);
            }
        }
        let (p, n) = (pos.max(1) as f32, neg.max(1) as f32);
        Ok(EscalationFigures {
            escalating: pos,
            calm: neg,
            recall: tp as f32 / p,
            false_flags: fp as f32 / n,
            emotion_recall: etp as f32 / p,
            emotion_false_flags: efp as f32 / n,
        })
    }

    fn abuse(&self, rows: &[Example]) -> Result<Option<Detection>> {
        let Some((h, enc)) = &self.abuse else {
            return Ok(None);
        };
        let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
        let x = enc.embed_all(&texts, "abuse set")?;
        let langs = self.langs(&texts);
        let pairs: Vec<(bool, bool)> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let gold = r.labels.iter().any(|l| l == ABUSIVE);
                (gold, h.label_score(&x[i], Some(&langs[i]), ABUSIVE) >= 0.5)
            })
            .collect();
        Ok(Some(detection(&pairs)))
    }
}

/// Precision, recall and F1 of (gold, predicted) pairs.
pub fn detection(pairs: &[(bool, bool)]) -> Detection {
    let tp = pairs.iter().filter(|p| p.0 && p.1).count() as f32;
    let fp = pairs.iter().filter(|p| !p.0 && p.1).count() as f32;
    let fneg = pairs.iter().filter(|p| p.0 && !p.1).count() as f32;
    let precision = tp / (tp + fp).max(1.0);
    let recall = tp / (tp + fneg).max(1.0);
    Detection {
        examples: pairs.len(),
        precision,
        recall,
        f1: if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        },
    }
}

/// COLD's CSV (`,split,topic,label,TEXT`) as abuse rows.
fn read_cold(path: &Path) -> Result<Vec<Example>> {
    Ok(data::read(path)?
        .into_iter()
        .map(|r| Example {
            labels: vec![if r.labels[0] == "1" { ABUSIVE } else { "ok" }.to_string()],
            ..r
        })
        .collect())
}

/// Every figure whose data is present (absent sets are skipped, with a note on stderr).
pub fn run(a: &ParityArgs) -> Result<Parity> {
    let s = Served::load(a.config.as_deref())?;
    let mut out = Parity::default();
    let read = |p: PathBuf| -> Option<Vec<Example>> {
        match p.exists() {
            true => data::read(&p).ok(),
            false => {
                eprintln!("skipped: {} is absent", p.display());
                None
            }
        }
    };
    let zh = a.data.join("zh");
    let prepared = a.prepared.clone().unwrap_or_else(|| {
        Config::load(a.config.as_deref(), &Default::default())
            .map(|c| c.home().join("data"))
            .unwrap_or_default()
    });
    for (name, path) in [
        ("en", prepared.join("bitext.dev.jsonl")),
        ("zh", zh.join("intents.dev.jsonl")),
        ("zh-Hant (converted)", zh.join("intents.dev.hant.jsonl")),
        ("zh-Hant (native)", zh.join("intents_hant.jsonl")),
    ] {
        if let Some(rows) = read(path) {
            let rows: Vec<Example> = rows.into_iter().filter(|r| r.labels[0] != "oos").collect();
            out.intents.insert(name.into(), s.intents(&rows)?.0);
        }
    }
    for (name, path) in [
        ("en", a.data.join("en/emotion.dev.jsonl")),
        ("zh", zh.join("emotion.dev.jsonl")),
        ("zh-Hant (native)", zh.join("emotion_hant.jsonl")),
    ] {
        if let Some(rows) = read(path) {
            out.escalation.insert(name.into(), s.escalation(&rows)?);
        }
    }
    for (name, rows) in [
        ("en", read(a.data.join("abuse/en.dev.jsonl"))),
        ("zh", read(a.data.join("abuse/zh.dev.jsonl"))),
        (
            "COLD dev (zh)",
            a.cold.exists().then(|| read_cold(&a.cold).ok()).flatten(),
        ),
    ] {
        if let Some(rows) = rows {
            if let Some(d) = s.abuse(&rows)? {
                out.abuse.insert(name.into(), d);
            }
        }
    }
    if a.pairs.exists() {
        let (_, held) = read_pairs(&a.pairs, 10)?;
        let rows = |t: &[String]| -> Vec<Example> {
            t.iter()
                .map(|x| Example {
                    text: x.clone(),
                    labels: vec![String::new()],
                    lang: None,
                    escalate: None,
                })
                .collect()
        };
        let (_, en) = s.intents(&rows(&held.source))?;
        let (_, zh) = s.intents(&rows(&held.target))?;
        let same_intent = en.iter().zip(&zh).filter(|(a, b)| a.0 == b.0).count();
        let same_answer = en
            .iter()
            .zip(&zh)
            .filter(|(a, b)| (a.1 && b.1) || (a == b))
            .count();
        let (ee, ze) = (s.escalations(&held.source)?, s.escalations(&held.target)?);
        let same_flag = ee.iter().zip(&ze).filter(|(a, b)| a.1 == b.1).count();
        let n = held.source.len().max(1) as f32;
        let share = |v: &[(bool, bool, f32)]| v.iter().filter(|x| x.1).count() as f32 / n;
        out.pairs = Some(PairFigures {
            pairs: held.source.len(),
            same_top_intent: same_intent as f32 / n,
            same_answer: same_answer as f32 / n,
            same_flag: same_flag as f32 / n,
            flagged: (share(&ee), share(&ze)),
        });
    } else {
        eprintln!("skipped: {} is absent", a.pairs.display());
    }
    if let Some(rows) = read(prepared.join("nlpcc2013.dev.eval.jsonl")) {
        let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
        let e = s.escalations(&texts)?;
        let pairs: Vec<(bool, bool)> = rows
            .iter()
            .zip(&e)
            .map(|(r, x)| (r.labels[0] == "anger", x.2 >= 0.5))
            .collect();
        out.nlpcc_anger = Some(detection(&pairs));
    }
    Ok(out)
}

impl Parity {
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "intents (default set, out of scope counted as wrong)");
        let _ = writeln!(
            s,
            "  {:<22}{:>9}{:>10}{:>10}{:>8}",
            "set", "examples", "accuracy", "rejected", "ECE"
        );
        for (n, f) in &self.intents {
            let _ = writeln!(
                s,
                "  {n:<22}{:>9}{:>10.4}{:>10.4}{:>8.4}",
                f.examples, f.accuracy, f.rejected, f.ece
            );
        }
        let _ = writeln!(
            s,
            "\nescalation (routing rules other than intent; emotion flag alone)"
        );
        let _ = writeln!(
            s,
            "  {:<22}{:>7}{:>6}{:>9}{:>13}{:>10}{:>13}",
            "set", "escal.", "calm", "recall", "false flags", "emo. rec.", "emo. false"
        );
        for (n, f) in &self.escalation {
            let _ = writeln!(
                s,
                "  {n:<22}{:>7}{:>6}{:>9.4}{:>13.4}{:>10.4}{:>13.4}",
                f.escalating,
                f.calm,
                f.recall,
                f.false_flags,
                f.emotion_recall,
                f.emotion_false_flags
            );
        }
        let det = |s: &mut String, n: &str, d: &Detection| {
            let _ = writeln!(
                s,
                "  {n:<22}{:>9}{:>11.4}{:>9.4}{:>8.4}",
                d.examples, d.precision, d.recall, d.f1
            );
        };
        if !self.abuse.is_empty() {
            let _ = writeln!(s, "\nabusive language");
            let _ = writeln!(
                s,
                "  {:<22}{:>9}{:>11}{:>9}{:>8}",
                "set", "examples", "precision", "recall", "F1"
            );
            for (n, d) in &self.abuse {
                det(&mut s, n, d);
            }
        }
        if let Some(p) = &self.pairs {
            let _ = writeln!(
                s,
                "\nparallel held-out pairs ({}): same top intent {:.4}, same answer (intent or out of scope) {:.4}, same emotion flag {:.4} (flagged: English {:.4}, translation {:.4})",
                p.pairs, p.same_top_intent, p.same_answer, p.same_flag, p.flagged.0, p.flagged.1
            );
        }
        if let Some(d) = &self.nlpcc_anger {
            let _ = writeln!(s, "\nNLPCC 2013 dev (eval only), anger + disgust posts");
            det(&mut s, "anger group >= 0.5", d);
        }
        s
    }
}

pub fn command(a: ParityArgs) -> Result<()> {
    let p = run(&a)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        print!("{}", p.table());
    }
    Ok(())
}
