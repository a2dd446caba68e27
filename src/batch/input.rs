//! One input line -> a `Conversation`, or the reason it is rejected. Accepted shapes:
//! `{"id", "turns": [{"role", "text"}]}` (`conversation` for `turns`, `conversation_id` or
//! `fname` for `id`) and DialogSum's `{"fname"|"id", "dialogue": "#Person1#: ...\n..."}`.
//! A turn may also carry `at_ms` (epoch milliseconds) and `agent_id`, kept in `meta`; a malformed
//! one does not reject the line here (summaries never read them): it is kept in `meta_error`.

use super::{Conversation, Turn, TurnMeta, ROLES};
use serde_json::{Map, Value};

/// Why a line is not a conversation; `id` when the line named one.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub id: Option<String>,
    pub reason: String,
}

/// Longest id, in bytes.
pub const MAX_ID_BYTES: usize = 256;

fn reject(id: Option<&str>, reason: impl Into<String>) -> Reject {
    Reject {
        id: id.map(String::from),
        reason: reason.into(),
    }
}

fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Parse one line (without its newline).
pub fn parse_line(bytes: &[u8]) -> Result<Conversation, Reject> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| reject(None, format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
    let v: Value =
        serde_json::from_str(text).map_err(|e| reject(None, format!("invalid JSON: {e}")))?;
    let Value::Object(obj) = v else {
        return Err(reject(None, "not a JSON object"));
    };
    let id = parse_id(&obj)?;
    let (turns, meta, meta_error) = match obj.get("turns").or_else(|| obj.get("conversation")) {
        Some(Value::Array(a)) => parse_turns(a, &id)?,
        Some(_) => return Err(reject(Some(&id), "turns must be an array")),
        None => match obj.get("dialogue") {
            Some(Value::String(d)) => (dialogsum(d), Vec::new(), None),
            _ => return Err(reject(Some(&id), "no turns")),
        },
    };
    if turns.is_empty() {
        return Err(reject(Some(&id), "no turns"));
    }
    Ok(Conversation {
        id,
        turns,
        meta,
        meta_error,
    })
}

fn parse_id(obj: &Map<String, Value>) -> Result<String, Reject> {
    let raw = ["id", "conversation_id", "fname"]
        .iter()
        .find_map(|k| obj.get(*k));
    let id = match raw {
        None | Some(Value::Null) => return Err(reject(None, "missing id")),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(reject(None, "id must be a string")),
    };
    if id.trim().is_empty() {
        return Err(reject(None, "empty id"));
    }
    if id.len() > MAX_ID_BYTES {
        let short = clip(&id, 64);
        return Err(reject(
            Some(&short),
            format!("id is longer than {MAX_ID_BYTES} bytes"),
        ));
    }
    Ok(id)
}

/// The turns, their `meta` (empty when no turn has any) and the first malformed meta field.
type Parsed = (Vec<Turn>, Vec<TurnMeta>, Option<String>);

fn parse_turns(a: &[Value], id: &str) -> Result<Parsed, Reject> {
    let mut out = Vec::with_capacity(a.len());
    let mut meta = Vec::new();
    let mut meta_error = None;
    for (i, t) in a.iter().enumerate() {
        let Value::Object(t) = t else {
            return Err(reject(Some(id), format!("turns[{i}] is not an object")));
        };
        let role = match t.get("role") {
            Some(Value::String(r)) => r,
            Some(_) => return Err(reject(Some(id), format!("turns[{i}].role is not a string"))),
            None => return Err(reject(Some(id), format!("missing role in turns[{i}]"))),
        };
        if !ROLES.contains(&role.as_str()) {
            return Err(reject(
                Some(id),
                format!(
                    "unknown role `{}` in turns[{i}] (expected customer, agent or bot)",
                    clip(role, 40)
                ),
            ));
        }
        let text = match t.get("text") {
            Some(Value::String(s)) => s,
            Some(_) => return Err(reject(Some(id), format!("turns[{i}].text is not a string"))),
            None => return Err(reject(Some(id), format!("missing text in turns[{i}]"))),
        };
        if text.trim().is_empty() {
            return Err(reject(Some(id), format!("empty text in turns[{i}]")));
        }
        out.push(Turn {
            role: role.clone(),
            text: text.clone(),
        });
        match turn_meta(t, i) {
            Ok(m) if m == TurnMeta::default() => {}
            Ok(m) => {
                meta.resize(i, TurnMeta::default());
                meta.push(m);
            }
            Err(e) => {
                meta_error.get_or_insert(e);
            }
        }
    }
    if !meta.is_empty() {
        meta.resize(out.len(), TurnMeta::default());
    }
    Ok((out, meta, meta_error))
}

