//! Sentence splitting and word counting for Chinese and English conversation turns (the units
//! the extractive summarizer scores).

use crate::lang::is_cjk_text_char;

/// Words for length limits and ROUGE: lowercase alphanumeric runs for Latin script, one token
/// per CJK ideograph (Chinese is scored by characters).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        // CJK ideographs and punctuation are counted and compared character by character.
        if is_cjk_text_char(c) {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if c.is_alphanumeric() {
                out.push(c.to_string());
            }
        } else if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Length of `text` in words (CJK ideographs count one each).
pub fn word_count(text: &str) -> usize {
    tokens(text).len()
}

/// Leading `@handle` mentions (as in social-media support threads) carry no content.
fn strip_mentions(s: &str) -> &str {
    let mut s = s.trim_start();
    while let Some(rest) = s.strip_prefix('@') {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        s = rest[end..].trim_start();
    }
    s
}

const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "no", "approx",
];

/// Split a turn into sentences: after `.!?` followed by a space (not after a one-letter
/// abbreviation or a digit-dot-digit), after `。！？；…` and at line breaks. Pieces without a
/// letter or digit are dropped.
pub fn split(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let push = |from: usize, to: usize, out: &mut Vec<String>| {
        let piece: String = chars[from..to].iter().collect();
        let piece = strip_mentions(piece.trim()).trim().to_string();
        if piece.chars().any(char::is_alphanumeric) {
            out.push(piece);
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let end = match c {
            '\n' | '\r' => Some(i),
            '。' | '！' | '？' | '；' | '…' => Some(i + 1),
            '.' | '!' | '?' => {
                // Take the whole run of terminators ("?!", "...").
                let mut j = i + 1;
                while j < chars.len() && matches!(chars[j], '.' | '!' | '?') {
                    j += 1;
                }
                let next_space = j >= chars.len() || chars[j].is_whitespace();
                let before: String = chars[start..i].iter().collect();
                let last_word = before.rsplit(char::is_whitespace).next().unwrap_or("");
                let w = last_word.trim_start_matches(|c: char| !c.is_alphanumeric());
                let abbrev = c == '.'
                    && j == i + 1
                    && (w.chars().count() == 1
                        || ABBREVIATIONS.contains(&w.to_lowercase().as_str()));
                if next_space && !abbrev {
                    i = j - 1;
                    Some(j)
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(e) = end {
            push(start, e, &mut out);
            start = e.max(i + 1);
        }
        i += 1;
    }
    if start < chars.len() {
        push(start, chars.len(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_chinese_and_mentions() {
        assert_eq!(
            split("@SpotifyCares hey, it fails. I tried v1.0.64 twice!! Any idea?"),
            vec!["hey, it fails.", "I tried v1.0.64 twice!!", "Any idea?"]
        );
        assert_eq!(
            split("我的订单还没到。请帮我查一下！谢谢"),
            vec!["我的订单还没到。", "请帮我查一下！", "谢谢"]
        );
        assert_eq!(
            split("Mr. J. Smith called\n\n...\nok"),
            vec!["Mr. J. Smith called", "ok"]
        );
        assert!(split("  ?!  ").is_empty());
    }

    #[test]
    fn tokens_are_words_and_cjk_characters() {
        assert_eq!(
            tokens("Order #A12 didn't arrive"),
            ["order", "a12", "didn", "t", "arrive"]
        );
        assert_eq!(tokens("订单A12没到。"), ["订", "单", "a12", "没", "到"]);
        assert_eq!(word_count("付款失败 payment failed"), 6);
    }
}
