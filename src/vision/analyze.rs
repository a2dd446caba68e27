//! One screenshot end to end: decode, preprocess, OCR (a second pass with another page layout
//! when the first reads failure words but matches no fault), match against the catalog, answer.

use super::catalog::Catalog;
use super::ocr::{self, LangSet, Layout, OcrText};
use super::{matcher, preprocess, Analysis, Loaded, OcrPart, Solution, Timings, Vision};
use crate::engine::Models;
use crate::error::{AppError, AppResult};
use image::GrayImage;
use std::time::{Duration, Instant};

fn cjk_share(s: &str) -> f32 {
    let (mut cjk, mut letters) = (0usize, 0usize);
    for c in s.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        if crate::lang::is_han(c) {
            cjk += 1;
        }
    }
    cjk as f32 / letters.max(1) as f32
}

fn refused(vision: &Vision, r: ocr::Refused) -> AppError {
    match r {
        ocr::Refused::Busy => AppError::Overloaded {
            retry_after: vision.retry_after_secs,
            message: format!(
                "{} screenshots are being read or waiting for OCR (screenshot.ocr_workers + screenshot.ocr_queue)",
                vision.config.ocr_workers + vision.config.ocr_queue
            ),
        },
        ocr::Refused::Unavailable(m) => AppError::Unavailable { message: m },
    }
}

/// Run one OCR pass within `budget`; `None` when it did not finish in time.
async fn ocr_pass(
    vision: &Vision,
    slot: &ocr::Slot,
    image: GrayImage,
    prepared: preprocess::Prepared,
    (layout, set): (Layout, LangSet),
    budget: Duration,
) -> AppResult<Option<OcrText>> {
    let rx = vision
        .ocr
        .submit(slot, image, prepared, layout, set)
        .map_err(|r| refused(vision, r))?;
    let read = tokio::time::timeout(budget, rx).await;
    match read {
        Err(_) => Ok(None),
        Ok(Err(_)) => Err(AppError::Internal(anyhow::anyhow!(
            "the OCR worker stopped"
        ))),
        Ok(Ok(Err(e))) => {
            vision.ocr.set_unavailable(e.clone());
            Err(AppError::Unavailable { message: e })
        }
        Ok(Ok(Ok(t))) => Ok(Some(t)),
    }
}

/// Rank the catalog's faults for the OCR text plus the customer's text (None: too little text).
async fn rank(
    vision: &Vision,
    loaded: &Loaded,
    text: &OcrText,
    customer_text: Option<&str>,
) -> AppResult<Option<matcher::Ranking>> {
    // Decoding and OCR have their own bounds; the model's queue wait starts after them.
    let admitted = Instant::now();
    let cfg = &vision.config;
    let mut all = text.text.clone();
    if let Some(c) = customer_text {
        all.push('\n');
        all.push_str(c);
    }
    if all.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
        return Ok(None);
    }
    let examples = loaded
        .examples
        .get_or_try_init(|| embed_examples(&vision.models, &loaded.catalog, admitted))
        .await?;
    let mut queries: Vec<String> = vec![all.chars().take(2000).collect()];
    queries.extend(line_queries(&text.lines));
    if let Some(c) = customer_text {
        queries.push(c.to_string());
    }
    let (_, q, _) = vision.models.encode(None, queries, admitted).await?;
    let th = matcher::Thresholds {
        similarity: cfg.similarity,
        with_keyword: cfg.with_keyword,
    };
    Ok(Some(matcher::rank(&loaded.catalog, &all, &q, examples, th)))
}

/// Whether a customer writes English: the request's `language`, else their text's detected
/// language. Their screenshot is read with `screenshot.english_languages` first.
fn writes_english(vision: &Vision, language: Option<&str>, customer_text: Option<&str>) -> bool {
    if vision.config.english_languages.is_empty() {
        return false;
    }
    match language {
        Some(l) => l.to_ascii_lowercase().starts_with("en"),
        None => customer_text.is_some_and(|t| vision.lang.detect(t).language == "en"),
    }
}

