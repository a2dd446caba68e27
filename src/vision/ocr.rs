//! OCR with Tesseract (through the `tesseract` crate): a fixed pool of worker threads, each
//! with its own engine, fed by a bounded queue so OCR load cannot starve text inference.
//! A screenshot reserves its place ([`Slot`]) before it is decoded, so a refused upload costs
//! no decoding: under a storm of uploads the CPU stays with the images being read.

use super::preprocess::Prepared;
use crate::lang::is_cjk_text_char;
use image::GrayImage;
use parking_lot::Mutex;
use serde::Serialize;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = OcrLine)]
pub struct Line {
    pub text: String,
    /// Mean word confidence, 0..100.
    pub confidence: f32,
    /// `[x, y, width, height]` in the uploaded image's pixels.
    pub bbox: [u32; 4],
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct OcrText {
    pub text: String,
    pub lines: Vec<Line>,
}

impl OcrText {
    /// Mean line confidence weighted by characters (0..100); `None` when nothing was read.
    pub fn confidence(&self) -> Option<f32> {
        let (mut sum, mut n) = (0.0f32, 0usize);
        for l in &self.lines {
            let c = l.text.chars().filter(|c| !c.is_whitespace()).count();
            sum += l.confidence * c as f32;
            n += c;
        }
        (n > 0).then(|| sum / n as f32)
    }
}

/// Tesseract's page segmentation for a pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layout {
    /// Find text blocks (the tesseract CLI's default): quick on photos and noise.
    Auto,
    /// The whole image is one block of text: reads some dialogs better, but a photo or noise
    /// turns into hundreds of "lines" (seconds of LSTM), so it runs only as a second pass.
    Block,
}

/// Which of the two configured Tesseract language sets reads a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LangSet {
    /// `screenshot.languages` (English and Chinese by default).
    All,
    /// `screenshot.english_languages`: for a customer who writes English (measured: 7-16% less
    /// CPU per English screenshot than `eng+chi_sim`).
    English,
}

struct Job {
    image: GrayImage,
    prepared: Prepared,
    layout: Layout,
    set: LangSet,
    reply: oneshot::Sender<Result<OcrText, String>>,
}

/// Why a job was not run.
pub enum Refused {
    /// The queue is full: try again later.
    Busy,
    /// No engine could start (tessdata missing?).
    Unavailable(String),
}

pub struct OcrPool {
    tx: SyncSender<Job>,
    error: Mutex<Option<String>>,
    /// One per screenshot in the pool (running or waiting): `workers + queue`.
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

/// A screenshot's place in the pool, held from before decoding until its last pass is read.
pub struct Slot(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl OcrPool {
    /// Start `workers` threads with engines for the language sets `languages` (indexed by
    /// [`LangSet`]: e.g. `eng+chi_sim`, `eng`), at most `queue` jobs waiting. Engines start
    /// lazily in their threads, each set when a job first asks for it; a failure is reported by
    /// `submit` as unavailable.
    pub fn start(
        workers: usize,
        queue: usize,
        tessdata: Option<String>,
        languages: [String; 2],
    ) -> OcrPool {
        let workers = workers.max(1);
        // Each slot has at most one job out, so the channel is never full for a slot holder.
        let (tx, rx) = sync_channel::<Job>(queue + workers);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let pool = OcrPool {
            tx,
            error: Mutex::new(None),
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(queue + workers)),
        };
        for i in 0..workers {
            let (rx, tessdata, languages) = (rx.clone(), tessdata.clone(), languages.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("ocr-{i}"))
                .spawn(move || worker(rx, tessdata, languages));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start an OCR thread");
            }
        }
        pool
    }

    /// Take a place for one screenshot (all its passes), or say why not, at once.
    pub fn reserve(&self) -> Result<Slot, Refused> {
        if let Some(e) = self.error.lock().clone() {
            return Err(Refused::Unavailable(e));
        }
        self.slots
            .clone()
            .try_acquire_owned()
            .map(Slot)
            .map_err(|_| Refused::Busy)
    }

