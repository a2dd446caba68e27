//! The words BM25 indexes and searches: Traditional Chinese read as Simplified; Latin and digit
//! runs whole, lowercased, English words stemmed; Chinese as characters and pairs of adjacent
//! characters (jieba only finds the function words to drop, which also end a run: 怎么取消订单了
//! gives 取 消 订 单 取消 消订 订单); punctuation, spaces and function words (English and Chinese)
//! dropped. Function words matter here: in a knowledge base of mostly English articles, 的 or 我
//! is rare enough to get a high IDF and would rank any Chinese article over the right one.
//!
//! Characters and pairs instead of jieba's words: a question and an article that jieba segments
//! differently still share their characters and pairs, and a pair spanning two words (消订)
//! costs little. On the Chinese tuning questions (`scripts/kb_eval.sh`, Bitext index, all in one
//! field) BM25 alone went from recall@1 0.576 (jieba's search segmentation) to 0.670; pairs
//! without the characters 0.574, jieba's words with the pairs and characters 0.661
//! (`models/kb/README.md`). The Chinese words go to a BM25 field of their own (`Keep`, kb/bm25.rs).
//! Written over jieba-rs here rather than taken from tantivy-jieba, whose tokens keep
//! punctuation and spaces.

use jieba_rs::Jieba;
use std::sync::{Arc, OnceLock};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// The name the index registers the analyzer under.
pub const ANALYZER: &str = "triage_kb";

/// Function words, lowercased: no article is about them.
const STOP: &[&str] = &[
    // English
    "a",
    "an",
    "the",
    "and",
    "or",
    "but",
    "if",
    "of",
    "to",
    "in",
    "on",
    "at",
    "by",
    "for",
    "with",
    "from",
    "as",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "am",
    "do",
    "does",
    "did",
    "i",
    "me",
    "my",
    "we",
    "our",
    "you",
    "your",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "there",
    "what",
    "how",
    "can",
    "could",
    "would",
    "will",
    "should",
    "please",
    "hi",
    "hello",
    "so",
    "have",
    "has",
    "had",
    "about",
    "into",
    "up",
    "want",
    "need",
    "im",
    "i'm",
    "s",
    "t",
    // Chinese (Simplified: Traditional text is converted before this filter)
    "的",
    "了",
    "是",
    "我",
    "你",
    "您",
    "他",
    "她",
    "它",
    "我们",
    "你们",
    "他们",
    "吗",
    "呢",
    "吧",
    "啊",
    "呀",
    "哦",
    "嗯",
    "在",
    "有",
    "和",
    "与",
    "就",
    "都",
    "也",
    "还",
    "要",
    "会",
    "能",
    "可以",
    "怎么",
    "怎样",
    "如何",
    "什么",
    "为什么",
    "一个",
    "一下",
    "这",
    "那",
    "这个",
    "那个",
    "个",
    "请",
    "请问",
    "麻烦",
    "帮",
    "帮我",
    "给",
    "把",
    "被",
    "让",
    "想",
    "我的",
    "你们的",
    "了吗",
    "没有",
    "不",
    "很",
    "又",
    "但",
    "但是",
    "如果",
    "因为",
    "所以",
    "还是",
    "或者",
    "哪",
    "哪里",
    "多少",
    "几",
    "一",
    "下",
    "上",
    "中",
    "里",
    "吗？",
    "您好",
    "你好",
    "谢谢",
];

fn jieba() -> &'static Arc<Jieba> {
    static J: OnceLock<Arc<Jieba>> = OnceLock::new();
    J.get_or_init(|| Arc::new(Jieba::new()))
}

/// The name of the analyzer that keeps only the Chinese words (BM25's second field).
pub const ANALYZER_ZH: &str = "triage_kb_zh";

/// The words an analyzer keeps.
#[derive(Clone, Copy, PartialEq)]
pub enum Keep {
    All,
    /// Words without a Chinese character.
    Latin,
    /// Chinese characters and pairs.
    Chinese,
}

/// The analyzer: segmentation, then lowercase, long-token removal and English stemming.
pub fn analyzer() -> TextAnalyzer {
    analyzer_of(Keep::All)
}

