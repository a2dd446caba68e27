//! Screenshot fault recognition: safe image intake, preprocessing, OCR (Tesseract, bounded
//! pool), and matching against the fault catalog.

pub mod catalog;
pub mod eval;
pub mod image_in;
pub mod matcher;
pub mod ocr;
pub mod preprocess;

use crate::error::{AppError, AppResult};
use crate::http::AppState;
use anyhow::ensure;
use catalog::Catalog;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

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

/// The screenshot service: OCR pool and current catalog.
pub struct Vision {
    pub ocr: ocr::OcrPool,
    loaded: RwLock<Arc<Loaded>>,
    config: ScreenshotConfig,
}

impl Vision {
    /// Load and check the catalog and start the OCR pool.
    pub fn start(cfg: &ScreenshotConfig) -> anyhow::Result<Vision> {
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
        })
    }

    pub fn current(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-read the catalog; the old one stays when the new one is malformed.
    pub fn reload(&self) -> anyhow::Result<Arc<Loaded>> {
        let catalog = Catalog::load(self.config.catalog.as_deref())?;
        let l = Arc::new(Loaded {
            catalog,
            examples: Default::default(),
        });
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = l.clone();
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

fn cjk_share(s: &str) -> f32 {
    let (mut cjk, mut letters) = (0usize, 0usize);
    for c in s.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        if matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF) {
            cjk += 1;
        }
    }
    cjk as f32 / letters.max(1) as f32
}

/// Read a screenshot and say which known fault it shows (or that it does not know).
pub async fn analyze(
    state: &Arc<AppState>,
    bytes: Vec<u8>,
    customer_text: Option<String>,
    language: Option<String>,
) -> AppResult<Analysis> {
    let vision = state.vision()?;
    let cfg = state.config.screenshot.clone();
    let t0 = Instant::now();
    let c2 = cfg.clone();
    let (gray, prepared) = tokio::task::spawn_blocking(move || {
        image_in::decode(&bytes, &c2).map(|img| preprocess::prepare(&img))
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("decode task: {e}")))??;
    let decode_ms = t0.elapsed().as_millis() as u64;

    let t1 = Instant::now();
    let rx = vision.ocr.submit(gray, prepared).map_err(|r| match r {
        ocr::Refused::Busy => AppError::Overloaded {
            retry_after: state.config.batching.retry_after_secs,
            message: format!(
                "{} screenshots are waiting for OCR (screenshot.ocr_queue)",
                cfg.ocr_queue
            ),
        },
        ocr::Refused::Unavailable(m) => AppError::Unavailable { message: m },
    })?;
    let text = match tokio::time::timeout(Duration::from_millis(cfg.ocr_timeout_ms), rx).await {
        Err(_) => {
            return Err(AppError::invalid(
                "image",
                format!(
                    "OCR took longer than {} ms (screenshot.ocr_timeout_ms)",
                    cfg.ocr_timeout_ms
                ),
            ))
        }
        Ok(Err(_)) => {
            return Err(AppError::Internal(anyhow::anyhow!(
                "the OCR worker stopped"
            )))
        }
        Ok(Ok(Err(e))) => {
            vision.ocr.set_unavailable(e.clone());
            return Err(AppError::Unavailable { message: e });
        }
        Ok(Ok(Ok(t))) => t,
    };
    let ocr_ms = t1.elapsed().as_millis() as u64;

    let t2 = Instant::now();
    let loaded = vision.current();
    let mut all = text.text.clone();
    if let Some(c) = &customer_text {
        all.push('\n');
        all.push_str(c);
    }
    let meaningful = all.chars().filter(|c| c.is_alphanumeric()).count() >= 3;
    let ranking = if meaningful {
        let examples = loaded
            .examples
            .get_or_try_init(|| embed_examples(state, &loaded.catalog))
            .await?;
        let mut queries: Vec<String> = vec![all.chars().take(2000).collect()];
        queries.extend(line_queries(&text.lines));
        if let Some(c) = &customer_text {
            queries.push(c.clone());
        }
        let (_, q, _) = crate::http::embed::encode(state, None, queries).await?;
        let th = matcher::Thresholds {
            similarity: cfg.similarity,
            with_keyword: cfg.with_keyword,
        };
        Some(matcher::rank(&loaded.catalog, &all, &q, examples, th))
    } else {
        None
    };
    let mut languages: Vec<String> = Vec::new();
    for l in &text.lines {
        if l.text.chars().filter(|c| c.is_alphabetic()).count() >= 4 {
            let d = state.lang.detect(&l.text);
            if d.language != "und" && !languages.contains(&d.language) {
                languages.push(d.language);
            }
        }
    }
    let zh = match language.as_deref() {
        Some(l) => l.to_lowercase().starts_with("zh"),
        None => cjk_share(&all) >= 0.3,
    };
    let cat = &loaded.catalog;
    let scored = |i: usize, s: f32| matcher::Scored {
        id: cat.faults[i].spec.id.clone(),
        title: cat.faults[i].title(zh).to_string(),
        score: s,
    };
    let top_evidence = ranking
        .as_ref()
        .map_or((0, 0), |r| (r.top_codes, r.top_keywords));
    let (fault, candidates, evidence, best) = match ranking {
        Some(r) => {
            let cands: Vec<matcher::Scored> =
                r.candidates.iter().map(|&(i, s)| scored(i, s)).collect();
            let fault = r.best.and_then(|b| {
                cands
                    .iter()
                    .find(|c| c.id == cat.faults[b].spec.id)
                    .cloned()
            });
            (fault, cands, r.evidence, r.best)
        }
        None => (
            None,
            Vec::new(),
            matcher::Evidence {
                error_codes: Vec::new(),
                matched: Vec::new(),
            },
            None,
        ),
    };
    let solution = best.map(|b| Solution {
        text: cat.faults[b].solution(zh).to_string(),
        language: if zh { "zh" } else { "en" },
    });
    let route_hint = best.map_or("agent", |b| cat.faults[b].spec.route_hint.as_str());
    Ok(Analysis {
        fault,
        candidates,
        ocr: OcrPart {
            text: text.text,
            lines: text.lines,
            languages,
            preprocessing: prepared,
        },
        evidence,
        solution,
        route_hint,
        timings_ms: Timings {
            decode: decode_ms,
            ocr: ocr_ms,
            matching: t2.elapsed().as_millis() as u64,
        },
        top_evidence,
    })
}

