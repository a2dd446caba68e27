//! Encoder similarity for the `required` items: a reply's sentences against the item's example
//! phrasings (cosine of the default encoder's embeddings), so that a greeting, closing or
//! apology phrased in words no list holds still counts. One encoder call per item whose
//! phrases are missing, with the item's examples in the same batch (the engine's embedding
//! cache answers for them after the first time).

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
    let split: Vec<Vec<Evidence>> = replies.iter().map(|r| sentences(r)).collect();
    let mut texts: Vec<String> = examples.to_vec();
    texts.extend(split.iter().flatten().map(|e| e.text.clone()));
    let (_, emb, _) = models.encode(None, texts, admitted).await?;
    let (ex, mut rest) = (&emb[..examples.len()], &emb[examples.len()..]);
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
        if let Some(Some((cosine, evidence))) =
            best_sentences(models, &[t.text.as_str()], &ex.texts, admitted)
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
