//! Entities in customer messages (order numbers, emails, phones, amounts, dates), Chinese and English.
//!
//! One regex per format finds candidates; each is validated by hand (digit boundaries, ranges,
//! digit counts), then overlaps are resolved by priority: url > email > order number after a cue
//! word > date > amount > phone > standalone id-like token; within a priority the longer span wins.
//! Only ASCII digits are recognised; all offsets come from regex matches, so slicing is safe.

use regex::{Captures, Regex};
use std::collections::BTreeMap;
use std::sync::LazyLock;

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Entity {
    /// "order_number" | "email" | "phone" | "amount" | "date" | "url"
    pub kind: &'static str,
    /// The text as written.
    pub text: String,
    /// Normalised value: email lowercased; phone digits with leading + kept ("+8613812345678", "4155550123");
    /// amount as "<CUR> <number>" e.g. "USD 49.99", "CNY 200", "EUR 15.00" ("CNY" for ¥/元/人民币/RMB, "USD" for $/USD/dollars, "EUR" for €/EUR/euros, "GBP" for £); date ISO "2024-05-03" when year known, "--05-03" (month-day) when not; order number uppercased without spaces.
    pub value: String,
    /// Byte offsets into the input.
    pub start: usize,
    pub end: usize,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("entities: built-in regex must compile")
}

const MONTH: &str = r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?";

static URL: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)(?P<scheme>https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&()*+,;=%]+"));
static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| re(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"));
static ORDER_CUE: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"(?i)(?:(?:order|ticket|case|tracking|invoice|reference|ref)",
        r"(?:\s*(?:number|num|no\.?|id|code|#))?",
        r"|订单编号|订单号码?|订单|快递单号|运单号|单号|工单号?|发票号码?)",
        r"(?:\s*(?:[:：#＃=是为]|is\b))*\s*", // separators: "：", "#", "是", "is"
        r"(?P<id>(?:[A-Za-z]{1,4} ?)?[0-9]{4}(?: [0-9]{4})+", // SF 1234 5678 9012
        r"|[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)",
    ))
});
static ID_TOKEN: LazyLock<Regex> = LazyLock::new(|| re(r"[A-Z0-9][A-Z0-9_-]{4,}[A-Z0-9]"));
static DATE_NUM: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"(?P<y>[0-9]{4})(?P<s1>[-/.])(?P<m>[0-9]{1,2})(?P<s2>[-/.])(?P<d>[0-9]{1,2})",
        r"|(?P<a>[0-9]{1,2})(?P<s1b>[-/.])(?P<b>[0-9]{1,2})(?P<s2b>[-/.])(?P<y2>[0-9]{4})",
    ))
});
static DATE_ZH: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:(?P<y>[0-9]{4})\s*年\s*)?(?P<m>[0-9]{1,2})\s*月\s*(?P<d>[0-9]{1,2})\s*[日号號]")
});
static DATE_EN: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)(?P<md>(?P<m1>{MONTH})\.?\s*(?P<d1>[0-9]{{1,2}})(?:st|nd|rd|th)?|(?P<d2>[0-9]{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{MONTH})\.?)(?:,?\s*(?P<y>[0-9]{{4}}))?"
    ))
});
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"(?i)(?P<pre>(?:US\$|\$|€|£|¥|￥|人民币|usd|eur|gbp|cny|rmb)[ \x{a0}]?)?",
        r"(?P<num>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?)",
        r"(?:[ \x{a0}]?(?P<mul>万|千))?",
        r"(?:[ \x{a0}]?(?P<suf>美元|美金|欧元|英镑|人民币|块钱|元|块",
        r"|dollars?|bucks|euros?|yuan|usd|eur|gbp|cny|rmb))?",
    ))
});
static AMOUNT_ZH: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?P<n>[零〇一二两三四五六七八九十百千万]{1,12})(?P<unit>元|块钱?)"));
/// Phone shapes; the last (generic) one may be trimmed group by group at the end.
static PHONES: LazyLock<[Regex; 4]> = LazyLock::new(|| {
    [
        // Chinese mobile, optional +86.
        re(r"(?:\+?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}"),
        // Chinese landline: +86 10 12345678, (010) 12345678, 0755-1234567.
        re(r"(?:\+86[ -]?\(?0?[0-9]{2,3}\)?[ -]?|\(0[0-9]{2,3}\) ?|0[0-9]{2,3}[ -])[0-9]{7,8}"),
        // North America: (415) 555-0123, 415-555-0123, +1 415 555 0123.
        re(r"(?:\+?1[ .-]?)?(?:\([0-9]{3}\) ?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}"),
        // Any other international number written with a leading +.
        re(r"\+[0-9]{1,3}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,8})){1,6}"),
    ]
});

