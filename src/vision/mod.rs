//! Screenshot fault recognition: safe image intake, preprocessing, OCR (Tesseract, bounded
//! pool), and matching against the fault catalog.

pub mod analyze;
pub mod catalog;
pub mod image_in;
pub mod matcher;
pub mod ocr;
pub mod preprocess;

pub use analyze::analyze;

use crate::engine::Models;
use crate::lang::LangId;
use anyhow::ensure;
use catalog::Catalog;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

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

/// A catalog and (once computed) its examples' embeddings.
pub struct Loaded {
    pub catalog: Catalog,
    examples: tokio::sync::OnceCell<Vec<Vec<Vec<f32>>>>,
}

/// The screenshot service: OCR pool, current catalog, and the encoder and language detector the
/// matching uses.
pub struct Vision {
    pub ocr: ocr::OcrPool,
    loaded: RwLock<Arc<Loaded>>,
    config: ScreenshotConfig,
    models: Arc<Models>,
    lang: Arc<LangId>,
    /// `limits.retry_after_secs`, said when the OCR queue is full.
    retry_after_secs: u64,
}

impl Vision {
    /// Load and check the catalog and start the OCR pool.
    pub fn start(
        cfg: &ScreenshotConfig,
        models: Arc<Models>,
        lang: Arc<LangId>,
        retry_after_secs: u64,
    ) -> anyhow::Result<Vision> {
        let catalog = Catalog::load(cfg.catalog.as_deref())?;
        let pool = ocr::OcrPool::start(
            cfg.ocr_workers,
            cfg.ocr_queue,
            cfg.tessdata.clone(),
            cfg.languages.clone(),
        );
        Ok(Vision {
            ocr: pool,
            loaded: RwLock::new(Arc::new(Loaded {
                catalog,
                examples: Default::default(),
            })),
            config: cfg.clone(),
            models,
            lang,
            retry_after_secs,
        })
    }

    pub fn current(&self) -> Arc<Loaded> {
        self.loaded.read().clone()
    }

    /// Re-read the catalog; the old one stays when the new one is malformed.
    pub fn reload(&self) -> anyhow::Result<Arc<Loaded>> {
        let catalog = Catalog::load(self.config.catalog.as_deref())?;
        let l = Arc::new(Loaded {
            catalog,
            examples: Default::default(),
        });
        *self.loaded.write() = l.clone();
        Ok(l)
    }
}

/// The answer of `POST /v1/screenshot`.
#[derive(Debug, Serialize)]
pub struct Analysis {
    pub fault: Option<matcher::Scored>,
    pub candidates: Vec<matcher::Scored>,
    pub ocr: OcrPart,
    pub evidence: matcher::Evidence,
    pub solution: Option<Solution>,
    pub route_hint: &'static str,
    pub timings_ms: Timings,
    /// Code matches and keyword hits of the top candidate.
    #[serde(skip)]
    pub top_evidence: (usize, usize),
}

#[derive(Debug, Serialize)]
pub struct OcrPart {
    pub text: String,
    pub lines: Vec<ocr::Line>,
    pub languages: Vec<String>,
    pub preprocessing: preprocess::Prepared,
    /// Tesseract's page layout of the pass that gave this text: `auto` (first pass) or
    /// `block` (second pass, run when the first read text but matched no fault).
    pub layout: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Solution {
    pub text: String,
    pub language: &'static str,
}

#[derive(Debug, Default, Serialize)]
pub struct Timings {
    pub decode: u64,
    pub ocr: u64,
    pub matching: u64,
}
