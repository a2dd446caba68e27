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
            similarity: 0.91,
            with_keyword: 0.89,
        }
    }
}

impl ScreenshotConfig {
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
        ensure!(
            !self.languages.is_empty()
                && self
                    .languages
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'+'),
            "config: screenshot.languages must look like `eng+chi_sim`"
        );
        Ok(())
    }
}
