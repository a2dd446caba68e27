//! Synthetic historical conversations for `triage qa run` (`triage qa synth`): Chinese and
//! English, 2-12 turns, timestamps and agent ids, with scorecard violations put in at known rates
//! (`RATES`); each line lists the items it should fail in `injected`. Seeded and deterministic.

use crate::batch::synth::{fill, pick, BOT_EN, BOT_ZH, FOLLOW_EN, FOLLOW_ZH, TOPICS};
use crate::heads::rng::Rng;
use anyhow::Result;
use serde_json::{json, Value};
use std::io::Write;

/// Per conversation, independently: the scorecard item a violation fails, and how often it is
/// put in. `greeting`/`closing`: the first/last agent reply lacks one; `first_response`: the
/// first agent reply comes after more than 5 minutes; the others go in a random agent reply.
pub const RATES: [(&str, f64); 7] = [
    ("abusive_language", 0.02),
    ("dismissive", 0.04),
    ("unauthorised_promise", 0.05),
    ("pii_leak", 0.01),
    ("greeting", 0.10),
    ("closing", 0.10),
    ("first_response", 0.08),
];

/// Agents `agent-01` ... `agent-20`; one conversation in ten is handed to a second agent.
pub const AGENTS: u64 = 20;

/// 2026-01-01T00:00:00Z, and the 90 days the conversations start in.
const START_MS: i64 = 1_767_225_600_000;
const SPAN_MS: u64 = 90 * 86_400_000;

const AGENT_EN: [&str; 6] = [
    "Let me check your account.",
    "Could you confirm the email on the account?",
    "I have escalated this to our team, you will hear back within 24 hours.",
    "I am checking with the warehouse now.",
    "I have opened ticket {o} for this.",
    "The request for order {o} has been submitted.",
];
const AGENT_ZH: [&str; 6] = [
    "我帮您查一下账户。",
    "请确认一下账户绑定的邮箱。",
    "已经帮您升级处理，24小时内会有回复。",
    "我正在和仓库核实。",
    "已为您创建工单，编号{o}。",
    "订单{o}的申请已提交。",
];
const GREET_EN: [&str; 3] = ["Hello!", "Hi, thanks for waiting.", "Good morning."];
const GREET_ZH: [&str; 2] = ["您好！", "您好，"];
const CLOSE_EN: [&str; 3] = [
    "Have a nice day!",
    "Is there anything else I can help with?",
    "Thank you for your patience.",
];
const CLOSE_ZH: [&str; 3] = [
    "祝您生活愉快！",
    "还有什么可以帮您的吗？",
    "感谢您的耐心等待。",
];
const DISMISS_EN: [&str; 3] = [
    "That's not my problem.",
    "Read the manual.",
    "Deal with it.",
];
const DISMISS_ZH: [&str; 3] = ["爱买不买。", "跟我说没用。", "你自己看。"];
const PROMISE_EN: [&str; 2] = [
    "I promise you a full refund.",
    "We guarantee a refund for this.",
];
const PROMISE_ZH: [&str; 2] = ["我保证给您全额退款。", "这个一定给您退款。"];

const FORBIDDEN_EN: &str = include_str!("../../models/qa/lexicon/forbidden.en.txt");
const FORBIDDEN_ZH: &str = include_str!("../../models/qa/lexicon/forbidden.zh.txt");

