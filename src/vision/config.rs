//! Screenshot intake, OCR and matching (`[screenshot]`). A plain serde type with its defaults and
//! checks; it imports nothing of the project, so `config` can aggregate it without depending on the
//! feature.

use anyhow::ensure;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScreenshotConfig {
    /// The fault catalog file; default: the shipped `models/faults.toml`.
    pub catalog: Option<PathBuf>,
    /// Largest image accepted, in bytes.
    pub max_bytes: usize,
    /// Largest width and height, and most pixels (checked from the header before decoding).
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
    /// Take the first frame of an animated GIF instead of refusing it.
    pub animated_gif_first_frame: bool,
    /// OCR threads, and OCR jobs allowed to wait (more: 429 with Retry-After).
    pub ocr_workers: usize,
    pub ocr_queue: usize,
    /// Longest an answer waits for OCR.
    pub ocr_timeout_ms: u64,
    /// Tesseract languages, and its tessdata folder (default: the system's).
    pub languages: String,
    pub tessdata: Option<String>,
    /// Tesseract languages for a customer who writes English (the request's `language`, else
    /// the detected language of the customer's text): quicker than `languages`. A pass whose
    /// text reads with mean confidence under `english_min_confidence` is read again with
    /// `languages`. Empty: always `languages`.
    pub english_languages: String,
    pub english_min_confidence: f32,
    /// Similarity to a fault's examples at which it is recognised without an error code, and
    /// with a keyword hit.
    pub similarity: f32,
    pub with_keyword: f32,
}

impl Default for ScreenshotConfig {
    fn default() -> Self {
        ScreenshotConfig {
            catalog: None,
            max_bytes: 10 << 20,
            max_width: 10_000,
            max_height: 10_000,
            max_pixels: 40_000_000,
            animated_gif_first_frame: false,
            ocr_workers: 1,
            ocr_queue: 8,
            ocr_timeout_ms: 15_000,
            languages: "eng+chi_sim".into(),
            tessdata: None,
            english_languages: "eng".into(),
            english_min_confidence: 75.0,
            similarity: 0.91,
            with_keyword: 0.89,
        }
    }
}

impl ScreenshotConfig {
    /// The Tesseract languages for a customer who writes English (`english`) or any other:
    /// `languages` when `english_languages` is empty.
    pub fn languages_for(&self, english: bool) -> &str {
        match english && !self.english_languages.is_empty() {
            true => &self.english_languages,
            false => &self.languages,
        }
    }

    /// The Tesseract language sets of `ocr::LangSet::All` and `::English`, in that order.
    pub fn language_sets(&self) -> [String; 2] {
        [false, true].map(|e| self.languages_for(e).to_string())
    }

    pub fn check(&self) -> anyhow::Result<()> {
        ensure!(
            self.max_bytes > 0,
            "config: screenshot.max_bytes must be > 0"
        );
        ensure!(
            self.max_width > 0 && self.max_height > 0 && self.max_pixels > 0,
            "config: screenshot.max_width, max_height and max_pixels must be > 0"
        );
        ensure!(
            (1..=64).contains(&self.ocr_workers),
            "config: screenshot.ocr_workers must be 1..=64"
        );
        ensure!(
            self.ocr_queue >= 1,
            "config: screenshot.ocr_queue must be >= 1"
        );
        ensure!(
            self.ocr_timeout_ms >= 100,
            "config: screenshot.ocr_timeout_ms must be >= 100"
        );
        for (k, v) in [
            ("similarity", self.similarity),
            ("with_keyword", self.with_keyword),
        ] {
            ensure!(
                (0.0..=1.0).contains(&v),
                "config: screenshot.{k} must be within 0..1"
            );
        }
        let looks = |l: &str| {
            l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'+')
        };
        ensure!(
            !self.languages.is_empty() && looks(&self.languages),
            "config: screenshot.languages must look like `eng+chi_sim`"
        );
        ensure!(
            looks(&self.english_languages),
            "config: screenshot.english_languages must look like `eng` (or be empty)"
        );
        ensure!(
            (0.0..=100.0).contains(&self.english_min_confidence),
            "config: screenshot.english_min_confidence must be within 0..100"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_languages_are_checked_and_empty_means_all() {
        let mut c = ScreenshotConfig::default();
        assert_eq!(c.language_sets(), ["eng+chi_sim".to_string(), "eng".into()]);
        c.english_languages = String::new();
        assert!(c.check().is_ok());
        assert_eq!(
            c.language_sets(),
            ["eng+chi_sim".to_string(), "eng+chi_sim".into()]
        );
        c.english_languages = "eng; rm".into();
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("english_languages"));
        c.english_languages = "eng".into();
        c.english_min_confidence = 101.0;
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("english_min_confidence"));
    }
}