// (overlap priority, kind): a lower priority wins an overlap, then the longer span.
type Tier = (u8, &'static str);
const URL_T: Tier = (0, "url");
const EMAIL_T: Tier = (1, "email");
const ORDER_CUED_T: Tier = (2, "order_number");
const DATE_T: Tier = (3, "date");
const AMOUNT_T: Tier = (4, "amount");
const PHONE_T: Tier = (5, "phone");
const PHONE_GENERIC_T: Tier = (6, "phone");
const ORDER_BARE_T: Tier = (7, "order_number");

/// Candidates found in `text`, each with its priority tier.
struct Found<'a> {
    text: &'a str,
    hits: Vec<(u8, Entity)>,
}

impl Found<'_> {
    fn add(&mut self, (tier, kind): Tier, start: usize, end: usize, value: String) {
        if let Some(t) = self.text.get(start..end).filter(|t| !t.is_empty()) {
            let text = t.to_string();
            let e = Entity {
                kind,
                text,
                value,
                start,
                end,
            };
            self.hits.push((tier, e));
        }
    }
}

/// Find entities; sorted by start, spans never overlap.
pub fn extract(text: &str) -> Vec<Entity> {
    let mut f = Found { text, hits: vec![] };
    urls(&mut f);
    emails(&mut f);
    orders(&mut f);
    dates(&mut f);
    amounts(&mut f);
    phones(&mut f);
    let mut cands = f.hits;
    cands.sort_by_key(|(tier, e)| (*tier, usize::MAX - (e.end - e.start), e.start));
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (_, e) in cands {
        // Accepted spans are disjoint, so only the last one starting before `e.end` can overlap.
        let prev = taken.range(..e.end).next_back();
        if prev.is_none_or(|(_, &end)| end <= e.start) {
            taken.insert(e.start, e.end);
            out.push(e);
        }
    }
    out.sort_by_key(|e| e.start);
    out
}

/// The match at `i` is not glued to a preceding letter/digit (or to "1." / "1-" / "1/" / "1:").
fn before_ok(text: &str, i: usize) -> bool {
    let mut it = text.get(..i).unwrap_or("x").chars().rev();
    match it.next() {
        None => true,
        Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '+' => false,
        Some(c) if "-/.:".contains(c) => !it.next().is_some_and(|d| d.is_ascii_digit()),
        Some(_) => true,
    }
}

/// The match ending at `j` is not glued to a following letter/digit (or to "-1", ".5", "/x").
fn after_ok(text: &str, j: usize) -> bool {
    let mut it = text.get(j..).unwrap_or("x").chars();
    match it.next() {
        None => true,
        Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '@' => false,
        Some(c) if "-/.".contains(c) => !it.next().is_some_and(|d| d.is_ascii_alphanumeric()),
        Some(_) => true,
    }
}

/// A unit character follows (so the number belongs to an amount or a date, not to a phone or id).
fn unit_after(text: &str, j: usize) -> bool {
    let next = text.get(j..).and_then(|t| t.chars().next());
    next.is_some_and(|c| "元块万千年月日号號%".contains(c))
}

