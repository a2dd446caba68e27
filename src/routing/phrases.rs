//! Phrase matching for routing rules: Latin phrases on word boundaries, CJK phrases anywhere.

/// The first phrase of `phrases` found in `text` (case-insensitive).
pub fn find<'p>(text: &str, phrases: &'p [String]) -> Option<&'p str> {
    let lower = text.to_lowercase();
    phrases
        .iter()
        .find(|p| contains(&lower, &p.to_lowercase()))
        .map(|p| p.as_str())
}

/// `needle` in `hay` (both lowercase). ASCII-edged needles must not touch ASCII letters or
/// digits on either side, so `human` does not match `inhumane` and `12315` not `1231500`.
fn contains(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let first_ascii = needle
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let last_ascii = needle
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before_ok = !first_ascii
            || !hay[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        let after_ok = !last_ascii
            || !hay[end..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if before_ok && after_ok {
            return true;
        }
        // Step past the first character of this match (keeps `from` on a char boundary).
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn word_boundaries_for_latin_and_anywhere_for_cjk() {
        let p = v(&["human", "12315", "转人工", "real person"]);
        for (text, want) in [
            ("I want a HUMAN now", Some("human")),
            ("that was inhumane", None),
            ("human.", Some("human")),
            ("我要转人工！", Some("转人工")),
            ("我要打12315投诉", Some("12315")),
            ("code 1231500", None),
            ("let me talk to a Real  Person", None),
            ("a real person please", Some("real person")),
            ("", None),
            ("人工智能很好", None),
        ] {
            assert_eq!(find(text, &p), want, "{text}");
        }
    }
}