    /// Queue `image` for OCR under `slot`; the answer arrives on the returned channel.
    pub fn submit(
        &self,
        _slot: &Slot,
        image: GrayImage,
        prepared: Prepared,
        layout: Layout,
        set: LangSet,
    ) -> Result<oneshot::Receiver<Result<OcrText, String>>, Refused> {
        if let Some(e) = self.error.lock().clone() {
            return Err(Refused::Unavailable(e));
        }
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Job {
            image,
            prepared,
            layout,
            set,
            reply,
        }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(Refused::Busy),
            Err(TrySendError::Disconnected(_)) => {
                Err(Refused::Unavailable("the OCR workers stopped".into()))
            }
        }
    }

    /// Check that an engine starts with these settings (at server start).
    pub fn probe(tessdata: Option<&str>, languages: &str) -> Result<(), String> {
        tesseract::Tesseract::new(tessdata, Some(languages))
            .map(|_| ())
            .map_err(|e| format!("Tesseract cannot start with `{languages}`: {e} (install tesseract-ocr-eng and tesseract-ocr-chi-sim, or set screenshot.tessdata)"))
    }

    pub fn set_unavailable(&self, why: String) {
        *self.error.lock() = Some(why);
    }
}

fn worker(
    rx: std::sync::Arc<Mutex<std::sync::mpsc::Receiver<Job>>>,
    tessdata: Option<String>,
    languages: [String; 2],
) {
    one_openmp_thread();
    // One engine per language set, started when a job first asks for it.
    let mut engines: [Option<tesseract::Tesseract>; 2] = [None, None];
    loop {
        let job = {
            let r = rx.lock();
            match r.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        };
        let i = job.set as usize;
        let t = match engines[i].take() {
            Some(t) => Ok(t),
            // Its per-image diagnostics ("Estimating resolution as 263") go nowhere, not to
            // the server's stderr.
            None => tesseract::Tesseract::new(tessdata.as_deref(), Some(&languages[i]))
                .map_err(|e| format!("Tesseract cannot start: {e}"))
                .and_then(|t| {
                    t.set_variable("debug_file", "/dev/null")
                        .map_err(|e| format!("Tesseract cannot start: {e}"))
                }),
        };
        let out = t.and_then(|t| recognize(t, &job.image, job.prepared, job.layout));
        let answer = match out {
            Ok((t, text)) => {
                engines[i] = Some(t);
                Ok(text)
            }
            Err(e) => Err(e),
        };
        let _ = job.reply.send(answer);
    }
}

/// Tesseract's LSTM runs OpenMP `parallel` regions with an explicit thread count. libgomp reads
/// `OMP_THREAD_LIMIT` when it is loaded, before `main`, so setting it from inside the process did
/// nothing, and `omp_set_num_threads` does not cap an explicit count: each time step woke and
/// parked a team through futexes. Measured on 30 rendered screenshots (2-core AMD EPYC): 3.9 M
/// context switches, 549 ms of system CPU and 1.30 s of CPU per image, against 11 ms and 0.30 s
/// with one thread. A maximum of 0 active levels makes every parallel region inactive (run by
/// the thread that meets it). Found at run time: a Tesseract built without OpenMP has no such
/// symbol, and nothing changes.
fn one_openmp_thread() {
    // SAFETY: `dlsym` gets a NUL-terminated name; where found, the symbol is the OpenMP
    // runtime's `void omp_set_max_active_levels(int)`, called with the C ABI and a valid `int`.
    unsafe {
        let f = libc::dlsym(libc::RTLD_DEFAULT, c"omp_set_max_active_levels".as_ptr());
        if !f.is_null() {
            let set: extern "C" fn(libc::c_int) = std::mem::transmute(f);
            set(0);
        }
    }
}

fn recognize(
    t: tesseract::Tesseract,
    img: &GrayImage,
    p: Prepared,
    layout: Layout,
) -> Result<(tesseract::Tesseract, OcrText), String> {
    // The library's default layout is one block (the CLI's is auto): measured on a noise
    // photo, 7.7 s and 354 TSV rows as one block, 0.13 s and none with auto.
    let mut t = t;
    t.set_page_seg_mode(match layout {
        Layout::Auto => tesseract::PageSegMode::PsmAuto,
        Layout::Block => tesseract::PageSegMode::PsmSingleBlock,
    });
    // Raw pixels, no PNG round trip. (An earlier measurement blamed `set_frame` for 30 s
    // noise photos; that was the one-block layout, now only a second pass.)
    let (w, h) = (img.width() as i32, img.height() as i32);
    let mut t = t
        .set_frame(img.as_raw(), w, h, 1, w)
        .map_err(|e| format!("OCR: {e}"))?
        .recognize()
        .map_err(|e| format!("OCR: {e}"))?;
    let tsv = t.get_tsv_text(0).map_err(|e| format!("OCR: {e}"))?;
    Ok((t, parse_tsv(&tsv, p.scale)))
}

