//! `triage eval --task summarize --data FILE`: ROUGE-1/2/L of the extractive summarizer and of
//! the lead-3 and longest-turn baselines, computed in the same run on the same conversations.
//! Reads DialogSum (`dialogue`, `summary`), TweetSumm (`dialogue`, `abstractive_summaries`) and
//! the API's own shape (`conversation: [{role, text}]`, `summaries` or `summary`).

use crate::config::Config;
use crate::summarize::rouge::{score_multi, Rouge};
use crate::summarize::{extractive, Turn};
use anyhow::{Context, Result};
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

/// One evaluation row: the conversation and its reference summaries.
pub struct Example {
    pub turns: Vec<Turn>,
    pub references: Vec<String>,
}

/// `"Customer: hi\nAgent: hello"` → turns; `#Person1#` style speakers are kept as the role.
pub fn parse_dialogue(d: &str) -> Vec<Turn> {
    let mut out: Vec<Turn> = Vec::new();
    for line in d.lines().filter(|l| !l.trim().is_empty()) {
        let (who, text) = match line.split_once(':') {
            Some((w, t)) if !w.is_empty() && w.chars().count() <= 24 && !w.contains(' ') => {
                (w.trim(), t.trim())
            }
            _ => {
                if let Some(last) = out.last_mut() {
                    last.text.push('\n');
                    last.text.push_str(line.trim());
                }
                continue;
            }
        };
        let role = match who.to_lowercase().as_str() {
            "customer" | "user" => "customer".to_string(),
            "agent" => "agent".to_string(),
            "bot" => "bot".to_string(),
            _ => who.to_string(),
        };
        out.push(Turn {
            role,
            text: text.to_string(),
        });
    }
    out
}

/// One JSONL row in any of the supported shapes.
pub fn parse_row(v: &Value) -> Result<Example> {
    let turns = if let Some(d) = v["dialogue"].as_str() {
        parse_dialogue(d)
    } else {
        serde_json::from_value(v["conversation"].clone())
            .context("neither `dialogue` (text) nor `conversation` ([{role, text}])")?
    };
    let mut references: Vec<String> = Vec::new();
    for key in ["summaries", "abstractive_summaries"] {
        if let Some(a) = v[key].as_array() {
            references.extend(a.iter().filter_map(|s| s.as_str()).map(String::from));
        }
    }
    if let Some(s) = v["summary"].as_str() {
        references.push(s.to_string());
    }
    anyhow::ensure!(!references.is_empty(), "no reference summary");
    Ok(Example { turns, references })
}

#[derive(Default, Clone, Copy)]
struct Mean {
    sum: Rouge,
    n: usize,
}

impl Mean {
    fn add(&mut self, r: Rouge) {
        self.sum.rouge1 += r.rouge1;
        self.sum.rouge2 += r.rouge2;
        self.sum.rouge_l += r.rouge_l;
        self.n += 1;
    }
    fn get(&self) -> Rouge {
        let n = self.n.max(1) as f64;
        Rouge {
            rouge1: self.sum.rouge1 / n,
            rouge2: self.sum.rouge2 / n,
            rouge_l: self.sum.rouge_l / n,
        }
    }
}

pub fn run(
    data: &Path,
    config: Option<&Path>,
    json: bool,
    max_words: Option<usize>,
    limit: Option<usize>,
) -> Result<()> {
    let text =
        std::fs::read_to_string(data).with_context(|| format!("cannot read {}", data.display()))?;
    let mut rows = Vec::new();
    for (i, l) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value = serde_json::from_str(l)
            .with_context(|| format!("{} line {}", data.display(), i + 1))?;
        rows.push(parse_row(&v).with_context(|| format!("{} line {}", data.display(), i + 1))?);
    }
    if let Some(n) = limit {
        rows.truncate(n);
    }
    let mut cfg = Config::load(config, &Default::default())?;
    let model = cfg.default_model.clone();
    cfg.models.retain(|m| m.name == model);
    let max_words = max_words.unwrap_or(cfg.summarize.max_words);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let (mut ours, mut lead3, mut longest) = (Mean::default(), Mean::default(), Mean::default());
    let mut words = [0usize; 3];
    rt.block_on(async {
        let models = super::load_models(&cfg)?;
        for ex in &rows {
            let units = extractive::units(&ex.turns);
            let texts: Vec<String> = units.iter().map(|u| u.text.clone()).collect();
            let emb = if texts.is_empty() {
                Vec::new()
            } else {
                models
                    .encode(None, texts, std::time::Instant::now())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .1
            };
            let picks = [
                extractive::choose(&ex.turns, &units, &emb, max_words),
                extractive::lead(&units, 3),
                extractive::longest_turn(&units),
            ];
            for (k, (p, m)) in picks
                .iter()
                .zip([&mut ours, &mut lead3, &mut longest])
                .enumerate()
            {
                let s = extractive::render(&ex.turns, &units, p);
                words[k] += crate::summarize::sentences::word_count(&s);
                m.add(score_multi(&s, &ex.references));
            }
        }
        anyhow::Ok(())
    })?;
    let n = rows.len().max(1);
    let report = serde_json::json!({
        "data": data.display().to_string(),
        "conversations": rows.len(),
        "max_words": max_words,
        "seconds": started.elapsed().as_secs_f64(),
        "extractive": ours.get(), "lead3": lead3.get(), "longest_turn": longest.get(),
        "mean_words": {"extractive": words[0] / n, "lead3": words[1] / n, "longest_turn": words[2] / n},
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} conversations, extractive max_words {max_words}, {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    println!("method          ROUGE-1  ROUGE-2  ROUGE-L  words");
    for (name, m, w) in [
        ("extractive", ours, words[0]),
        ("lead-3", lead3, words[1]),
        ("longest-turn", longest, words[2]),
    ] {
        let r = m.get();
        println!(
            "{name:<14} {:>8.4} {:>8.4} {:>8.4} {:>6}",
            r.rouge1,
            r.rouge2,
            r.rouge_l,
            w / n
        );
    }
    Ok(())
}
