//! Extractive, turn-aware summary over sentence embeddings: the customer's problem (their
//! first turn, most central sentence first), what was tried (the agent's central suggestion),
//! what is still open, then the most central remaining sentences without repeats (MMR) up to a
//! word budget; bot turns (canned text) are left out. Also the lead-3 and longest-turn
//! baselines the evaluation compares against.

use super::sentences::{split, word_count};
use super::Turn;
use crate::intents::sim::cosine;
use serde::Serialize;

/// A sentence of the conversation.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Index of its turn in the conversation (0-based).
    pub turn: usize,
    pub text: String,
    pub words: usize,
}

/// A turn the summary drew on, and why.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct KeyTurn {
    /// 1-based turn number.
    pub turn: usize,
    pub role: String,
    /// `problem`, `tried`, `open` or `central`.
    pub why: &'static str,
    pub text: String,
}

/// Sentences of all turns, in order.
pub fn units(turns: &[Turn]) -> Vec<Unit> {
    turns
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            split(&t.text).into_iter().map(move |s| Unit {
                turn: i,
                words: word_count(&s),
                text: s,
            })
        })
        .collect()
}

fn is_customer(role: &str) -> bool {
    role == "customer" || role == "user"
}

fn is_bot(role: &str) -> bool {
    matches!(role, "bot" | "assistant")
}

fn is_support(role: &str) -> bool {
    matches!(role, "agent" | "bot" | "assistant")
}

/// Does the customer's last turn still wait for an answer (no support turn after it, or a question)?
fn open_turn(turns: &[Turn]) -> Option<usize> {
    let last_c = turns.iter().rposition(|t| is_customer(&t.role))?;
    let first_c = turns.iter().position(|t| is_customer(&t.role))?;
    let later_support = turns[last_c + 1..].iter().any(|t| is_support(&t.role));
    let asks = turns[last_c].text.contains(['?', '？', '吗', '呢']);
    // "thanks", "ok": an acknowledgement, not an open question.
    let says_something = asks || word_count(&turns[last_c].text) >= 3;
    (last_c != first_c && says_something && (!later_support || asks)).then_some(last_c)
}

