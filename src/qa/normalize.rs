//! The text lexicon items are matched on: full-width forms folded to ASCII, lower case,
//! Traditional Chinese read as Simplified, and everything that is not a letter or a digit
//! dropped (so `傻 逼`, `傻*逼`, `Ｆ.Ｕ.Ｃ.Ｋ` all read as one word), with each kept character's
//! position in the original text, so a match can be shown where it was written.

/// `text` folded for matching: the kept characters and, for each, its index among the original
/// text's characters.
pub struct Folded {
    pub text: String,
    /// Original character index of each character of `text`.
    pub at: Vec<usize>,
}

/// One character folded: full-width ASCII and the ideographic space to ASCII, then lower case.
fn fold(c: char) -> char {
    let c = match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        _ => c,
    };
    c.to_lowercase().next().unwrap_or(c)
}

/// Fold `text` (see the module comment).
pub fn folded(text: &str) -> Folded {
    // Traditional to Simplified maps one character to one, so positions carry over.
    let simple = crate::lang::simplified(text);
    let mut out = String::with_capacity(simple.len());
    let mut at = Vec::with_capacity(simple.len());
    for (i, c) in simple.chars().enumerate() {
        let f = fold(c);
        if f.is_alphanumeric() {
            out.push(f);
            at.push(i);
        }
    }
    Folded { text: out, at }
}

/// Whether `c` is a letter or digit of a script written with spaces between words (Latin,
/// Cyrillic, Greek...): matches of words in such scripts must start and end at word edges.
pub fn spaced_script(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// Chinese, Japanese or Korean script (written without spaces between words).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xAC00..=0xD7AF
        | 0x20000..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evasions_fold_away_and_positions_point_back() {
        let f = folded("你是 傻*逼！");
        assert_eq!(f.text, "你是傻逼");
        assert_eq!(f.at, vec![0, 1, 3, 5]);
        assert_eq!(folded("Ｆ.Ｕ.Ｃ.Ｋ you").text, "fuckyou");
        assert_eq!(folded("笨蛋 與 廢物").text, "笨蛋与废物");
        assert_eq!(folded("S t U p I d").text, "stupid");
        assert!(spaced_script('a') && !spaced_script('傻') && !spaced_script(' '));
    }
}
