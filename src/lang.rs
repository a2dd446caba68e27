//! Language identification for short messages (lingua; chosen over whatlang by measured accuracy
//! on short texts, see scripts/langid_compare.sh).

use lingua::{Language, LanguageDetector, LanguageDetectorBuilder};
use serde::Serialize;

/// The languages told apart (their models are compiled in; lingua loads each on first use).
pub const LANGUAGES: [Language; 11] = [
    Language::English,
    Language::Chinese,
    Language::German,
    Language::French,
    Language::Spanish,
    Language::Portuguese,
    Language::Italian,
    Language::Russian,
    Language::Japanese,
    Language::Korean,
    Language::Arabic,
];

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Detection {
    /// ISO 639-1 code, or `und` when nothing can be told (digits, emoji, punctuation).
    pub language: String,
    /// Confidence in [0, 1].
    pub score: f32,
}

pub struct LangId {
    detector: LanguageDetector,
}

impl Default for LangId {
    fn default() -> Self {
        LangId {
            detector: LanguageDetectorBuilder::from_languages(&LANGUAGES).build(),
        }
    }
}

impl LangId {
    pub fn detect(&self, text: &str) -> Detection {
        match self
            .detector
            .compute_language_confidence_values(text)
            .first()
        {
            Some((lang, conf)) if *conf > 0.0 => Detection {
                language: lang.iso_code_639_1().to_string(),
                score: *conf as f32,
            },
            _ => Detection {
                language: "und".into(),
                score: 0.0,
            },
        }
    }
}

/// A CJK unified ideograph (the basic block and extensions A-F, compatibility ideographs): the
/// one test for "a Chinese character" (language hints, tf-idf bigrams, screenshot text shares).
pub fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// A character of CJK running text, which has no spaces between words: a Han ideograph, CJK
/// symbols and punctuation (U+3000-303F: `。、「」`, the ideographic space) or a half-/full-width
/// form (U+FF00-FFEF: `，！？`, full-width letters and digits). Wider than `is_han` on purpose:
/// where text is split or joined character by character (summary word counts, OCR word
/// joining), the punctuation and full-width forms around Chinese words count as CJK too.
pub fn is_cjk_text_char(c: char) -> bool {
    is_han(c) || matches!(c as u32, 0x3000..=0x303F | 0xFF00..=0xFFEF)
}

fn is_kana(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F)
}

/// Chinese text in Simplified characters: Traditional characters are mapped one by one (fast2s),
/// so that Traditional input reaches the encoders and heads as the Simplified text they learned
/// from. Text without Han characters, or with Japanese kana, is returned as it is.
pub fn simplified(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(is_han) && !text.chars().any(is_kana) {
        let s = fast2s::convert(text);
        if s != text {
            return std::borrow::Cow::Owned(s);
        }
    }
    std::borrow::Cow::Borrowed(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traditional_is_read_as_simplified() {
        assert_eq!(
            simplified("我的訂單還沒到，帳號登不進去"),
            "我的订单还没到，帐号登不进去"
        );
        assert_eq!(simplified("我的订单"), "我的订单");
        assert_eq!(simplified("Where is my order?"), "Where is my order?");
        // Japanese keeps its kanji.
        assert_eq!(
            simplified("注文した商品が屆きません"),
            "注文した商品が屆きません"
        );
    }

    #[test]
    fn short_messages() {
        let l = LangId::default();
        for (t, want) in [
            ("我要退款", "zh"),
            ("转人工", "zh"),
            ("Where is my order?", "en"),
            ("refund please", "en"),
            ("Wo ist meine Bestellung?", "de"),
            ("¿Dónde está mi pedido?", "es"),
            ("注文した商品がまだ届きません", "ja"),
        ] {
            let d = l.detect(t);
            assert_eq!(d.language, want, "{t}: {d:?}");
            assert!(d.score > 0.0 && d.score <= 1.0, "{t}: {d:?}");
        }
        assert_eq!(l.detect("12345 !!!").language, "und");
    }
}