/// Read a screenshot and say which known fault it shows (or that it does not know).
pub async fn analyze(
    vision: &Vision,
    bytes: Vec<u8>,
    customer_text: Option<String>,
    language: Option<String>,
) -> AppResult<Analysis> {
    // The place in the OCR pool first: a refused upload is not decoded.
    let slot = vision.ocr.reserve().map_err(|r| refused(vision, r))?;
    let cfg = vision.config.clone();
    let t0 = Instant::now();
    let c2 = cfg.clone();
    let (gray, prepared) = tokio::task::spawn_blocking(move || {
        super::image_in::decode(&bytes, &c2).map(|img| preprocess::prepare(&img))
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("decode task: {e}")))??;
    let decode_ms = t0.elapsed().as_millis() as u64;

    let t1 = Instant::now();
    let limit = Duration::from_millis(cfg.ocr_timeout_ms);
    let mut set = match writes_english(vision, language.as_deref(), customer_text.as_deref()) {
        true => LangSet::English,
        false => LangSet::All,
    };
    let first = (Layout::Auto, set);
    let Some(mut text) = ocr_pass(vision, &slot, gray.clone(), prepared, first, limit).await?
    else {
        return Err(AppError::invalid(
            "image",
            format!(
                "OCR took longer than {} ms (screenshot.ocr_timeout_ms)",
                cfg.ocr_timeout_ms
            ),
        ));
    };
    // Text the English set read unsure or not at all (Chinese on an English customer's
    // screen, most often) is read again with all languages.
    let unsure = text
        .confidence()
        .is_none_or(|c| c < cfg.english_min_confidence);
    if set == LangSet::English && unsure {
        let left = limit.saturating_sub(t1.elapsed());
        let all = (Layout::Auto, LangSet::All);
        if let Some(t) = ocr_pass(vision, &slot, gray.clone(), prepared, all, left).await? {
            (text, set) = (t, LangSet::All);
        }
    }
    let loaded = vision.current();
    let mut layout = "auto";
    let t2 = Instant::now();
    let mut ranking = rank(vision, &loaded, &text, customer_text.as_deref()).await?;
    let mut matching = t2.elapsed();
    // Auto layout can split a dialog into fragments; when it read text but matched nothing,
    // read the image as one block within what is left of the time limit (a miss keeps pass 1).
    // It can only change the answer where pass 1 read some failure evidence: without it no
    // fault is recognised (`polarity.rs`), and a success or neutral screen skips the pass.
    let unmatched = ranking.as_ref().is_none_or(|r| r.best.is_none());
    let failure_seen = ranking
        .as_ref()
        .is_some_and(|r| !r.evidence.failure.is_empty());
    let readable = text.lines.iter().filter(|l| substantial(&l.text)).count() >= 1;
    tracing::debug!(
        top = ranking
            .as_ref()
            .and_then(|r| r.candidates.first().map(|c| c.1)),
        unmatched,
        readable,
        failure_seen,
        "screenshot pass 1"
    );
    if unmatched && readable && failure_seen {
        let left = limit.saturating_sub(t1.elapsed());
        let block = (Layout::Block, set);
        if let Some(t) = ocr_pass(vision, &slot, gray, prepared, block, left).await? {
            let t3 = Instant::now();
            let r = rank(vision, &loaded, &t, customer_text.as_deref()).await?;
            matching += t3.elapsed();
            tracing::debug!(
                top = r.as_ref().and_then(|r| r.candidates.first().map(|c| c.1)),
                matched = r.as_ref().is_some_and(|r| r.best.is_some()),
                "screenshot pass 2"
            );
            if r.as_ref().is_some_and(|r| r.best.is_some()) {
                (text, ranking, layout) = (t, r, "block");
            }
        }
    }
    let ocr_ms = (t1.elapsed() - matching).as_millis() as u64;
    answer(
        vision,
        &loaded,
        text,
        customer_text.as_deref(),
        language,
        ranking,
        OcrMeta {
            prepared,
            layout,
            tesseract: cfg.languages_for(set == LangSet::English).to_string(),
            timings: Timings {
                decode: decode_ms,
                ocr: ocr_ms,
                matching: matching.as_millis() as u64,
            },
        },
    )
}