/// Turn `i`'s optional `at_ms` (an integer) and `agent_id` (a string or number; empty is none).
fn turn_meta(t: &Map<String, Value>, i: usize) -> Result<TurnMeta, String> {
    let at_ms = match t.get("at_ms") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(_) => {
            return Err(format!(
                "turns[{i}].at_ms is not an integer (epoch milliseconds)"
            ))
        }
    };
    let agent_id = match t.get("agent_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() > MAX_ID_BYTES => {
            return Err(format!(
                "turns[{i}].agent_id is longer than {MAX_ID_BYTES} bytes"
            ))
        }
        Some(Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(format!("turns[{i}].agent_id is not a string")),
    };
    Ok(TurnMeta { at_ms, agent_id })
}

/// DialogSum: `#Person1#: ...` lines; Person1 is the customer, everyone else the agent. A line
/// without a speaker continues the previous turn.
fn dialogsum(d: &str) -> Vec<Turn> {
    let mut out: Vec<Turn> = Vec::new();
    for line in d.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let speaker = line
            .strip_prefix('#')
            .and_then(|r| r.split_once("#:"))
            .map(|(who, text)| (who, text.trim()));
        match (speaker, out.last_mut()) {
            (Some((who, text)), _) => {
                let role = if who == "Person1" {
                    "customer"
                } else {
                    "agent"
                };
                if !text.is_empty() {
                    out.push(Turn {
                        role: role.into(),
                        text: text.into(),
                    });
                }
            }
            (None, Some(last)) => {
                last.text.push(' ');
                last.text.push_str(line);
            }
            (None, None) => out.push(Turn {
                role: "customer".into(),
                text: line.into(),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(line: &str) -> String {
        parse_line(line.as_bytes()).unwrap_err().reason
    }

    #[test]
    fn shapes_and_reasons() {
        let c = parse_line(br#"{"id":"a","turns":[{"role":"customer","text":"hi"}]}"#).unwrap();
        assert_eq!(c.id, "a");
        let c = parse_line(br#"{"id":7,"conversation":[{"role":"bot","text":"x"}]}"#).unwrap();
        assert_eq!((c.id.as_str(), c.turns[0].role.as_str()), ("7", "bot"));
        let c = parse_line(
            br##"{"fname":"train_0","dialogue":"#Person1#: Hi\n#Person2#: Hello\nmore"}"##,
        )
        .unwrap();
        assert_eq!(c.turns.len(), 2);
        assert_eq!(c.turns[1].text, "Hello more");
        assert_eq!(c.turns[1].role, "agent");
        assert!(reason("{").starts_with("invalid JSON"));
        assert_eq!(reason(r#"{"turns":[]}"#), "missing id");
        assert_eq!(reason(r#"{"id":" ","turns":[]}"#), "empty id");
        assert_eq!(reason(r#"{"id":"a","turns":[]}"#), "no turns");
        assert_eq!(reason(r#"{"id":"a"}"#), "no turns");
        assert!(
            reason(r#"{"id":"a","turns":[{"role":"user","text":"x"}]}"#).contains("unknown role")
        );
        assert_eq!(
            reason(r#"{"id":"a","turns":[{"role":"agent","text":" "}]}"#),
            "empty text in turns[0]"
        );
        let e = parse_line(b"{\"id\":\"\xff\"}").unwrap_err();
        assert!(e.reason.starts_with("invalid UTF-8"), "{e:?}");
        let e = parse_line(br#"{"id":"b","turns":[{"role":"agent"}]}"#).unwrap_err();
        assert_eq!(e.id.as_deref(), Some("b"));
    }

    #[test]
    fn timestamps_and_agent_ids_are_kept_and_bad_ones_noted_not_rejected() {
        let c = parse_line(br#"{"id":"a","turns":[{"role":"customer","text":"hi"}]}"#).unwrap();
        assert!(c.meta.is_empty() && c.meta_error.is_none());
        let c = parse_line(
            br#"{"id":"a","turns":[{"role":"customer","text":"hi"},{"role":"agent","text":"hello","at_ms":1700000000000,"agent_id":"a7"},{"role":"customer","text":"ok"}]}"#,
        )
        .unwrap();
        assert_eq!(c.meta.len(), 3);
        assert_eq!(c.meta[0], TurnMeta::default());
        assert_eq!(c.meta[1].at_ms, Some(1_700_000_000_000));
        assert_eq!(c.meta[1].agent_id.as_deref(), Some("a7"));
        assert_eq!(c.meta_error, None);
        for (turn, want) in [
            (r#""at_ms":"noon""#, "turns[1].at_ms is not an integer"),
            (r#""at_ms":1.5"#, "turns[1].at_ms is not an integer"),
            (r#""agent_id":{"x":1}"#, "turns[1].agent_id is not a string"),
        ] {
            let line = format!(
                r#"{{"id":"b","turns":[{{"role":"customer","text":"x"}},{{"role":"agent","text":"y",{turn}}}]}}"#
            );
            // Still a conversation (summaries do not read these fields), with the fault noted.
            let c = parse_line(line.as_bytes()).unwrap();
            assert!(c.meta_error.as_deref().unwrap().starts_with(want), "{c:?}");
        }
    }
}
