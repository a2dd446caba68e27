//! Labelled text datasets for training and evaluation: JSONL (`text` + `label` or `labels`) or
//! CSV with a header (`text` column, then `label`/`labels`/`intent`/`category`).

use anyhow::{bail, Context, Result};
use std::path::Path;

/// One labelled text; intent data has exactly one label, emotion data one or more.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub labels: Vec<String>,
    /// The text's language when the data says (`lang` in JSONL); else detected where needed.
    pub lang: Option<String>,
    /// Emotion data: whether the message should escalate to a person (`escalate` in JSONL).
    pub escalate: Option<bool>,
}

/// Longest JSONL line (one example) read.
const MAX_LINE_BYTES: usize = 1 << 20;

pub fn read(path: &Path) -> Result<Vec<Example>> {
    let reading = || format!("reading {}", path.display());
    let rows = match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => read_csv(&std::fs::read_to_string(path).with_context(reading)?),
        _ => read_jsonl(std::io::BufReader::new(
            std::fs::File::open(path).with_context(reading)?,
        )),
    }
    .with_context(|| format!("in {}", path.display()))?;
    if rows.is_empty() {
        bail!("{} holds no examples", path.display());
    }
    Ok(rows)
}

fn read_jsonl(r: impl std::io::BufRead) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    crate::jsonl::each_line(r, MAX_LINE_BYTES, |no, line| {
        let line = line.map_err(|len| anyhow::anyhow!("line {no}: {len} bytes, over 1 MiB"))?;
        let v: serde_json::Value =
            serde_json::from_slice(line).with_context(|| format!("line {no}: invalid JSON"))?;
        let t = v["text"]
            .as_str()
            .with_context(|| format!("line {no}: no \"text\""))?;
        let labels: Vec<String> = match (&v["label"], &v["labels"]) {
            (serde_json::Value::String(l), _) => vec![l.clone()],
            (_, serde_json::Value::Array(ls)) => ls
                .iter()
                .filter_map(|l| l.as_str().map(String::from))
                .collect(),
            _ => bail!("line {no}: no \"label\" or \"labels\""),
        };
        if labels.is_empty() {
            bail!("line {no}: empty labels");
        }
        out.push(Example {
            text: t.to_string(),
            labels,
            lang: v["lang"].as_str().map(String::from),
            escalate: v["escalate"].as_bool(),
        });
        Ok(())
    })?;
    Ok(out)
}

/// The records of an RFC 4180 CSV text (`csv`: quoted fields may hold commas, quotes ("") and
/// newlines; rows may differ in length); blank lines are skipped.
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for rec in r.records() {
        rows.push(
            rec.context("invalid CSV")?
                .iter()
                .map(String::from)
                .collect(),
        );
    }
    Ok(rows)
}

fn read_csv(text: &str) -> Result<Vec<Example>> {
    let rows = parse_csv(text.trim_start_matches('\u{feff}'))?;
    let header = rows.first().context("empty CSV")?;
    let col = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.contains(&h.trim().to_lowercase().as_str()))
    };
    let t = col(&["text", "instruction"]).context("CSV header has no `text` column")?;
    let (l, multi) = match (col(&["label", "intent", "category"]), col(&["labels"])) {
        (Some(l), _) => (l, false),
        (None, Some(l)) => (l, true),
        _ => bail!("CSV header has no `label` or `labels` column"),
    };
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate().skip(1) {
        if r.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let (Some(text), Some(label)) = (r.get(t), r.get(l)) else {
            bail!("row {}: missing columns", i + 1);
        };
        let labels: Vec<String> = if multi {
            label
                .split(';')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        } else {
            vec![label.trim().to_string()]
        };
        out.push(Example {
            text: text.clone(),
            labels,
            lang: None,
            escalate: None,
        });
    }
    Ok(out)
}

/// Read and concatenate several files.
pub fn read_all(paths: &[std::path::PathBuf]) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(read(p)?);
    }
    Ok(out)
}

/// Emotion rows relabelled for an escalation head: `escalate` or `calm` from their `escalate`
/// field (every row must have one).
pub fn escalation_rows(rows: Vec<Example>) -> Result<Vec<Example>> {
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let e = r
                .escalate
                .with_context(|| format!("row {}: no \"escalate\" field", i + 1))?;
            Ok(Example {
                labels: vec![if e { "escalate" } else { "calm" }.to_string()],
                ..r
            })
        })
        .collect()
}

/// Each row's language as the server would see it: the language detector's answer.
pub fn detect_languages(rows: &[Example]) -> Vec<String> {
    let id = crate::lang::LangId::default();
    rows.iter().map(|r| id.detect(&r.text).language).collect()
}

/// The sorted distinct labels of a dataset.
pub fn label_set(rows: &[Example]) -> Vec<String> {
    let mut s: Vec<String> = rows.iter().flat_map(|r| r.labels.iter().cloned()).collect();
    s.sort();
    s.dedup();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jsonl_and_csv() {
        let j = read_jsonl(
            "{\"text\":\"a\",\"label\":\"x\"}\n\n{\"text\":\"b\",\"labels\":[\"y\",\"z\"]}\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(j[1].labels, vec!["y", "z"]);
        let c = read_csv("text,label\n\"hi, \"\"you\"\"\nthere\",greet\nbye,leave\n").unwrap();
        assert_eq!(c[0].text, "hi, \"you\"\nthere");
        assert_eq!(c[1].labels, vec!["leave"]);
        assert!(read_jsonl(&b"{\"text\":\"a\"}"[..]).is_err());
        assert!(read_csv("foo,bar\n1,2\n").is_err());
        // CRLF line ends, a blank line, a BOM, a multi-label column.
        let c = read_csv("\u{feff}Text,Labels\r\na,x; y\r\n\r\nb,z\r\n").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].text.as_str(), &c[0].labels),
            ("a", &vec!["x".to_string(), "y".into()])
        );
        let e = read_csv("text,label\na,x\n\nb\n").unwrap_err();
        assert!(e.to_string().contains("row 3"), "{e}");
    }
}