struct OcrMeta {
    prepared: preprocess::Prepared,
    layout: &'static str,
    tesseract: String,
    timings: Timings,
}

/// The answer from the OCR text and the ranking.
fn answer(
    vision: &Vision,
    loaded: &Loaded,
    text: OcrText,
    customer_text: Option<&str>,
    language: Option<String>,
    ranking: Option<matcher::Ranking>,
    meta: OcrMeta,
) -> AppResult<Analysis> {
    let mut languages: Vec<String> = Vec::new();
    for l in &text.lines {
        if l.text.chars().filter(|c| c.is_alphabetic()).count() >= 4 {
            let d = vision.lang.detect(&l.text);
            if d.language != "und" && !languages.contains(&d.language) {
                languages.push(d.language);
            }
        }
    }
    let zh = match language.as_deref() {
        Some(l) => l.to_lowercase().starts_with("zh"),
        None => {
            let mut all = text.text.clone();
            if let Some(c) = customer_text {
                all.push_str(c);
            }
            cjk_share(&all) >= 0.3
        }
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
                failure: Vec::new(),
                success: Vec::new(),
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
            confidence: text.confidence(),
            text: text.text,
            lines: text.lines,
            languages,
            preprocessing: meta.prepared,
            layout: meta.layout,
            tesseract: meta.tesseract,
        },
        evidence,
        solution,
        route_hint,
        timings_ms: meta.timings,
        top_evidence,
    })
}

/// Long enough to carry a message: 12+ Latin letters/digits or 5+ CJK characters.
fn substantial(s: &str) -> bool {
    let cjk = s.chars().filter(|&c| crate::lang::is_han(c)).count();
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

async fn embed_examples(
    models: &Models,
    cat: &Catalog,
    admitted: Instant,
) -> AppResult<Vec<Vec<Vec<f32>>>> {
    let texts: Vec<String> = cat
        .faults
        .iter()
        .flat_map(|f| f.spec.examples.iter().cloned())
        .collect();
    let (_, mut e, _) = models.encode(None, texts, admitted).await?;
    let mut out = Vec::new();
    for f in &cat.faults {
        let rest = e.split_off(f.spec.examples.len().min(e.len()));
        out.push(std::mem::replace(&mut e, rest));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::ScreenshotConfig;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_full_pool_refuses_before_decoding() {
        let cfg = ScreenshotConfig {
            ocr_workers: 1,
            ocr_queue: 1,
            ..ScreenshotConfig::default()
        };
        let models = Arc::new(crate::engine::Models::new(
            &[],
            "m",
            crate::models::config::Overlong::Truncate,
        ));
        let v = Vision::start(&cfg, models, Arc::default(), 3).unwrap();
        let held = [v.ocr.reserve().ok(), v.ocr.reserve().ok()];
        assert!(held.iter().all(Option::is_some));
        // Not an image at all: with the pool full it is refused (429) without being decoded.
        let junk = b"not an image".to_vec();
        match analyze(&v, junk.clone(), None, None).await {
            Err(AppError::Overloaded { retry_after, .. }) => assert_eq!(retry_after, 3),
            other => panic!("expected overloaded, got {:?}", other.map(|_| ())),
        }
        drop(held);
        // With a place free it is decoded, and refused for what it is.
        match analyze(&v, junk, None, None).await {
            Err(AppError::Invalid { field, .. }) => assert_eq!(field, "image"),
            other => panic!("expected invalid image, got {:?}", other.map(|_| ())),
        }
    }
}
