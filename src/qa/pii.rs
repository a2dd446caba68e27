//! Personal data an agent must not send: payment card numbers (13-19 digits, spaces or dashes
//! allowed, Luhn check), Chinese resident ID numbers (18 characters, GB 11643 check digit) and
//! phone numbers (Chinese mobile, and the `(555) 123-4567` style). Shown masked.

use regex::Regex;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    CardNumber,
    ChineseId,
    Phone,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "card_number" => Some(Kind::CardNumber),
            "chinese_id" => Some(Kind::ChineseId),
            "phone" => Some(Kind::Phone),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CardNumber => "card_number",
            Kind::ChineseId => "chinese_id",
            Kind::Phone => "phone",
        }
    }
}

/// One piece of personal data: what it is, where (character offsets, end exclusive), masked.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    pub masked: String,
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|e| panic!("pii regex: {e}")))
}

fn card_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"(?:^|[^\d])((?:\d[ -]?){12,18}\d)(?:[^\d]|$)")
}

fn id_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"(?:^|[^\dA-Za-z])(\d{17}[\dXx])(?:[^\dA-Za-z]|$)")
}

fn phone_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?:^|[^\d+])((?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}|\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4})(?:[^\d]|$)",
    )
}

/// The Luhn check of a digit string.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else {
            return false;
        };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// Whether `digits` starts like a payment card of its length: Visa (4; 13, 16, 19), Mastercard
/// (51-55, 2221-2720; 16), American Express (34, 37; 15), UnionPay (62; 16-19), JCB (35; 16-19),
/// Discover (6011, 65; 16-19). Other digit strings (order numbers, ID numbers) are not cards.
pub fn card_prefix_ok(digits: &str) -> bool {
    let n = digits.len();
    let p2: u32 = digits.get(..2).and_then(|p| p.parse().ok()).unwrap_or(0);
    let p4: u32 = digits.get(..4).and_then(|p| p.parse().ok()).unwrap_or(0);
    match p2 {
        40..=49 => matches!(n, 13 | 16 | 19),
        51..=55 => n == 16,
        22..=27 => n == 16 && (2221..=2720).contains(&p4),
        34 | 37 => n == 15,
        62 | 35 | 65 => (16..=19).contains(&n),
        60 => p4 == 6011 && (16..=19).contains(&n),
        _ => false,
    }
}

/// The GB 11643 check character of an 18-character resident ID number.
pub fn chinese_id_ok(id: &str) -> bool {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(W)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize] == b[17].to_ascii_uppercase()
}

/// Keep the last four digits: `**** **** **** 1111`.
fn mask(s: &str) -> String {
    let digits = s.chars().filter(char::is_ascii_alphanumeric).count();
    let mut seen = 0;
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                seen += 1;
                if seen + 4 > digits {
                    return c;
                }
                return '*';
            }
            c
        })
        .collect()
}

/// Every piece of personal data of `kinds` in `text`, by position.
/// `text` with every card, ID and phone number in it masked (for evidence that quotes a whole
/// reply).
pub fn mask_all(text: &str) -> String {
    let mut found = find(text, &[Kind::CardNumber, Kind::ChineseId, Kind::Phone]);
    found.sort_by_key(|f| f.start);
    let chars: Vec<char> = text.chars().collect();
    let (mut out, mut at) = (String::with_capacity(text.len()), 0);
    for f in &found {
        if f.start < at {
            continue;
        }
        out.extend(&chars[at..f.start.min(chars.len())]);
        out.push_str(&f.masked);
        at = f.end.min(chars.len());
    }
    out.extend(&chars[at..]);
    out
}

pub fn find(text: &str, kinds: &[Kind]) -> Vec<Found> {
    let char_at = |byte: usize| text[..byte].chars().count();
    let mut out: Vec<Found> = Vec::new();
    let mut push = |kind: Kind, m: regex::Match| {
        let (start, end) = (char_at(m.start()), char_at(m.end()));
        if !out.iter().any(|f| f.start < end && start < f.end) {
            out.push(Found {
                kind,
                start,
                end,
                masked: mask(m.as_str()),
            });
        }
    };
    // IDs first: an ID's 17 digits would also pass for a card number now and then.
    if kinds.contains(&Kind::ChineseId) {
        for c in id_re().captures_iter(text) {
            if let Some(m) = c.get(1).filter(|m| chinese_id_ok(m.as_str())) {
                push(Kind::ChineseId, m);
            }
        }
    }
    if kinds.contains(&Kind::CardNumber) {
        for c in card_re().captures_iter(text) {
            let Some(m) = c.get(1) else { continue };
            let digits: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
            if card_prefix_ok(&digits) && luhn(&digits) {
                push(Kind::CardNumber, m);
            }
        }
    }
    if kinds.contains(&Kind::Phone) {
        for c in phone_re().captures_iter(text) {
            if let Some(m) = c.get(1) {
                push(Kind::Phone, m);
            }
        }
    }
    out.sort_by_key(|f| f.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_all_hides_every_number_and_keeps_the_rest() {
        assert_eq!(
            mask_all("卡号 4111 1111 1111 1111，身份证 11010519491231002X。"),
            "卡号 **** **** **** 1111，身份证 **************002X。"
        );
        assert_eq!(mask_all("nothing here"), "nothing here");
    }

    const ALL: [Kind; 3] = [Kind::CardNumber, Kind::ChineseId, Kind::Phone];

    fn kinds(text: &str) -> Vec<&'static str> {
        find(text, &ALL).iter().map(|f| f.kind.as_str()).collect()
    }

    #[test]
    fn cards_pass_luhn_ids_their_check_digit() {
        assert_eq!(
            kinds("your card 4111 1111 1111 1111 is on file"),
            ["card_number"]
        );
        assert_eq!(kinds("card 4111-1111-1111-1112"), Vec::<&str>::new());
        assert_eq!(kinds("卡号4111111111111111已绑定"), ["card_number"]);
        assert_eq!(kinds("身份证号 11010519491231002X 已核实"), ["chinese_id"]);
        assert!(kinds("身份证号 110105194912310021").is_empty());
        assert_eq!(
            kinds("call 138 1234 5678 or (555) 123-4567"),
            ["phone", "phone"]
        );
        assert!(kinds("order 00004587345 and 3707955617").is_empty());
        let f = &find("4111 1111 1111 1111", &ALL)[0];
        assert_eq!(
            (f.start, f.end, f.masked.as_str()),
            (0, 19, "**** **** **** 1111")
        );
        assert!(luhn("79927398713") && !luhn("79927398710"));
        // Luhn-valid digit strings that are no card: an ID-like number, a short one.
        assert!(card_prefix_ok("4111111111111111") && card_prefix_ok("378282246310005"));
        assert!(!card_prefix_ok("110105198509228881") && !card_prefix_ok("79927398713"));
    }
}