/// Text of a capture group, "" when it did not participate.
fn grp<'h>(c: &Captures<'h>, name: &str) -> &'h str {
    c.name(name).map_or("", |m| m.as_str())
}

fn num(c: &Captures, name: &str) -> Option<u32> {
    grp(c, name).parse().ok()
}

fn urls(f: &mut Found) {
    for c in URL.captures_iter(f.text) {
        let all = c.get_match();
        let t = all
            .as_str()
            .trim_end_matches(|ch: char| ".,;:!?)]}'\"".contains(ch));
        if t.len() > grp(&c, "scheme").len() && before_ok(f.text, all.start()) {
            f.add(URL_T, all.start(), all.start() + t.len(), t.to_string());
        }
    }
}

fn emails(f: &mut Found) {
    for m in EMAIL.find_iter(f.text) {
        f.add(EMAIL_T, m.start(), m.end(), m.as_str().to_lowercase());
    }
}

fn is_date(text: &str) -> bool {
    let mut f = Found { text, hits: vec![] };
    dates(&mut f);
    f.hits
        .iter()
        .any(|(_, e)| e.start == 0 && e.end == text.len())
}

fn orders(f: &mut Found) {
    let text = f.text;
    for c in ORDER_CUE.captures_iter(text) {
        let (all, Some(id)) = (c.get_match(), c.name("id")) else {
            continue;
        };
        let english = all
            .as_str()
            .starts_with(|ch: char| ch.is_ascii_alphabetic());
        let t = id.as_str();
        let alnum = t.chars().filter(char::is_ascii_alphanumeric).count();
        let year_like = alnum == 4 && t.parse::<u32>().is_ok_and(|y| (1900..=2100).contains(&y));
        if (!english || before_ok(text, all.start()))
            && (4..=40).contains(&alnum)
            && t.bytes().any(|b| b.is_ascii_digit())
            && !year_like
            && after_ok(text, id.end())
            && !unit_after(text, id.end())
            && !is_date(t)
        {
            let value = t.replace(' ', "").to_ascii_uppercase();
            f.add(ORDER_CUED_T, id.start(), id.end(), value);
        }
    }
    for m in ID_TOKEN.find_iter(text) {
        let t = m.as_str();
        let letters = t.bytes().filter(u8::is_ascii_uppercase).count();
        let digits = t.bytes().filter(u8::is_ascii_digit).count();
        let glued = text
            .get(..m.start())
            .is_some_and(|h| h.ends_with(['@', '.', '/', '#']));
        let free = !glued && before_ok(text, m.start()) && after_ok(text, m.end());
        if letters >= 2 && digits >= 3 && t.len() <= 40 && free {
            f.add(ORDER_BARE_T, m.start(), m.end(), t.to_string());
        }
    }
}

/// ISO date ("2024-05-03") or month-day ("--05-03"); None when out of range.
fn iso(year: Option<u32>, m: Option<u32>, d: Option<u32>) -> Option<String> {
    let (m, d) = (m?, d?);
    let days = match m {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&m) || !(1..=days).contains(&d) {
        return None;
    }
    match year {
        Some(y) if (1900..=2100).contains(&y) => Some(format!("{y:04}-{m:02}-{d:02}")),
        Some(_) => None,
        None => Some(format!("--{m:02}-{d:02}")),
    }
}

fn month_no(word: &str) -> Option<u32> {
    let abbr = word.get(..3)?.to_ascii_lowercase();
    let i = "janfebmaraprmayjunjulaugsepoctnovdec".find(&abbr)?;
    u32::try_from(i / 3 + 1).ok()
}

