//! The words BM25 indexes and searches: Traditional Chinese read as Simplified, jieba's search
//! segmentation (Chinese words and their shorter parts; Latin and digit runs whole), lowercased,
//! punctuation, spaces and function words (English and Chinese) dropped, English words stemmed.
//! Function words matter here: in a knowledge base of mostly English articles, 的 or 我 is rare
//! enough to get a high IDF and would rank any Chinese article over the right one. Written over jieba-rs here rather than
//! taken from tantivy-jieba, whose tokens keep punctuation and spaces.

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

/// The analyzer: segmentation, then lowercase, long-token removal and English stemming.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(Segmenter)
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
struct Segmenter;

/// Tokens of one text (owned: the text is converted to Simplified first).
struct Tokens {
    tokens: Vec<Token>,
    at: usize,
}

impl Tokenizer for Segmenter {
    type TokenStream<'a> = Tokens;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Tokens {
        let simple = crate::lang::simplified(text);
        let mut tokens = Vec::new();
        for (pos, w) in jieba()
            .cut_for_search(&simple, true)
            .into_iter()
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .map(str::to_lowercase)
            .filter(|w| !STOP.contains(&w.as_str()))
            .enumerate()
        {
            tokens.push(Token {
                offset_from: 0,
                offset_to: 0,
                position: pos,
                text: w,
                position_length: 1,
            });
        }
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
    fn traditional_matches_simplified() {
        assert_eq!(words("訂單取消"), words("订单取消"));
    }
}