/// Tesseract's TSV (level, page, block, par, line, word, left, top, width, height, conf, text)
/// to lines; boxes scaled back by `1 / scale`. CJK words join without spaces.
pub fn parse_tsv(tsv: &str, scale: f32) -> OcrText {
    // (text, word confidences, box [x0, y0, x1, y1], (block, paragraph, line))
    type Acc = (String, Vec<f32>, [u32; 4], (u32, u32, u32));
    let mut lines: Vec<Acc> = Vec::new();
    for row in tsv.lines().skip(1) {
        let c: Vec<&str> = row.splitn(12, '\t').collect();
        if c.len() < 12 || c[0] != "5" {
            continue;
        }
        let word = c[11].trim();
        if word.is_empty() {
            continue;
        }
        let n = |i: usize| c[i].parse::<u32>().unwrap_or(0);
        let key = (n(2), n(3), n(4));
        let conf: f32 = c[10].parse().unwrap_or(-1.0);
        let b = [n(6), n(7), n(6) + n(8), n(7) + n(9)];
        match lines.last_mut() {
            Some(l) if l.3 == key => {
                let glue = !(l.0.chars().last().is_some_and(is_cjk_text_char)
                    && word.chars().next().is_some_and(is_cjk_text_char));
                if glue {
                    l.0.push(' ');
                }
                l.0.push_str(word);
                l.1.push(conf);
                l.2 = [
                    l.2[0].min(b[0]),
                    l.2[1].min(b[1]),
                    l.2[2].max(b[2]),
                    l.2[3].max(b[3]),
                ];
            }
            _ => lines.push((word.to_string(), vec![conf], b, key)),
        }
    }
    let inv = 1.0 / scale.max(1e-6);
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|(text, confs, b, _)| {
            let valid: Vec<f32> = confs.into_iter().filter(|c| *c >= 0.0).collect();
            let confidence = valid.iter().sum::<f32>() / valid.len().max(1) as f32;
            let s = |v: u32| (v as f32 * inv).round() as u32;
            Line {
                text,
                confidence,
                bbox: [s(b[0]), s(b[1]), s(b[2] - b[0]), s(b[3] - b[1])],
            }
        })
        .collect();
    OcrText {
        text: lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_rows_become_lines_with_boxes_in_original_pixels() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
            1\t1\t0\t0\t0\t0\t0\t0\t800\t600\t-1\t\n\
            5\t1\t1\t1\t1\t1\t20\t40\t100\t30\t95.5\tPayment\n\
            5\t1\t1\t1\t1\t2\t130\t42\t80\t30\t90.5\tfailed\n\
            5\t1\t2\t1\t1\t1\t20\t100\t60\t30\t88\t支付\n\
            5\t1\t2\t1\t1\t2\t80\t100\t60\t30\t86\t失败\n";
        let o = parse_tsv(tsv, 2.0);
        assert_eq!(o.text, "Payment failed\n支付失败");
        assert_eq!(o.lines[0].bbox, [10, 20, 95, 16]);
        assert!((o.lines[0].confidence - 93.0).abs() < 1e-4);
        assert_eq!(parse_tsv("", 1.0).lines.len(), 0);
        // Weighted by characters: "Paymentfailed" (13 at 93) and "支付失败" (4 at 87).
        let c = o.confidence().unwrap();
        assert!((c - (13.0 * 93.0 + 4.0 * 87.0) / 17.0).abs() < 1e-3, "{c}");
        assert_eq!(parse_tsv("", 1.0).confidence(), None);
    }

    #[test]
    fn ocr_threads_run_openmp_regions_alone() {
        let levels = std::thread::spawn(|| {
            one_openmp_thread();
            // SAFETY: as in `one_openmp_thread`; `int omp_get_max_active_levels(void)`.
            unsafe {
                let f = libc::dlsym(libc::RTLD_DEFAULT, c"omp_get_max_active_levels".as_ptr());
                (!f.is_null()).then(|| {
                    let get: extern "C" fn() -> libc::c_int = std::mem::transmute(f);
                    get()
                })
            }
        })
        .join()
        .unwrap();
        // Tesseract links libgomp on Debian; without an OpenMP runtime there is nothing to set.
        if let Some(l) = levels {
            assert_eq!(l, 0);
        }
    }

    #[test]
    fn places_are_workers_plus_queue_and_come_back_when_dropped() {
        let pool = OcrPool::start(1, 2, None, ["eng".into(), "eng".into()]);
        let held: Vec<Slot> = (0..3).filter_map(|_| pool.reserve().ok()).collect();
        assert_eq!(held.len(), 3);
        assert!(matches!(pool.reserve(), Err(Refused::Busy)));
        drop(held);
        assert!(pool.reserve().is_ok());
        pool.set_unavailable("no tessdata".into());
        assert!(matches!(pool.reserve(), Err(Refused::Unavailable(_))));
    }
}
