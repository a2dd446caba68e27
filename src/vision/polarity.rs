//! Failure against success evidence in a screenshot's text: a fault is only recognised where the
//! screen says something went wrong ("failed", "declined", 失败, 无法, an error code) more than it
//! says something went right ("successful", "up to date", 成功, 已是最新).

use anyhow::{bail, Result};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

/// `[polarity]` of the catalog file: cue phrases, matched on lowercased OCR text (Latin cues
/// at word boundaries, CJK cues anywhere). Strong cues weigh 2, weak ones 1.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolaritySpec {
    pub failure: Vec<String>,
    #[serde(default)]
    pub failure_weak: Vec<String>,
    pub success: Vec<String>,
    #[serde(default)]
    pub success_weak: Vec<String>,
}

#[derive(Debug, Clone)]
struct Cue {
    phrase: String,
    re: Regex,
    weight: u32,
}

/// Compiled cues.
#[derive(Debug, Clone)]
pub struct Polarity {
    failure: Vec<Cue>,
    success: Vec<Cue>,
}

/// What one text said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weighed {
    pub failure: Vec<String>,
    pub success: Vec<String>,
    pub failure_weight: u32,
    pub success_weight: u32,
}

impl Weighed {
    /// The text says more about failure than about success, and more than one weak cue.
    pub fn failing(&self) -> bool {
        self.failure_weight >= 2 && self.failure_weight > self.success_weight
    }
}

fn cue(phrase: &str, weight: u32, at: &str) -> Result<Cue> {
    let p = phrase.trim().to_lowercase();
    if p.is_empty() {
        bail!("{at}: empty phrase");
    }
    let latin = p.is_ascii();
    let body = regex::escape(&p)
        .replace("\\ ", "\\s*")
        .replace(' ', "\\s*");
    let pattern = if latin { format!(r"\b{body}\b") } else { body };
    let re = RegexBuilder::new(&pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
    Ok(Cue {
        phrase: p,
        re,
        weight,
    })
}

/// A success cue right after a negation ("not approved", "未成功", "不在线") does not count.
fn negated(text: &str, start: usize) -> bool {
    let before = text[..start].trim_end();
    let word = before
        .rsplit(|c: char| c.is_whitespace())
        .next()
        .unwrap_or("");
    let cjk_tail: Vec<char> = before.chars().rev().take(2).collect();
    matches!(word, "not" | "never" | "no")
        || word.ends_with("n't")
        || word.ends_with("n’t")
        || cjk_tail
            .iter()
            .any(|c| ['未', '不', '没', '无', '非'].contains(c))
}

impl Polarity {
    pub fn compile(spec: &PolaritySpec, origin: &str) -> Result<Polarity> {
        let list = |v: &[String], w: u32, key: &str| -> Result<Vec<Cue>> {
            v.iter()
                .enumerate()
                .map(|(i, p)| {
                    cue(
                        p,
                        w,
                        &format!("fault catalog {origin}: polarity.{key}[{i}]"),
                    )
                })
                .collect()
        };
        let mut failure = list(&spec.failure, 2, "failure")?;
        failure.extend(list(&spec.failure_weak, 1, "failure_weak")?);
        let mut success = list(&spec.success, 2, "success")?;
        success.extend(list(&spec.success_weak, 1, "success_weak")?);
        if failure.is_empty() {
            bail!("fault catalog {origin}: polarity.failure is empty");
        }
        Ok(Polarity { failure, success })
    }

    /// Weigh `lower` (lowercased, whitespace collapsed). Each cue counts once; a success cue
    /// after a negation does not count.
    pub fn weigh(&self, lower: &str) -> Weighed {
        let mut w = Weighed::default();
        for c in &self.failure {
            if c.re.is_match(lower) {
                w.failure.push(c.phrase.clone());
                w.failure_weight += c.weight;
            }
        }
        for c in &self.success {
            if c.re.find_iter(lower).any(|m| !negated(lower, m.start())) {
                w.success.push(c.phrase.clone());
                w.success_weight += c.weight;
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Polarity {
        let spec = PolaritySpec {
            failure: vec!["failed".into(), "失败".into(), "declined".into()],
            failure_weak: vec!["try again".into(), "sorry".into()],
            success: vec!["successful".into(), "成功".into(), "up to date".into()],
            success_weak: vec!["approved".into(), "thank you".into(), "connected".into()],
        };
        Polarity::compile(&spec, "t").unwrap()
    }

    #[test]
    fn failure_outweighs_success_only_when_the_screen_says_so() {
        let p = p();
        assert!(p.weigh("payment failed. please try again").failing());
        assert!(!p.weigh("payment successful. thank you").failing());
        assert!(p.weigh("支付失败，请重试").failing());
        assert!(!p.weigh("支付成功").failing());
        // Negated success cues do not count; word boundaries hold.
        let w = p.weigh("transaction not approved. declined");
        assert!(w.success.is_empty() && w.failing(), "{w:?}");
        assert!(p.weigh("支付未成功 失败").success.is_empty());
        assert!(p.weigh("camera disconnected").success.is_empty());
        assert!(!p.weigh("you're up to date").failing());
        // Nothing either way: not failing.
        assert!(!p.weigh("wireless headphones $59.99").failing());
        // A strong failure beats a weak success; equal weights do not fail.
        assert!(p.weigh("card declined. thank you").failing());
        assert!(!p.weigh("sorry, thank you").failing());
        // One weak cue alone is not enough; two are.
        assert!(!p.weigh("sorry").failing());
        assert!(p.weigh("sorry, try again").failing());
    }

    #[test]
    fn empty_phrases_are_named() {
        let mut spec = PolaritySpec {
            failure: vec!["failed".into()],
            failure_weak: vec![],
            success: vec!["ok".into(), " ".into()],
            success_weak: vec![],
        };
        let e = Polarity::compile(&spec, "t").unwrap_err().to_string();
        assert!(e.contains("polarity.success[1]"), "{e}");
        spec.failure.clear();
        assert!(Polarity::compile(&spec, "t").is_err());
    }
}