fn words(list: &str) -> Vec<&str> {
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn chance(r: &mut Rng, p: f64) -> bool {
    ((r.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
}

fn between(r: &mut Rng, lo: u64, hi: u64) -> i64 {
    (lo + r.next_u64() % (hi - lo + 1)) as i64
}

/// A 16-digit card number starting with 4 that passes the Luhn check, spaced or not.
fn card_number(r: &mut Rng) -> String {
    let mut d: Vec<u32> = vec![4];
    d.extend((0..14).map(|_| (r.next_u64() % 10) as u32));
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        // From the right, every other digit (starting with the one before the check digit)
        // doubled, its digits summed.
        .map(|(i, &x)| match (i % 2, x * 2) {
            (0, y) if y > 9 => y - 9,
            (0, y) => y,
            _ => x,
        })
        .sum();
    d.push((10 - sum % 10) % 10);
    let s: String = d.iter().map(|x| char::from(b'0' + *x as u8)).collect();
    if r.next_u64().is_multiple_of(2) {
        s
    } else {
        let groups: Vec<&str> = (0..4).map(|i| &s[i * 4..i * 4 + 4]).collect();
        groups.join(" ")
    }
}

/// The sentence that fails reply item `item`.
fn violation(r: &mut Rng, item: &str, zh: bool) -> String {
    match (item, zh) {
        ("abusive_language", true) => format!("{}！", pick(r, &words(FORBIDDEN_ZH))),
        ("abusive_language", false) => format!("Honestly, {}.", pick(r, &words(FORBIDDEN_EN))),
        ("dismissive", true) => pick(r, &DISMISS_ZH).into(),
        ("dismissive", false) => pick(r, &DISMISS_EN).into(),
        ("unauthorised_promise", true) => pick(r, &PROMISE_ZH).into(),
        ("unauthorised_promise", false) => pick(r, &PROMISE_EN).into(),
        (_, true) => format!("您的卡号{}已核实。", card_number(r)),
        (_, false) => format!("Your card {} is verified.", card_number(r)),
    }
}

/// One conversation line: `{"id", "lang", "injected": [items], "turns": [{"role", "text",
/// "at_ms", "agent_id"?}]}`.
pub fn conversation(r: &mut Rng, id: String) -> Value {
    let zh = r.next_u64().is_multiple_of(2);
    let topic = &TOPICS[(r.next_u64() % TOPICS.len() as u64) as usize];
    let n = (r.next_u64() % 11 + 2) as usize;
    let injected: Vec<&str> = RATES
        .iter()
        .filter(|(_, p)| chance(r, *p))
        .map(|(item, _)| *item)
        .collect();
    let has = |item: &str| injected.contains(&item);
    let agent = format!("agent-{:02}", r.next_u64() % AGENTS + 1);
    let second = format!("agent-{:02}", r.next_u64() % AGENTS + 1);
    let handover = chance(r, 0.1);
    // Roles: an optional bot greeting, the customer's opening, then agent and customer in turn.
    let bot_first = n >= 3 && r.next_u64().is_multiple_of(3);
    let mut roles: Vec<&str> = Vec::with_capacity(n);
    if bot_first {
        roles.push("bot");
    }
    roles.push("customer");
    while roles.len() < n {
        roles.push(if roles.last() == Some(&"customer") {
            "agent"
        } else {
            "customer"
        });
    }
    let agent_turns: Vec<usize> = (0..n).filter(|&i| roles[i] == "agent").collect();
    let (first, last) = (agent_turns[0], agent_turns[agent_turns.len() - 1]);
    let mut extra: Vec<(usize, String)> = Vec::new();
    for item in [
        "abusive_language",
        "dismissive",
        "unauthorised_promise",
        "pii_leak",
    ] {
        if has(item) {
            let at = agent_turns[(r.next_u64() % agent_turns.len() as u64) as usize];
            extra.push((at, violation(r, item, zh)));
        }
    }
    let mut at = START_MS + (r.next_u64() % SPAN_MS) as i64;
    let (mut said, mut turns) = (0, Vec::with_capacity(n));
    for (i, role) in roles.iter().enumerate() {
        let text = match *role {
            "bot" => pick(r, if zh { &BOT_ZH } else { &BOT_EN }).to_string(),
            "customer" if said == 0 => {
                at += if i == 0 { 0 } else { between(r, 2_000, 10_000) };
                said += 1;
                let t = pick(r, if zh { &topic.zh } else { &topic.en });
                fill(r, t, zh)
            }
            "customer" => {
                at += between(r, 20_000, 300_000);
                let t = match (said, zh) {
                    (1 | 2, true) => topic.zh_more[said - 1],
                    (1 | 2, false) => topic.en_more[said - 1],
                    (_, true) => pick(r, &FOLLOW_ZH),
                    (_, false) => pick(r, &FOLLOW_EN),
                };
                said += 1;
                fill(r, t, zh)
            }
            _ => {
                at += if i == first && has("first_response") {
                    between(r, 301_000, 1_800_000)
                } else {
                    between(r, 10_000, 240_000)
                };
                let body = pick(r, if zh { &AGENT_ZH } else { &AGENT_EN });
                let mut parts = Vec::new();
                if i == first && !has("greeting") {
                    parts.push(pick(r, if zh { &GREET_ZH } else { &GREET_EN }).to_string());
                }
                parts.push(fill(r, body, zh));
                parts.extend(
                    extra
                        .iter()
                        .filter(|(t, _)| *t == i)
                        .map(|(_, s)| s.clone()),
                );
                if i == last && !has("closing") {
                    parts.push(pick(r, if zh { &CLOSE_ZH } else { &CLOSE_EN }).to_string());
                }
                parts.join(if zh { "" } else { " " })
            }
        };
        let mut t = json!({"role": role, "text": text, "at_ms": at});
        if *role == "agent" {
            let who = if handover && i > n / 2 {
                &second
            } else {
                &agent
            };
            t["agent_id"] = Value::String(who.clone());
        }
        turns.push(t);
    }
    json!({"id": id, "lang": if zh { "zh" } else { "en" }, "injected": injected, "turns": turns})
}

/// Write `count` conversations (ids `c000001`...) and `bad` bad lines spread among them (the
/// kinds of `triage batch synth --bad`).
pub fn write(out: &mut dyn Write, count: usize, bad: usize, seed: u64) -> Result<()> {
    crate::batch::synth::write_with(out, count, bad, seed, &mut |r, id| conversation(r, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::input::parse_line;
    use crate::qa::batch::QaBatch;
    use crate::qa::{Inspector, QaConfig};
    use std::collections::BTreeSet;

    #[test]
    fn luhn_card_numbers() {
        let mut r = Rng::new(3);
        for _ in 0..200 {
            let c: Vec<u32> = card_number(&mut r)
                .chars()
                .filter_map(|c| c.to_digit(10))
                .collect();
            let sum: u32 = c
                .iter()
                .rev()
                .enumerate()
                .map(|(i, &d)| {
                    if i % 2 == 1 {
                        (d * 2) / 10 + (d * 2) % 10
                    } else {
                        d
                    }
                })
                .sum();
            assert!(
                c.len() == 16 && c[0] == 4 && sum.is_multiple_of(10),
                "{c:?}"
            );
        }
    }

    /// Every injected violation is found, and no other of those items fails; the rates hold.
    #[test]
    fn the_scorecard_finds_exactly_the_injected_violations() {
        let qa = QaBatch::new(Inspector::open(&QaConfig::default()).unwrap());
        let mut r = Rng::new(11);
        let n = 3000;
        let mut counts = std::collections::BTreeMap::new();
        let (mut zh, mut agents) = (0, BTreeSet::new());
        for i in 0..n {
            let line = conversation(&mut r, format!("q{i}")).to_string();
            let c = parse_line(line.as_bytes()).unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            assert!((2..=12).contains(&c.turns.len()));
            assert!(c.meta.iter().all(|m| m.at_ms.is_some()));
            let want: BTreeSet<&str> = v["injected"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect();
            let q = qa.inspect(&c);
            let failed: BTreeSet<&str> = q
                .items
                .iter()
                .filter(|it| !it.passed && RATES.iter().any(|(id, _)| *id == it.id))
                .map(|it| it.id.as_str())
                .collect();
            assert_eq!(failed, want, "{line}\n{q:#?}");
            for w in want {
                *counts.entry(w.to_string()).or_insert(0u32) += 1;
            }
            zh += usize::from(v["lang"] == "zh");
            agents.insert(QaBatch::agent_id(&c).unwrap().to_string());
        }
        for (item, p) in RATES {
            let got = f64::from(counts.get(item).copied().unwrap_or(0)) / n as f64;
            assert!((got - p).abs() < 0.02 + p / 3.0, "{item}: {got} vs {p}");
        }
        assert!(zh > n / 3 && zh < 2 * n / 3, "{zh}");
        assert_eq!(agents.len(), AGENTS as usize);
    }

    #[test]
    fn seeded_and_deterministic() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        write(&mut a, 50, 3, 9).unwrap();
        write(&mut b, 50, 3, 9).unwrap();
        assert_eq!(a, b);
        let mut c = Vec::new();
        write(&mut c, 50, 3, 10).unwrap();
        assert_ne!(a, c);
        assert_eq!(a.iter().filter(|&&x| x == b'\n').count(), 53);
    }
}
