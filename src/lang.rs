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

#[derive(Debug, Clone, PartialEq, Serialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