/// Long enough to carry a message: 12+ Latin letters/digits or 5+ CJK characters.
fn substantial(s: &str) -> bool {
    let cjk = s
        .chars()
        .filter(|c| matches!(*c as u32, 0x4E00..=0x9FFF))
        .count();
    let alnum = s.chars().filter(|c| c.is_ascii_alphanumeric()).count();
    cjk >= 5 || alnum >= 12
}

/// Queries besides the whole text: each substantial line, and each pair of neighbouring lines
/// (OCR wraps messages), at most 32.
fn line_queries(lines: &[ocr::Line]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if substantial(&l.text) {
            out.push(l.text.clone());
        }
        if let Some(next) = lines.get(i + 1) {
            let pair = format!("{} {}", l.text, next.text);
            if substantial(&pair) {
                out.push(pair);
            }
        }
    }
    out.truncate(32);
    out
}

async fn embed_examples(state: &Arc<AppState>, cat: &Catalog) -> AppResult<Vec<Vec<Vec<f32>>>> {
    let texts: Vec<String> = cat
        .faults
        .iter()
        .flat_map(|f| f.spec.examples.iter().cloned())
        .collect();
    let (_, mut e, _) = crate::http::embed::encode(state, None, texts).await?;
    let mut out = Vec::new();
    for f in &cat.faults {
        let rest = e.split_off(f.spec.examples.len().min(e.len()));
        out.push(std::mem::replace(&mut e, rest));
    }
    Ok(out)
}