/// The analyzer of the words `keep` names.
pub fn analyzer_of(keep: Keep) -> TextAnalyzer {
    TextAnalyzer::builder(Segmenter(keep))
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The analyzed words of `text`, in order (what a query is matched with).
pub fn words(text: &str) -> Vec<String> {
    let mut a = analyzer();
    let mut s = a.token_stream(text);
    let mut out = Vec::new();
    while s.advance() {
        out.push(s.token().text.clone());
    }
    out
}

#[derive(Clone)]
struct Segmenter(Keep);

/// Tokens of one text (owned: the text is converted to Simplified first).
struct Tokens {
    tokens: Vec<Token>,
    at: usize,
}

/// Whether `w` is Chinese (has a Chinese character).
pub fn is_chinese(w: &str) -> bool {
    w.chars().any(is_han)
}

/// A Chinese character (CJK unified ideographs, their extensions and the compatibility block).
fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Every character and every pair of adjacent characters of `run`, which is emptied.
fn ngrams(run: &mut Vec<char>, out: &mut Vec<String>) {
    out.extend(run.iter().map(char::to_string));
    out.extend(run.windows(2).map(|p| p.iter().collect::<String>()));
    run.clear();
}

/// The words of `simple` (Simplified text), before lowercasing and stemming.
fn segment(simple: &str) -> Vec<String> {
    let mut out = Vec::new();
    // The Chinese characters since the last function word, punctuation or Latin word.
    let mut run: Vec<char> = Vec::new();
    for w in jieba().cut(simple, true) {
        if !w.chars().any(is_han) {
            ngrams(&mut run, &mut out);
            let lw = w.to_lowercase();
            if w.chars().any(char::is_alphanumeric) && !STOP.contains(&lw.as_str()) {
                out.push(lw);
            }
        } else if STOP.contains(&w) {
            ngrams(&mut run, &mut out);
        } else {
            // jieba keeps Chinese and Latin apart; anything else in a Chinese word ends the run.
            for c in w.chars() {
                if is_han(c) {
                    run.push(c);
                } else {
                    ngrams(&mut run, &mut out);
                }
            }
        }
    }
    ngrams(&mut run, &mut out);
    out
}

impl Tokenizer for Segmenter {
    type TokenStream<'a> = Tokens;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Tokens {
        let simple = crate::lang::simplified(text);
        let keep = self.0;
        let tokens = segment(&simple)
            .into_iter()
            .filter(|w| match keep {
                Keep::All => true,
                Keep::Latin => !is_chinese(w),
                Keep::Chinese => is_chinese(w),
            })
            .enumerate()
            .map(|(pos, w)| Token {
                offset_from: 0,
                offset_to: 0,
                position: pos,
                text: w,
                position_length: 1,
            })
            .collect();
        Tokens { tokens, at: 0 }
    }
}

impl TokenStream for Tokens {
    fn advance(&mut self) -> bool {
        if self.at < self.tokens.len() {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self
            .at
            .saturating_sub(1)
            .min(self.tokens.len().saturating_sub(1))]
    }

    fn token_mut(&mut self) -> &mut Token {
        let i = self
            .at
            .saturating_sub(1)
            .min(self.tokens.len().saturating_sub(1));
        &mut self.tokens[i]
    }
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn chinese_is_segmented_and_english_stemmed() {
        let w = words("怎么取消订单？I want to cancel my Orders, #123");
        assert!(w.contains(&"取消".to_string()), "{w:?}");
        assert!(w.contains(&"订单".to_string()), "{w:?}");
        assert!(w.contains(&"order".to_string()), "{w:?}");
        assert!(w.contains(&"123".to_string()), "{w:?}");
        assert!(
            !w.iter().any(|x| x == "？" || x == " " || x == "#"),
            "{w:?}"
        );
    }

    #[test]
    fn chinese_is_characters_and_pairs_between_function_words() {
        assert_eq!(
            words("怎么取消订单了？"),
            ["取", "消", "订", "单", "取消", "消订", "订单"]
        );
        // A function word ends the run: no pair spans 的; Latin words are kept whole between.
        let w = words("我的订单的物流，iPhone手机");
        assert!(!w.iter().any(|x| x.contains('的') || x == "我"), "{w:?}");
        assert!(w.iter().any(|x| x.starts_with("iphon")), "{w:?}");
        assert!(!w.iter().any(|x| x == "单物" || x == "流手"), "{w:?}");
        assert!(w.contains(&"物流".to_string()) && w.contains(&"手机".to_string()));
    }

    #[test]
    fn english_is_words() {
        assert_eq!(
            words("Where is my order #12? Cancelling it, please."),
            ["where", "order", "12", "cancel"]
        );
    }

    #[test]
    fn the_fields_split_the_words() {
        use tantivy::tokenizer::TokenStream;
        let split = |keep| {
            let mut a = super::analyzer_of(keep);
            let mut s = a.token_stream("退款 refund 到账");
            let mut out = Vec::new();
            while s.advance() {
                out.push(s.token().text.clone());
            }
            out
        };
        assert_eq!(split(super::Keep::Latin), ["refund"]);
        assert_eq!(
            split(super::Keep::Chinese),
            ["退", "款", "退款", "到", "账", "到账"]
        );
    }

    #[test]
    fn traditional_matches_simplified() {
        assert_eq!(words("訂單取消"), words("订单取消"));
    }
}
