//! Split a text into sentences for translation while keeping what separates them (spaces,
//! line breaks), so the translated sentences reassemble into the same layout.

/// `(sentence, separator after it)` pieces; concatenating them gives the text back.
pub fn segments(text: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let end = match c {
            '。' | '！' | '？' | '；' => Some(i + 1),
            '\n' => Some(i),
            '.' | '!' | '?' => {
                let mut j = i + 1;
                while j < chars.len() && matches!(chars[j], '.' | '!' | '?' | '"' | '\'' | ')') {
                    j += 1;
                }
                (j >= chars.len() || chars[j].is_whitespace()).then_some(j)
            }
            _ => None,
        };
        match end {
            Some(e) => {
                let mut k = e;
                while k < chars.len() && chars[k].is_whitespace() {
                    k += 1;
                }
                let sentence: String = chars[start..e].iter().collect();
                let sep: String = chars[e..k].iter().collect();
                match out.last_mut() {
                    // A break with no sentence before it joins the previous separator.
                    Some(last) if sentence.trim().is_empty() => last.1.push_str(&sentence),
                    _ => out.push((sentence, String::new())),
                }
                if let Some(last) = out.last_mut() {
                    last.1.push_str(&sep);
                }
                start = k;
                i = k;
            }
            None => i += 1,
        }
    }
    if start < chars.len() {
        out.push((chars[start..].iter().collect(), String::new()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_reassemble_the_text() {
        for t in [
            "Hello. How are you?\n\nI need help!",
            "我的订单没到。请帮我查一下！谢谢",
            "v1.0.64 is broken... really",
            "",
            "\nleading break",
        ] {
            let s = segments(t);
            let back: String = s.iter().map(|(a, b)| format!("{a}{b}")).collect();
            assert_eq!(back, t);
        }
        let s = segments("Hello. How are you?\n\nI need help!");
        let sentences: Vec<&str> = s.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(sentences, ["Hello.", "How are you?", "I need help!"]);
        assert_eq!(segments("我的订单没到。请帮我查一下！").len(), 2);
    }
}
