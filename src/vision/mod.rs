//! Screenshot fault recognition: safe image intake, preprocessing, OCR (Tesseract, bounded
//! pool), and matching against the fault catalog.

pub mod analyze;
pub mod catalog;
pub mod config;
pub mod image_in;
pub mod look;
pub mod matcher;
pub mod ocr;
pub mod polarity;
pub mod preprocess;
pub mod shared;
#[cfg(test)]
mod shared_tests;

pub use analyze::analyze;
pub use config::ScreenshotConfig;

use crate::engine::Models;
use crate::lang::LangId;
use catalog::Catalog;
use parking_lot::RwLock;
use serde::Serialize;
use std::sync::Arc;

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
    /// The shared store, when replicas share one (`shared.rs`).
    sharing: std::sync::OnceLock<shared::Sharing>,
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
            cfg.language_sets(),
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
            sharing: std::sync::OnceLock::new(),
        })
    }

    pub fn current(&self) -> Arc<Loaded> {
        self.loaded.read().clone()
    }

    /// Re-read the catalog; the old one stays when the new one is malformed. Shared by
    /// replicas: the text read is published to the others, which load it too (`shared.rs`).
    /// Blocking.
    pub fn reload(&self) -> anyhow::Result<Arc<Loaded>> {
        let (text, origin) = Catalog::source(self.config.catalog.as_deref())?;
        let catalog = Catalog::parse(&text, &origin)?;
        let l = self.swap(catalog);
        self.publish(&text, &origin).map_err(|e| {
            anyhow::anyhow!(
                "the catalog was reloaded on this replica but not shared with the others: {e}"
            )
        })?;
        Ok(l)
    }

    /// Serve `catalog` from now on.
    fn swap(&self, catalog: Catalog) -> Arc<Loaded> {
        let l = Arc::new(Loaded {
            catalog,
            examples: Default::default(),
        });
        *self.loaded.write() = l.clone();
        l
    }
}

/// The answer of `POST /v1/screenshot`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OcrPart {
    pub text: String,
    pub lines: Vec<ocr::Line>,
    pub languages: Vec<String>,
    pub preprocessing: preprocess::Prepared,
    /// Tesseract's page layout of the pass that gave this text: `auto` (first pass) or
    /// `block` (second pass, run when the first read text but matched no fault).
    pub layout: &'static str,
    /// The Tesseract languages of that pass: `screenshot.english_languages` for a customer
    /// who writes English, unless that read unsure; else `screenshot.languages`.
    pub tesseract: String,
    /// Mean word confidence of the text read, 0..100, weighted by characters (`null`: none).
    pub confidence: Option<f32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Solution {
    pub text: String,
    pub language: &'static str,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Timings {
    pub decode: u64,
    pub ocr: u64,
    pub matching: u64,
}