fn dates(f: &mut Found) {
    let text = f.text;
    let mut add = |s: usize, e: usize, v: Option<String>| {
        if let Some(v) = v.filter(|_| before_ok(text, s) && after_ok(text, e)) {
            f.add(DATE_T, s, e, v);
        }
    };
    for c in DATE_NUM.captures_iter(text) {
        let all = c.get_match();
        let sep = |a: &str, b: &str| grp(&c, a).to_owned() + grp(&c, b);
        let (s1, s2) = (sep("s1", "s1b"), sep("s2", "s2b"));
        let v = if !grp(&c, "y").is_empty() {
            // YYYY-MM-DD
            iso(num(&c, "y"), num(&c, "m"), num(&c, "d"))
        } else {
            // MM/DD/YYYY; DD.MM.YYYY with dots; DD/MM/YYYY when the first part can't be a month.
            let (a, b) = (num(&c, "a"), num(&c, "b"));
            let dmy = (s1 == "." && b <= Some(12)) || a > Some(12);
            let (m, d) = if dmy { (b, a) } else { (a, b) };
            iso(num(&c, "y2"), m, d)
        };
        add(all.start(), all.end(), v.filter(|_| s1 == s2));
    }
    for c in DATE_ZH.captures_iter(text) {
        let v = iso(num(&c, "y"), num(&c, "m"), num(&c, "d"));
        let m = c.get_match();
        add(m.start(), m.end(), v);
    }
    for c in DATE_EN.captures_iter(text) {
        let (all, Some(md)) = (c.get_match(), c.name("md")) else {
            continue;
        };
        let word = grp(&c, "m1").to_string() + grp(&c, "m2");
        let (m, d) = (month_no(&word), num(&c, "d1").or(num(&c, "d2")));
        let with_year = num(&c, "y").and_then(|y| iso(Some(y), m, d));
        if let Some(v) = with_year.filter(|_| after_ok(text, all.end())) {
            add(all.start(), all.end(), Some(v));
        } else if word != "may" {
            // Lowercase "may" without a year is almost always the verb ("you may 2 ...").
            add(all.start(), md.end(), iso(None, m, d));
        }
    }
}

fn currency(token: &str) -> &'static str {
    match token.trim().to_lowercase().as_str() {
        "$" | "us$" | "usd" | "dollar" | "dollars" | "bucks" | "美元" | "美金" => "USD",
        "€" | "eur" | "euro" | "euros" | "欧元" => "EUR",
        "£" | "gbp" | "英镑" => "GBP",
        _ => "CNY",
    }
}

/// Multiply a plain decimal string by 10^zeros without floating point ("3.5", 4 -> "35000").
fn scale(num: &str, zeros: usize) -> String {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let mut digits = format!("{int}{frac}");
    let point = int.len() + zeros;
    while digits.len() < point {
        digits.push('0');
    }
    let (a, b) = digits.split_at(point.min(digits.len()));
    let a = match a.trim_start_matches('0') {
        "" => "0",
        a => a,
    };
    match b.trim_end_matches('0') {
        "" => a.to_string(),
        b => format!("{a}.{b}"),
    }
}

/// Simple Chinese numerals: 两百 -> 200, 三千五百 -> 3500, 一万二千 -> 12000, 十五 -> 15.
fn zh_number(s: &str) -> u64 {
    let (mut total, mut section, mut n) = (0u64, 0u64, 0u64);
    for c in s.chars() {
        match "零一二三四五六七八九十百千万".chars().position(|d| d == c) {
            Some(d @ 0..=9) => n = d as u64,
            Some(u @ 10..=12) => {
                // "十五" = 15: a bare 十 counts as 一十.
                let k = std::mem::take(&mut n).max(u64::from(u == 10));
                section = section.saturating_add(k.saturating_mul(10u64.pow(u as u32 - 9)));
            }
            Some(_) => {
                let head = total
                    .saturating_add(section)
                    .saturating_add(std::mem::take(&mut n));
                total = head.saturating_mul(10_000);
                section = 0;
            }
            None => n = if c == '两' { 2 } else { 0 },
        }
    }
    total.saturating_add(section).saturating_add(n)
}

