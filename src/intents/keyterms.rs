//! Key terms of a cluster of texts and a name suggested from them: tf-idf over words (Latin
//! scripts) and character bigrams (Chinese), stopwords left out.

use crate::lang::is_han;
use std::collections::{BTreeMap, HashSet};

const EN_STOP: &str = "a about above after again against all am an and any are aren as at be \
because been before being below between both but by can cannot could couldn did didn do does \
doesn doing don down during each few for from further had hadn has hasn have haven having he her \
here hers herself him himself his how i if in into is isn it its itself just let ll me more most \
mustn my myself no nor not now of off on once only or other ought our ours ourselves out over own \
re same shan she should shouldn so some such than that the their theirs them themselves then there \
these they this those through to too under until up very was wasn we were weren what when where \
which while who whom why will with won would wouldn you your yours yourself yourselves ve \
please pls hi hello hey thanks thank ok okay yes want wanted need needs like would get got know \
help tell also still already yet one im ive id dont cant doesnt didnt isnt wont s t d m";

/// Function characters and numerals: a Chinese bigram holding one of these is not a key term.
const ZH_STOP: &str = "到的了吗呢吧啊呀哦嘛么我你您他她它们是在这那个一不没和与及或就都也还很太请帮给把被让怎什啥哪谁为想要能可以呗嗯哈零二三四五六七八九十幺两百千";

/// The distinct terms of a text: lowercase words of 2+ characters (no stopwords, no numbers),
/// and bigrams of Chinese runs (a one-character run is its own term).
pub fn terms(text: &str) -> HashSet<String> {
    let stop: HashSet<&str> = EN_STOP.split_whitespace().collect();
    let mut out = HashSet::new();
    let (mut word, mut han) = (String::new(), Vec::<char>::new());
    let flush_word = |w: &mut String, out: &mut HashSet<String>| {
        let t = std::mem::take(w);
        if t.chars().count() >= 2
            && !stop.contains(t.as_str())
            && !t.chars().all(|c| c.is_numeric())
        {
            out.insert(t);
        }
    };
    let flush_han = |h: &mut Vec<char>, out: &mut HashSet<String>| {
        let run = std::mem::take(h);
        if run.len() == 1 && !ZH_STOP.contains(run[0]) {
            out.insert(run[0].to_string());
        }
        for w in run.windows(2) {
            if !ZH_STOP.contains(w[0]) && !ZH_STOP.contains(w[1]) {
                out.insert(w.iter().collect());
            }
        }
    };
    for c in text.chars().flat_map(char::to_lowercase) {
        if is_han(c) {
            flush_word(&mut word, &mut out);
            han.push(c);
        } else if c.is_alphanumeric() {
            flush_han(&mut han, &mut out);
            word.push(c);
        } else if c == '\'' || c == '\u{2019}' {
            // "hasn't" -> "hasn" + "t": both stopwords.
            flush_word(&mut word, &mut out);
        } else {
            flush_word(&mut word, &mut out);
            flush_han(&mut han, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_han(&mut han, &mut out);
    out
}

/// Document frequencies of terms over a pool of texts.
pub struct Pool {
    docs: usize,
    df: BTreeMap<String, usize>,
}

impl Pool {
    pub fn new(texts: &[&str]) -> Self {
        let mut df = BTreeMap::new();
        for t in texts {
            for term in terms(t) {
                *df.entry(term).or_insert(0) += 1;
            }
        }
        Pool {
            docs: texts.len(),
            df,
        }
    }

    /// Up to `k` key terms of `cluster` (texts of the pool): share of the cluster's texts holding
    /// the term x (1 + ln(pool size / pool texts holding it)); terms in one text only are
    /// dropped when others exist. Ties: alphabetical.
    pub fn key_terms(&self, cluster: &[&str], k: usize) -> Vec<String> {
        let mut cf: BTreeMap<String, usize> = BTreeMap::new();
        for t in cluster {
            for term in terms(t) {
                *cf.entry(term).or_insert(0) += 1;
            }
        }
        let n = cluster.len().max(1) as f32;
        let mut scored: Vec<(String, f32, usize)> = cf
            .into_iter()
            .map(|(t, c)| {
                let df = self.df.get(&t).copied().unwrap_or(c).max(1) as f32;
                let idf = 1.0 + (self.docs.max(1) as f32 / df).ln();
                let s = c as f32 / n * idf;
                (t, s, c)
            })
            .collect();
        if scored.iter().any(|s| s.2 >= 2) {
            scored.retain(|s| s.2 >= 2);
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.into_iter().take(k).map(|s| s.0).collect()
    }
}

/// A name from up to three key terms, in the order they appear in `representative` (terms
/// that overlap there are merged: "快递" + "递员" -> "快递员"), joined by `_`, at most 40
/// characters; `fallback` when there are none.
pub fn suggest_name(key_terms: &[String], representative: &str, fallback: &str) -> String {
    let text = representative.to_lowercase();
    let mut placed: Vec<(usize, usize, &str)> = key_terms
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, t)| match text.find(t.as_str()) {
            Some(at) => (at, at + t.len(), t.as_str()),
            None => (usize::MAX - 3 + i, usize::MAX, t.as_str()),
        })
        .collect();
    placed.sort();
    let mut parts: Vec<String> = Vec::new();
    let mut end = 0;
    for (start, stop, t) in placed {
        match parts.last_mut() {
            Some(last) if start < end && stop != usize::MAX => {
                if stop > end {
                    last.push_str(&text[end..stop]);
                    end = stop;
                }
            }
            _ => {
                parts.push(t.to_string());
                end = stop;
            }
        }
        let name = parts.join("_");
        if name.chars().count() > 40 {
            parts.pop();
            break;
        }
    }
    let name = parts.join("_");
    if name.is_empty() {
        fallback.to_string()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_words_and_chinese_bigrams() {
        let t = terms("Hi, my card hasn't ARRIVED yet! 2024");
        let mut v: Vec<&String> = t.iter().collect();
        v.sort();
        assert_eq!(v, ["arrived", "card"]);
        let t = terms("我的快递到哪了？查物流");
        assert!(t.contains("快递") && t.contains("物流"), "{t:?}");
        assert!(!t.contains("我的"), "{t:?}");
    }

    #[test]
    fn key_terms_and_names() {
        let texts = [
            "where is my gift card balance",
            "check gift card balance",
            "gift card balance please",
            "reset my password",
            "password reset link",
        ];
        let pool = Pool::new(&texts);
        let k = pool.key_terms(&texts[..3], 3);
        assert_eq!(k, ["balance", "card", "gift"]);
        assert_eq!(suggest_name(&k, texts[1], "topic_x"), "gift_card_balance");
        assert_eq!(suggest_name(&[], "", "topic_x"), "topic_x");
        let k = ["快递".to_string(), "递员".to_string(), "电话".to_string()];
        assert_eq!(suggest_name(&k, "快递员的电话", "t"), "快递员_电话");
        let zh = ["我要退款", "申请退款", "怎么退款"];
        let pool = Pool::new(&zh);
        assert_eq!(pool.key_terms(&zh, 2)[0], "退款");
    }
}
