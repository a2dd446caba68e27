//! Extractive, turn-aware summary of a conversation for the person taking over: the customer's
//! problem (first message), the most central other turns without repeats, and what is still open
//! (the latest message). Turn embeddings come from the multilingual encoder.

use crate::intents::sim::cosine;
use serde::Serialize;

/// A turn picked for the summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyTurn {
    pub turn: u32,
    pub role: String,
    /// Why it was picked: `problem`, `central` or `open`.
    pub why: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub text: String,
    pub key_turns: Vec<KeyTurn>,
    /// The customer's latest message when it is not the problem statement itself.
    pub open_question: Option<String>,
    /// `extractive` (with embeddings) or `lead` (no encoder available: first and last turns).
    pub mode: &'static str,
}

/// A turn to summarise.
pub struct Input<'a> {
    pub turn: u32,
    pub role: &'a str,
    pub text: &'a str,
}

const MAX_CHARS: usize = 240;

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= MAX_CHARS {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_CHARS - 1).collect();
    out.push('…');
    out
}

/// Summarise `turns` (oldest first). `emb[i]` is the embedding of `turns[i]`; with `None` the
/// summary falls back to the first and last customer turns (`mode: lead`). At most `max_turns`
/// key turns.
pub fn summarize(turns: &[Input], emb: Option<&[Vec<f32>]>, max_turns: usize) -> Summary {
    let customer: Vec<usize> = (0..turns.len())
        .filter(|&i| turns[i].role == "customer" && !turns[i].text.trim().is_empty())
        .collect();
    let mut picked: Vec<(usize, &'static str)> = Vec::new();
    if let Some(&first) = customer.first() {
        picked.push((first, "problem"));
    }
    let last = customer
        .last()
        .copied()
        .filter(|l| Some(l) != customer.first());
    let room = max_turns
        .max(1)
        .saturating_sub(picked.len() + usize::from(last.is_some()));
    let mode = match emb.filter(|e| e.len() == turns.len()) {
        Some(e) => {
            // Centrality: mean similarity to the other customer turns; then MMR.
            let cands: Vec<usize> = customer
                .iter()
                .copied()
                .filter(|i| picked.iter().all(|p| p.0 != *i) && Some(*i) != last)
                .collect();
            let central = |i: usize| {
                let others = customer.iter().filter(|&&j| j != i);
                let (s, n) = others.fold((0.0, 0), |(s, n), &j| (s + cosine(&e[i], &e[j]), n + 1));
                if n == 0 {
                    0.0
                } else {
                    s / n as f32
                }
            };
            let mut pool: Vec<(usize, f32)> = cands.iter().map(|&i| (i, central(i))).collect();
            for _ in 0..room {
                let chosen: Vec<usize> = picked.iter().map(|p| p.0).chain(last).collect();
                let best = pool
                    .iter()
                    .enumerate()
                    .map(|(k, &(i, c))| {
                        let red = chosen
                            .iter()
                            .map(|&j| cosine(&e[i], &e[j]))
                            .fold(0.0f32, f32::max);
                        (k, 0.7 * c - 0.3 * red)
                    })
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                let Some((k, _)) = best else { break };
                let (i, _) = pool.remove(k);
                picked.push((i, "central"));
            }
            "extractive"
        }
        None => "lead",
    };
    if let Some(l) = last {
        picked.push((l, "open"));
    }
    picked.sort_by_key(|p| p.0);
    let key_turns: Vec<KeyTurn> = picked
        .iter()
        .map(|&(i, why)| KeyTurn {
            turn: turns[i].turn,
            role: turns[i].role.to_string(),
            why,
            text: clip(turns[i].text),
        })
        .collect();
    let text = key_turns
        .iter()
        .map(|k| {
            let label = match k.why {
                "problem" => "Problem",
                "open" => "Latest",
                _ => "Also",
            };
            format!("{label} (turn {}): {}", k.turn, k.text)
        })
        .collect::<Vec<_>>()
        .join("\n");
    Summary {
        text,
        open_question: last.map(|l| clip(turns[l].text)),
        key_turns,
        mode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(texts: &[&'static str]) -> Vec<Input<'static>> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Input {
                turn: i as u32 + 1,
                role: "customer",
                text: t,
            })
            .collect()
    }

    #[test]
    fn problem_central_and_open_turns_are_kept_in_order() {
        let t = inputs(&[
            "card declined",
            "it says error 51",
            "error 51 again",
            "hello?",
            "any update?",
        ]);
        // Turns 2 and 3 are near-duplicates and the most central: one of them is kept.
        let e = vec![
            vec![1.0, 0.2, 0.0],
            vec![0.9, 0.5, 0.1],
            vec![0.9, 0.52, 0.1],
            vec![0.0, 0.0, 1.0],
            vec![0.3, 0.1, 0.8],
        ];
        let s = summarize(&t, Some(&e), 3);
        let picked: Vec<(u32, &str)> = s.key_turns.iter().map(|k| (k.turn, k.why)).collect();
        assert_eq!(picked[0], (1, "problem"));
        assert_eq!(picked.last(), Some(&(5, "open")));
        assert_eq!(picked.len(), 3);
        assert!(
            picked.iter().filter(|p| p.0 == 2 || p.0 == 3).count() == 1,
            "{picked:?}"
        );
        assert_eq!(s.mode, "extractive");
        assert_eq!(s.open_question.as_deref(), Some("any update?"));
        assert!(s.text.starts_with("Problem (turn 1): card declined"));
    }

    #[test]
    fn one_turn_and_no_embeddings() {
        let t = inputs(&["我的订单还没到"]);
        let s = summarize(&t, None, 3);
        assert_eq!(s.key_turns.len(), 1);
        assert_eq!(s.open_question, None);
        assert_eq!(s.mode, "lead");
        let s = summarize(&[], None, 3);
        assert!(s.key_turns.is_empty() && s.text.is_empty());
        let long = "x".repeat(1000);
        let t = vec![Input {
            turn: 1,
            role: "customer",
            text: &long,
        }];
        assert_eq!(
            summarize(&t, None, 3).key_turns[0].text.chars().count(),
            MAX_CHARS
        );
    }
}