fn amounts(f: &mut Found) {
    let text = f.text;
    for c in AMOUNT.captures_iter(text) {
        let (all, Some(number)) = (c.get_match(), c.name("num")) else {
            continue;
        };
        let pre = c.name("pre");
        // An English suffix must end a word ("20 usdt" is not "20 USD").
        let suf = c
            .name("suf")
            .filter(|s| !s.as_str().is_ascii() || after_ok(text, s.end()));
        let mul = c.name("mul").filter(|_| pre.is_some() || suf.is_some());
        let end = suf.or(mul).unwrap_or(number).end();
        let bare_end = suf.is_none() && mul.is_none();
        if (pre.is_none() && suf.is_none())
            || !before_ok(text, all.start())
            || (bare_end && (!after_ok(text, end) || unit_after(text, end)))
        {
            continue;
        }
        let cur = currency(pre.or(suf).map_or("", |m| m.as_str()));
        let value = number.as_str().replace(',', "");
        let value = match mul.map(|m| m.as_str()) {
            Some("万") => scale(&value, 4),
            Some(_) => scale(&value, 3),
            None => value,
        };
        f.add(AMOUNT_T, all.start(), end, format!("{cur} {value}"));
    }
    for c in AMOUNT_ZH.captures_iter(text) {
        let (n, v) = (grp(&c, "n"), zh_number(grp(&c, "n")));
        // "一块" is also "together"; a bare unit ("百元") has no value.
        if v > 0 && !(n == "一" && grp(&c, "unit").starts_with('块')) {
            let m = c.get_match();
            f.add(AMOUNT_T, m.start(), m.end(), format!("CNY {v}"));
        }
    }
}

/// Validate a phone span; generic (+CC ...) spans may lose trailing groups glued to units/words.
fn phone_end(text: &str, start: usize, mut end: usize, generic: bool) -> Option<usize> {
    if !before_ok(text, start) {
        return None;
    }
    loop {
        let t = text.get(start..end)?;
        let digits = t.bytes().filter(u8::is_ascii_digit).count();
        let clean = after_ok(text, end) && !unit_after(text, end);
        if clean && (7..=15).contains(&digits) {
            return Some(end);
        }
        if !generic || digits < 7 {
            return None;
        }
        end = start + t.rfind([' ', '-', '.']).filter(|&i| i > 0)?;
    }
}