/// Indices of the chosen units with the reason, in conversation order. `emb[i]` is the
/// embedding of `units[i]`.
pub fn choose(
    turns: &[Turn],
    units: &[Unit],
    emb: &[Vec<f32>],
    max_words: usize,
) -> Vec<(usize, &'static str)> {
    if units.is_empty() || emb.len() != units.len() {
        return Vec::new();
    }
    let dim = emb[0].len();
    let mut centroid = vec![0f32; dim];
    for e in emb {
        for (c, x) in centroid.iter_mut().zip(e) {
            *c += x;
        }
    }
    let central: Vec<f32> = emb.iter().map(|e| cosine(e, &centroid)).collect();
    // Very short sentences ("ok", "thanks") only when nothing else is there.
    // Bot turns are canned text (greetings, menus): never summary material.
    let substantive = |i: usize| {
        !is_bot(&turns[units[i].turn].role)
            && (units[i].words >= 3 || units.iter().all(|u| u.words < 3))
    };
    let best_of = |pred: &dyn Fn(usize) -> bool| {
        (0..units.len())
            .filter(|&i| pred(i) && substantive(i))
            .max_by(|&a, &b| central[a].total_cmp(&central[b]))
    };
    let mut chosen: Vec<(usize, &'static str)> = Vec::new();
    let mut words = 0;
    let first_c = turns.iter().position(|t| is_customer(&t.role));
    // The problem: from the customer's first turn, or the first two turns of a dialogue
    // without customer/agent roles.
    let problem = match first_c {
        Some(fc) => best_of(&|i| units[i].turn == fc),
        None => best_of(&|i| units[i].turn < 2),
    };
    if let Some(p) = problem {
        chosen.push((p, "problem"));
        words += units[p].words;
        // The rest of that turn too (it usually states the problem), within 60% of the budget.
        let t = units[p].turn;
        for (q, u) in units.iter().enumerate() {
            if u.turn == t && q != p && substantive(q) && (words + u.words) * 5 <= max_words * 3 {
                chosen.push((q, "problem"));
                words += u.words;
            }
        }
    }
    let open = open_turn(turns);
    let slots: [(Option<usize>, &'static str); 2] = [
        (
            best_of(&|i| is_support(&turns[units[i].turn].role)),
            "tried",
        ),
        (open.and_then(|o| best_of(&|i| units[i].turn == o)), "open"),
    ];
    for (slot, why) in slots {
        if let Some(i) = slot {
            if words + units[i].words <= max_words && chosen.iter().all(|c| c.0 != i) {
                chosen.push((i, why));
                words += units[i].words;
            }
        }
    }
    // MMR over the rest until the budget is used.
    let mut pool: Vec<usize> = (0..units.len())
        .filter(|&i| substantive(i) && chosen.iter().all(|c| c.0 != i))
        .collect();
    while !pool.is_empty() {
        let score = |i: usize| {
            let red = chosen
                .iter()
                .map(|c| cosine(&emb[i], &emb[c.0]))
                .fold(0f32, f32::max);
            0.7 * central[i] - 0.3 * red
        };
        let Some(k) = (0..pool.len()).max_by(|&a, &b| score(pool[a]).total_cmp(&score(pool[b])))
        else {
            break;
        };
        let i = pool.remove(k);
        if words + units[i].words <= max_words {
            chosen.push((i, "central"));
            words += units[i].words;
        }
    }
    chosen.sort_by_key(|c| c.0);
    chosen
}

/// The first `n` sentences (lead-n baseline, also the answer without an encoder).
pub fn lead(units: &[Unit], n: usize) -> Vec<(usize, &'static str)> {
    (0..units.len().min(n)).map(|i| (i, "lead")).collect()
}

/// All sentences of the longest turn (by words): the other baseline.
pub fn longest_turn(units: &[Unit]) -> Vec<(usize, &'static str)> {
    let mut per_turn: Vec<(usize, usize)> = Vec::new();
    for u in units {
        match per_turn.last_mut() {
            Some((t, w)) if *t == u.turn => *w += u.words,
            _ => per_turn.push((u.turn, u.words)),
        }
    }
    let Some(&(best, _)) = per_turn.iter().max_by_key(|(t, w)| (*w, usize::MAX - t)) else {
        return Vec::new();
    };
    (0..units.len())
        .filter(|&i| units[i].turn == best)
        .map(|i| (i, "longest"))
        .collect()
}

/// Speaker label as written in the summary.
fn label(role: &str) -> String {
    match role {
        "customer" | "user" => "Customer".into(),
        "agent" => "Agent".into(),
        "bot" | "assistant" => "Bot".into(),
        r => r.to_string(),
    }
}

/// The summary text: chosen sentences in order, a speaker label where the speaker changes.
pub fn render(turns: &[Turn], units: &[Unit], chosen: &[(usize, &'static str)]) -> String {
    let mut out = String::new();
    let mut last_role: Option<&str> = None;
    for &(i, _) in chosen {
        let role = turns[units[i].turn].role.as_str();
        if last_role != Some(role) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&label(role));
            out.push_str(": ");
            last_role = Some(role);
        } else {
            out.push(' ');
        }
        out.push_str(&units[i].text);
    }
    out
}

/// The turns behind the chosen sentences (a turn once, with its first reason).
pub fn key_turns(turns: &[Turn], units: &[Unit], chosen: &[(usize, &'static str)]) -> Vec<KeyTurn> {
    let mut out: Vec<KeyTurn> = Vec::new();
    for &(i, why) in chosen {
        let t = units[i].turn;
        if out.iter().all(|k| k.turn != t + 1) {
            out.push(KeyTurn {
                turn: t + 1,
                role: turns[t].role.clone(),
                why,
                text: turns[t].text.trim().to_string(),
            });
        }
    }
    out
}

/// The customer's message still waiting for an answer, if any.
pub fn open_question(turns: &[Turn]) -> Option<String> {
    open_turn(turns).map(|i| turns[i].text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(turns: &[(&str, &str)]) -> Vec<Turn> {
        turns
            .iter()
            .map(|(r, t)| Turn {
                role: r.to_string(),
                text: t.to_string(),
            })
            .collect()
    }

    /// Embeddings by hand: sentences about the refund point one way, small talk another.
    fn emb_for(units: &[Unit]) -> Vec<Vec<f32>> {
        units
            .iter()
            .map(|u| {
                let t = u.text.to_lowercase();
                if t.contains("refund") || t.contains("charged") {
                    vec![1.0, 0.1, 0.0]
                } else if t.contains("card") {
                    vec![0.8, 0.5, 0.0]
                } else {
                    vec![0.0, 0.2, 1.0]
                }
            })
            .collect()
    }

    #[test]
    fn problem_tried_and_open_in_order_within_budget() {
        let t = conv(&[
            (
                "customer",
                "Hello there. I was charged twice for order 881 and want a refund.",
            ),
            (
                "agent",
                "Hi! Sorry about that. Please check which card was charged.",
            ),
            ("customer", "It was my visa card ending 4242."),
            ("agent", "Thanks, the refund is on its way."),
            ("customer", "When will the refund arrive?"),
        ]);
        let u = units(&t);
        let e = emb_for(&u);
        let chosen = choose(&t, &u, &e, 40);
        let whys: Vec<&str> = chosen.iter().map(|c| c.1).collect();
        assert!(whys.contains(&"problem") && whys.contains(&"tried") && whys.contains(&"open"));
        assert!(chosen.windows(2).all(|w| w[0].0 < w[1].0), "in order");
        let words: usize = chosen.iter().map(|c| u[c.0].words).sum();
        assert!(words <= 40);
        let s = render(&t, &u, &chosen);
        assert!(s.starts_with("Customer: I was charged twice"), "{s}");
        assert!(s.contains("Agent: "), "{s}");
        assert!(!s.contains("Hello there"), "small talk is not central: {s}");
        assert_eq!(
            open_question(&t).as_deref(),
            Some("When will the refund arrive?")
        );
        let k = key_turns(&t, &u, &chosen);
        assert_eq!(k[0].turn, 1);
        assert_eq!(k[0].why, "problem");
    }

    #[test]
    fn baselines_and_edge_cases() {
        let t = conv(&[
            ("#Person1#", "Hi. How are you?"),
            (
                "#Person2#",
                "I lost my card yesterday and need a new one quickly please.",
            ),
            ("#Person1#", "Sure."),
        ]);
        let u = units(&t);
        assert_eq!(lead(&u, 3).len(), 3);
        let l = longest_turn(&u);
        assert!(l.iter().all(|c| u[c.0].turn == 1));
        assert_eq!(
            render(&t, &u, &l),
            "#Person2#: I lost my card yesterday and need a new one quickly please."
        );
        // No customer role: the problem comes from the first two turns; no open question.
        let chosen = choose(&t, &u, &emb_for(&u), 12);
        assert_eq!(chosen[0].1, "problem");
        assert_eq!(open_question(&t), None);
        assert!(choose(&[], &[], &[], 10).is_empty());
        // Mismatched embeddings: nothing chosen rather than a panic.
        assert!(choose(&t, &u, &[vec![1.0]], 10).is_empty());
        // The customer thanked after the last answer: nothing is open.
        let done = conv(&[
            ("customer", "My order is late."),
            ("agent", "It ships today."),
            ("customer", "thanks"),
        ]);
        assert_eq!(open_question(&done), None);
    }
}
