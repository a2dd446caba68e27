//! The words BM25 indexes and searches: Traditional Chinese read as Simplified, jieba's search
//! segmentation (Chinese words and their shorter parts; Latin and digit runs whole), lowercased,
//! punctuation and spaces dropped, English words stemmed. Written over jieba-rs here rather than
//! taken from tantivy-jieba, whose tokens keep punctuation and spaces.

use jieba_rs::Jieba;
use std::sync::{Arc, OnceLock};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// The name the index registers the analyzer under.
pub const ANALYZER: &str = "triage_kb";

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
            .enumerate()
        {
            tokens.push(Token {
                offset_from: 0,
                offset_to: 0,
                position: pos,
                text: w.to_string(),
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
