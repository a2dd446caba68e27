//! Checks on what a client (or the intents file) gives: intent and set names, example lists,
//! descriptions. Each failure names the field at fault.

use super::config::FewShotConfig;
use crate::error::AppError;
use std::collections::HashMap;

/// Longest intent or set name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Names taken by routes under /v1/intents/.
const RESERVED: &[&str] = &["discover"];

/// A name: 1-64 letters or digits (any script), `_`, `-` or `.`, starting with a letter or digit.
pub fn check_name(field: &str, name: &str) -> Result<(), AppError> {
    let n = name.chars().count();
    if n == 0 {
        return Err(AppError::invalid(field, "name is empty"));
    }
    if n > MAX_NAME_CHARS {
        return Err(AppError::invalid(
            field,
            format!("name has {n} characters, over the limit of {MAX_NAME_CHARS}"),
        ));
    }
    let ok_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    let first_ok = name.chars().next().is_some_and(|c| c.is_alphanumeric());
    if !first_ok || !name.chars().all(ok_char) {
        return Err(AppError::invalid(
            field,
            "name must be letters or digits (any script), `_`, `-` or `.`, starting with a letter or digit",
        ));
    }
    if RESERVED.contains(&name) {
        return Err(AppError::invalid(field, format!("`{name}` is reserved")));
    }
    Ok(())
}

/// Normalised form used to find duplicate examples: trimmed, lowercased, inner spaces collapsed.
pub fn dedup_key(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The example list of an intent: 1..=max_examples distinct, non-empty texts of bounded length.
/// Returns them trimmed.
pub fn check_examples(
    field: &str,
    examples: &[String],
    cfg: &FewShotConfig,
) -> Result<Vec<String>, AppError> {
    if examples.is_empty() {
        return Err(AppError::invalid(field, "must hold at least one example"));
    }
    if examples.len() > cfg.max_examples {
        return Err(AppError::too_large(
            field,
            format!(
                "{} examples, over the limit of {} (fewshot.max_examples)",
                examples.len(),
                cfg.max_examples
            ),
        ));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(examples.len());
    for (i, e) in examples.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let t = e.trim();
        if t.is_empty() {
            return Err(AppError::invalid(f, "example is empty"));
        }
        let n = t.chars().count();
        if n > cfg.max_example_chars {
            return Err(AppError::too_large(
                f,
                format!(
                    "example has {n} characters, over the limit of {} (fewshot.max_example_chars)",
                    cfg.max_example_chars
                ),
            ));
        }
        if let Some(j) = seen.insert(dedup_key(t), i) {
            return Err(AppError::invalid(
                f,
                format!("duplicate of {field}[{j}] (case and spacing are ignored)"),
            ));
        }
        out.push(t.to_string());
    }
    Ok(out)
}

pub fn check_description(d: &Option<String>) -> Result<(), AppError> {
    if let Some(d) = d {
        let n = d.chars().count();
        if n > MAX_DESCRIPTION_CHARS {
            return Err(AppError::too_large(
                "description",
                format!(
                    "description has {n} characters, over the limit of {MAX_DESCRIPTION_CHARS}"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["refund", "gift_card.v2", "退款", "A-1"] {
            assert!(check_name("name", ok).is_ok(), "{ok}");
        }
        for bad in ["", "_x", "a b", "a/b", "discover", &"x".repeat(65), "x?"] {
            assert!(check_name("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn examples() {
        let cfg = FewShotConfig {
            max_examples: 3,
            max_example_chars: 5,
            ..Default::default()
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let field = |r: Result<Vec<String>, AppError>| match r {
            Err(AppError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            check_examples("e", &s(&[" a ", "b"]), &cfg).unwrap(),
            ["a", "b"]
        );
        assert_eq!(field(check_examples("e", &[], &cfg)), "e");
        assert_eq!(
            field(check_examples("e", &s(&["a", "b", "c", "d"]), &cfg)),
            "e"
        );
        assert_eq!(field(check_examples("e", &s(&["a", " "]), &cfg)), "e[1]");
        assert_eq!(
            field(check_examples("e", &s(&["a", "toolong"]), &cfg)),
            "e[1]"
        );
        assert_eq!(
            field(check_examples("e", &s(&["A  b", "a b"]), &cfg)),
            "e[1]"
        );
    }
}
