//! Everyday calm sentences for the escalation head: parallel training pairs (Tatoeba) whose
//! English side the served emotion head reads as calm, both sides labelled `calm`. A linear head
//! trained on support messages only flagged a quarter of ordinary sentences ("I brush my teeth
//! twice a day") and flipped between a sentence and its translation; a hidden layer fixed most of
//! that, these rows take off the last flags.

use crate::heads::align::read_pairs;
use crate::heads::data::Example;
use crate::heads::embed_cache::DatasetEncoder;
use crate::heads::head::{sha256_hex, Head};
use anyhow::Result;
use std::path::Path;

/// Every escalating group of the English side under this calibrated score (0.5 = detected).
pub const CALM_BELOW: f32 = 0.2;

/// Up to `n` training pairs of `pairs` (the split `triage align` trains on; its held-out pairs
/// stay unseen) whose English side has every escalating group (`groups`) of the emotion `head`
/// (read through `enc`, its encoder) under `CALM_BELOW`, in a fixed order (sha256 of the English
/// side), as calm rows: English, then its translation (`zh`).
pub fn rows(
    head: &Head,
    enc: &DatasetEncoder,
    groups: &[&String],
    pairs: &Path,
    n: usize,
) -> Result<Vec<Example>> {
    let (train, _) = read_pairs(pairs, 10)?;
    let x = enc.embed_all(&train.source, "calm pairs (English side)")?;
    let langid = crate::lang::LangId::default();
    let mut calm: Vec<(String, usize)> = Vec::new();
    for (i, v) in x.iter().enumerate() {
        let lang = langid.detect(&train.source[i]).language;
        let g = head.groups(v, Some(&lang));
        let top = groups
            .iter()
            .map(|k| g.get(k.as_str()).copied().unwrap_or(0.0))
            .fold(0.0f32, f32::max);
        if top < CALM_BELOW {
            let key = sha256_hex(format!("calm:{}", train.source[i]).as_bytes());
            calm.push((key, i));
        }
    }
    calm.sort();
    let row = |text: &str, lang: Option<&str>| Example {
        text: text.to_string(),
        labels: vec!["calm".into()],
        lang: lang.map(str::to_string),
        escalate: Some(false),
    };
    eprintln!(
        "calm pairs: {} of {} training pairs under {CALM_BELOW} on every escalating group, {} used",
        calm.len(),
        train.source.len(),
        calm.len().min(n)
    );
    Ok(calm
        .iter()
        .take(n)
        .flat_map(|&(_, i)| {
            [
                row(&train.source[i], None),
                row(&train.target[i], Some("zh")),
            ]
        })
        .collect())
}