fn phones(f: &mut Found) {
    for (i, regex) in PHONES.iter().enumerate() {
        let generic = i == PHONES.len() - 1;
        let tier = if generic { PHONE_GENERIC_T } else { PHONE_T };
        for m in regex.find_iter(f.text) {
            let Some(end) = phone_end(f.text, m.start(), m.end(), generic) else {
                continue;
            };
            let t = f.text.get(m.start()..end).unwrap_or("");
            let plus = if t.starts_with('+') { "+" } else { "" };
            let digits: String = t.chars().filter(char::is_ascii_digit).collect();
            f.add(tier, m.start(), end, format!("{plus}{digits}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(&'static str, String)> {
        extract(text)
            .into_iter()
            .map(|e| (e.kind, e.value))
            .collect()
    }

    #[test]
    fn table() {
        let rows: &[(&str, &[(&str, &str)])] = &[
            // email / url
            ("mail me at Li.Wei@Example.com.", &[("email", "li.wei@example.com")]),
            ("see https://shop.example.com/orders/ORD-2024-0001?x=1.", &[("url", "https://shop.example.com/orders/ORD-2024-0001?x=1")]),
            ("详见https://a.com/x?id=5看看 (https://b.org/p).", &[("url", "https://a.com/x?id=5"), ("url", "https://b.org/p")]),
            ("链接：www.example.cn/a/12345678，谢谢", &[("url", "www.example.cn/a/12345678")]),
            // phones
            ("call 13812345678 now", &[("phone", "13812345678")]),
            ("电话13812345678请回电", &[("phone", "13812345678")]),
            ("手机 138-1234-5678。", &[("phone", "13812345678")]),
            ("手机 138 1234 5678", &[("phone", "13812345678")]),
            ("+86 138 1234 5678", &[("phone", "+8613812345678")]),
            ("座机 +86-10-12345678", &[("phone", "+861012345678")]),
            ("座机010-12345678", &[("phone", "01012345678")]),
            ("call (415) 555-0123 today", &[("phone", "4155550123")]),
            ("call 415-555-0123", &[("phone", "4155550123")]),
            ("call +1 415 555 0123 10 times", &[("phone", "+14155550123")]),
            ("London +44 20 7946 0958", &[("phone", "+442079460958")]),
            ("+44 20 7946 0958 20元", &[("phone", "+442079460958"), ("amount", "CNY 20")]),
            ("id 138123456789 is not a mobile", &[]),
            // order numbers
            ("my order #A12-99812 is late", &[("order_number", "A12-99812")]),
            ("Order number: ord-2024-0001", &[("order_number", "ORD-2024-0001")]),
            ("order no. 123456789", &[("order_number", "123456789")]),
            ("order id is 8f3a22", &[("order_number", "8F3A22")]),
            ("tracking number 1Z999AA10123456784", &[("order_number", "1Z999AA10123456784")]),
            ("ticket #4521, ref 77AB", &[("order_number", "4521"), ("order_number", "77AB")]),
            ("Invoice: INV_2024_17", &[("order_number", "INV_2024_17")]),
            ("订单号：13812345678", &[("order_number", "13812345678")]),
            ("订单编号是 1234 5678 9012", &[("order_number", "123456789012")]),
            ("快递单号SF1234567890", &[("order_number", "SF1234567890")]),
            ("快递单号：SF 1234 5678 9012，已签收", &[("order_number", "SF123456789012")]),
            ("工单#20240503001 已关闭", &[("order_number", "20240503001")]),
            ("发票号 No12345", &[("order_number", "NO12345")]),
            ("please check AB12345C thanks", &[("order_number", "AB12345C")]),
            ("just in case 2024 is bad; reorder 12345", &[]),
            ("订单已经发货了，订单2个", &[]),
            ("order 2024-05-03", &[("date", "2024-05-03")]),
            // amounts
            ("paid $49.99 and $1,299.00", &[("amount", "USD 49.99"), ("amount", "USD 1299.00")]),
            ("USD 20 or 20 USD or 20 dollars or 45 bucks", &[("amount", "USD 20"), ("amount", "USD 20"), ("amount", "USD 20"), ("amount", "USD 45")]),
            ("€15 / 15.00 EUR / 15 euros / £9.50", &[("amount", "EUR 15"), ("amount", "EUR 15.00"), ("amount", "EUR 15"), ("amount", "GBP 9.50")]),
            ("付了¥200，退200元，还有200 元和200块", &[("amount", "CNY 200"), ("amount", "CNY 200"), ("amount", "CNY 200"), ("amount", "CNY 200")]),
            ("人民币200元, RMB 200, 1,000.50 yuan", &[("amount", "CNY 200"), ("amount", "CNY 200"), ("amount", "CNY 1000.50")]),
            ("预算3.5万元，押金2千元", &[("amount", "CNY 35000"), ("amount", "CNY 2000")]),
            ("两百元，十五块钱，三千五百元，一万二千元", &[("amount", "CNY 200"), ("amount", "CNY 15"), ("amount", "CNY 3500"), ("amount", "CNY 12000")]),
            ("我们一块去吧", &[]),
            ("¥ 200 / US$ 5 / HK$30", &[("amount", "CNY 200"), ("amount", "USD 5")]),
            ("20 usdt please", &[]),
            // dates
            ("on 2024-05-03, 2024/5/3 and 2024.05.03", &[("date", "2024-05-03"), ("date", "2024-05-03"), ("date", "2024-05-03")]),
            ("on 03/05/2024 and 25/12/2024 and 03.05.2024", &[("date", "2024-03-05"), ("date", "2024-12-25"), ("date", "2024-05-03")]),
            ("May 3, 2024 / 3 May 2024 / May 3rd / Mar 3", &[("date", "2024-05-03"), ("date", "2024-05-03"), ("date", "--05-03"), ("date", "--03-03")]),
            ("the 3rd of March, then Sept. 14 2023", &[("date", "--03-03"), ("date", "2023-09-14")]),
            ("2024年5月3日下单，5月3日发货，5月3号到", &[("date", "2024-05-03"), ("date", "--05-03"), ("date", "--05-03")]),
            ("2024-13-03 2024-02-30 May 35 13月1日", &[]),
            ("you may 3 times try", &[]),
            // negatives
            ("in 2023 I bought version 3.2.1", &[]),
            ("I waited 45 minutes, 30% off, 3.14159", &[]),
            ("dismay 3", &[]),
            ("", &[]),
            // mixed
            (
                "我的订单号是 ORD-2024-0001，昨天付了¥299，联系电话 138-1234-5678，邮箱 Li.Wei@Example.com",
                &[("order_number", "ORD-2024-0001"), ("amount", "CNY 299"), ("phone", "13812345678"), ("email", "li.wei@example.com")],
            ),
            (
                "Hi, order #A12-99812 placed May 3, 2024 for $1,299.00 still not here. Call +1 415 555 0123 or mail bob@x.io",
                &[("order_number", "A12-99812"), ("date", "2024-05-03"), ("amount", "USD 1299.00"), ("phone", "+14155550123"), ("email", "bob@x.io")],
            ),
            (
                "5月3日买的，运单号：YT2024050312345，退款 ¥1,299.50 到 zhang@qq.com",
                &[("date", "--05-03"), ("order_number", "YT2024050312345"), ("amount", "CNY 1299.50"), ("email", "zhang@qq.com")],
            ),
        ];
        for (input, want) in rows {
            let want: Vec<(&str, String)> = want.iter().map(|(k, v)| (*k, v.to_string())).collect();
            assert_eq!(kv(input), want, "input: {input:?}");
        }
    }

    #[test]
    fn spans_and_text() {
        let s = "邮箱 Li.Wei@Example.com，¥299";
        let e = extract(s);
        assert_eq!(e.len(), 2);
        for x in &e {
            assert_eq!(&s[x.start..x.end], x.text);
        }
        assert_eq!(e[0].text, "Li.Wei@Example.com");
        assert_eq!(e[1].text, "¥299");
    }

    fn check(s: &str) {
        let found = extract(s);
        for w in found.windows(2) {
            assert!(w[0].end <= w[1].start, "overlap in {s:?}: {w:?}");
        }
        for x in &found {
            assert_eq!(s.get(x.start..x.end), Some(x.text.as_str()));
        }
    }

    #[test]
    fn no_panic_on_odd_input() {
        let mut inputs: Vec<String> = [
            "😀😀 $😀 ¥ 元 订单号：😀 @ + - ( ) 1-2",
            "e\u{301}\u{301}12345678901\u{301}",
            "\u{feff}\u{200b}订单\u{3000}1234",
            "１３８１２３４５６７８",
            "May May May 3,",
            "+",
            "$",
            "@.",
            "万元",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for unit in [
            "1",
            "12-",
            "+8",
            " 1",
            "-",
            ".",
            "@a",
            "订单号 ",
            "May 1 ",
            "$1,",
            "一万",
            "é",
        ] {
            inputs.push(unit.repeat(100_000 / unit.len()));
        }
        // Pseudo-random mixes of digits, separators, letters, CJK and emoji.
        let palette: Vec<char> = "0123456789 -+.()/,:#@$¥元万年月日号订单AZaz😀\u{301}"
            .chars()
            .collect();
        let mut seed = 0x2545_f491_u64;
        for _ in 0..300 {
            let s: String = (0..64)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    palette[(seed >> 33) as usize % palette.len()]
                })
                .collect();
            inputs.push(s);
        }
        for s in &inputs {
            check(s);
        }
    }
}
