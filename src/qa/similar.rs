//! Encoder similarity for the `required` items: a reply's sentences against the item's example
//! phrasings (cosine of the default encoder's embeddings), so that a greeting, closing or
//! apology phrased in words no list holds still counts. The examples are embedded once (kept in
//! the `Inspector`); then one encoder call per item whose phrases are missing.

use super::conversation::{target_turn, Similar};
use super::scorecard::Check;
use super::{Evidence, Inspector};
use crate::engine::Models;
use crate::error::AppResult;
use crate::store::turns::TurnRecord;
use std::collections::HashMap;
use std::time::Instant;

/// A reply's sentences (split after 。！？!?. and line breaks) with their character offsets.
pub fn sentences(text: &str) -> Vec<Evidence> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in chars.iter().enumerate() {
        let end = matches!(c, '。' | '！' | '？' | '!' | '?' | '\n' | '；' | ';')
            || (*c == '.' && chars.get(i + 1).is_none_or(|n| n.is_whitespace()));
        if end || i + 1 == chars.len() {
            let s: String = chars[start..=i].iter().collect();
            if s.trim().chars().count() > 1 {
                out.push(Evidence {
                    text: s.trim().to_string(),
                    start,
                    end: i + 1,
                });
            }
            start = i + 1;
        }
    }
    out
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut d, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        d += x * y;
        na += x * x;
        nb += y * y;
    }
    d / (na.sqrt() * nb.sqrt()).max(1e-12)
}

/// For each reply, its sentence most similar to any of `examples`: (cosine, sentence).
pub async fn best_sentences(
    models: &Models,
    replies: &[&str],
    examples: &[String],
    admitted: Instant,
) -> AppResult<Vec<Option<(f32, Evidence)>>> {
    let (_, ex, _) = models.encode(None, examples.to_vec(), admitted).await?;
    best_against(models, replies, &ex, admitted).await
}

/// For each reply, its sentence most similar to any of the embedded examples `ex`.
async fn best_against(
    models: &Models,
    replies: &[&str],
    ex: &[Vec<f32>],
    admitted: Instant,
) -> AppResult<Vec<Option<(f32, Evidence)>>> {
    let split: Vec<Vec<Evidence>> = replies.iter().map(|r| sentences(r)).collect();
    let texts: Vec<String> = split.iter().flatten().map(|e| e.text.clone()).collect();
    if texts.is_empty() {
        return Ok(vec![None; replies.len()]);
    }
    let (_, emb, _) = models.encode(None, texts, admitted).await?;
    let mut rest = &emb[..];
    let mut out = Vec::with_capacity(replies.len());
    for sents in split {
        let (mine, tail) = rest.split_at(sents.len());
        rest = tail;
        let best = sents
            .into_iter()
            .zip(mine)
            .map(|(s, v)| {
                let c = ex.iter().map(|e| cosine(v, e)).fold(f32::MIN, f32::max);
                (c, s)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        out.push(best);
    }
    Ok(out)
}

/// The item's example embeddings: computed on first use, then kept in the inspector.
async fn examples_of(
    models: &Models,
    qa: &Inspector,
    id: &str,
    texts: &[String],
    admitted: Instant,
) -> AppResult<std::sync::Arc<Vec<Vec<f32>>>> {
    let kept = qa
        .example_embeddings
        .lock()
        .ok()
        .and_then(|m| m.get(id).cloned());
    if let Some(e) = kept {
        return Ok(e);
    }
    let (_, e, _) = models.encode(None, texts.to_vec(), admitted).await?;
    let e = std::sync::Arc::new(e);
    if let Ok(mut m) = qa.example_embeddings.lock() {
        m.insert(id.to_string(), e.clone());
    }
    Ok(e)
}

/// For each `required` item with examples whose phrases are not in its target reply: the
/// target reply's sentence most similar to the examples.
pub async fn required(
    models: &Models,
    qa: &Inspector,
    turns: &[TurnRecord],
    admitted: Instant,
) -> AppResult<HashMap<String, Similar>> {
    let mut out = HashMap::new();
    for it in &qa.scorecard().items {
        let Check::Required(when, phrases, Some(ex)) = &it.check else {
            continue;
        };
        let Some(t) = target_turn(*when, turns) else {
            continue;
        };
        if !phrases.find(&t.text).is_empty() {
            continue;
        }
        let ex = examples_of(models, qa, &it.id, &ex.texts, admitted).await?;
        if let Some(Some((cosine, evidence))) =
            best_against(models, &[t.text.as_str()], &ex, admitted)
                .await?
                .pop()
        {
            out.insert(
                it.id.clone(),
                Similar {
                    turn: t.turn,
                    evidence,
                    cosine,
                },
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_keep_their_offsets() {
        let s = sentences("早上好，我是小李。请问有什么事？ OK. v1.2 works");
        let texts: Vec<&str> = s.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            vec!["早上好，我是小李。", "请问有什么事？", "OK.", "v1.2 works"]
        );
        assert_eq!((s[1].start, s[1].end), (9, 16));
        assert!(sentences("").is_empty());
    }
}
