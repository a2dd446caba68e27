//! A cheap first look at a screenshot before OCR: how tall its text is (connected components of
//! a downscaled, binarised copy), whether it is dark mode, whether it is a photo of a screen, and
//! where panels of the other polarity are (a dark toast or button on a light screen: Tesseract
//! misses light text on dark boxes, so preprocessing inverts them), and where tinted panels are
//! (a grey toast on a dark screen: Tesseract's one global threshold puts their fill with the
//! text, so preprocessing lifts their fill to the background).

use image::GrayImage;

/// What the first look measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    /// Height of the taller body text in original pixels (90th percentile of the glyph-like
    /// components' heights); `None` when too few glyph-like shapes were found.
    pub text_px: Option<f32>,
    /// Mostly dark pixels: light text on a dark background.
    pub dark: bool,
    /// Few flat runs of equal neighbours: a photo (sensor noise, blur, uneven light), not a
    /// rendered screen.
    pub photo: bool,
    /// Filled boxes of the other polarity (dark on a light screen, light on a dark one),
    /// `[x0, y0, x1, y1)` in original pixels.
    pub panels: Vec<[u32; 4]>,
    /// Filled boxes in a tone between the background and the other polarity (a grey toast or
    /// chip), `[x0, y0, x1, y1)` in original pixels.
    pub tinted: Vec<[u32; 4]>,
}

/// How far (in grey levels) a tinted panel's fill is at least from the background.
const TINT_MIN: u8 = 30;

/// The longest side of the measuring copy: a bigger image is box-averaged down by an integer
/// factor first (its text is then big enough to measure).
const WORK_SIDE: u32 = 1600;
/// Fewer glyph-like components than this: no text height.
const MIN_GLYPHS: usize = 8;

pub fn look(g: &GrayImage) -> Look {
    let (w, h) = g.dimensions();
    let k = w.max(h).div_ceil(WORK_SIDE).max(1);
    let small;
    let work = if k > 1 {
        small = box_down(g, k);
        &small
    } else {
        g
    };
    let mut hist = [0u64; 256];
    for p in work.pixels() {
        hist[p.0[0] as usize] += 1;
    }
    let n: u64 = hist.iter().sum::<u64>().max(1);
    let mean = hist
        .iter()
        .enumerate()
        .map(|(v, c)| v as u64 * c)
        .sum::<u64>() as f32
        / n as f32;
    let dark = mean < 110.0;
    let photo = flat_share(work) < 0.45;
    let original = |b: Bbox| {
        [
            b.x0 * k,
            b.y0 * k,
            ((b.x1 + 1) * k).min(w),
            ((b.y1 + 1) * k).min(h),
        ]
    };
    let (panels, tinted) = if photo {
        (Vec::new(), Vec::new())
    } else {
        // The background: the commonest level.
        let bg = (0..256).max_by_key(|&v| hist[v]).unwrap_or(0) as u8;
        let other = |v: u8| if dark { v > 150 } else { v < 110 };
        let tint = |v: u8| {
            if dark {
                v >= bg.saturating_add(TINT_MIN) && v <= 150
            } else {
                v >= 110 && v <= bg.saturating_sub(TINT_MIN)
            }
        };
        (
            filled(work, other).into_iter().map(original).collect(),
            filled(work, tint).into_iter().map(original).collect(),
        )
    };
    Look {
        text_px: text_height(work, &hist).map(|t| t * k as f32),
        dark,
        photo,
        panels,
        tinted,
    }
}

/// Filled panels of the pixels `inside` says: components that are wide, not tiny, not most of
/// the image, and mostly filled (text holes aside).
fn filled(g: &GrayImage, inside: impl Fn(u8) -> bool) -> Vec<Bbox> {
    let (w, h) = (g.width() as usize, g.height() as usize);
    let mask: Vec<bool> = g.as_raw().iter().map(|&v| inside(v)).collect();
    let area = (w * h) as f32;
    components(&mask, w, h)
        .into_iter()
        .filter(|b| {
            let (bw, bh) = ((b.x1 - b.x0 + 1) as f32, (b.y1 - b.y0 + 1) as f32);
            let share = bw * bh / area;
            bw >= 0.08 * w as f32
                && bh >= 12.0
                && (0.002..=0.5).contains(&share)
                && b.pixels as f32 / (bw * bh) >= 0.6
        })
        .take(32)
        .collect()
}

/// Average `k x k` blocks (the remainder rows and columns are dropped).
fn box_down(g: &GrayImage, k: u32) -> GrayImage {
    let (w, h) = (g.width() / k, g.height() / k);
    let (w, h) = (w.max(1), h.max(1));
    let src = g.as_raw();
    let stride = g.width() as usize;
    let mut out = vec![0u8; (w * h) as usize];
    let kk = k * k;
    let mut acc = vec![0u32; w as usize];
    for y in 0..h as usize {
        acc.iter_mut().for_each(|a| *a = 0);
        for dy in 0..k as usize {
            let row = (y * k as usize + dy).min(g.height() as usize - 1) * stride;
            for (x, a) in acc.iter_mut().enumerate() {
                let start = row + x * k as usize;
                let end = (start + k as usize).min(row + stride);
                *a += src[start..end].iter().map(|&v| v as u32).sum::<u32>();
            }
        }
        for (x, a) in acc.iter().enumerate() {
            out[y * w as usize + x] = (a / kk) as u8;
        }
    }
    GrayImage::from_raw(w, h, out).unwrap_or_else(|| GrayImage::new(1, 1))
}

/// Share of horizontal neighbours that are (almost) equal: rendered screens have large flat
/// areas even after JPEG; photos have noise and gradients everywhere.
fn flat_share(g: &GrayImage) -> f32 {
    let w = g.width() as usize;
    let (mut flat, mut all) = (0u64, 0u64);
    for row in g.as_raw().chunks(w.max(1)).step_by(2) {
        for p in row.windows(2) {
            all += 1;
            flat += (p[0].abs_diff(p[1]) <= 1) as u64;
        }
    }
    flat as f32 / all.max(1) as f32
}

/// Otsu's threshold of a histogram.
fn otsu(hist: &[u64; 256]) -> u8 {
    let n: f64 = hist.iter().sum::<u64>() as f64;
    let total: f64 = hist
        .iter()
        .enumerate()
        .map(|(v, &c)| v as f64 * c as f64)
        .sum();
    let (mut w0, mut sum0, mut best, mut at) = (0.0f64, 0.0f64, -1.0f64, 127u8);
    for (v, &c) in hist.iter().enumerate() {
        w0 += c as f64;
        sum0 += v as f64 * c as f64;
        let w1 = n - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (total - sum0) / w1);
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            at = v as u8;
        }
    }
    at
}

/// The 90th percentile height of glyph-like connected components of the minority class after
/// Otsu binarisation (text is the minority on a screen), in `g`'s pixels.
fn text_height(g: &GrayImage, hist: &[u64; 256]) -> Option<f32> {
    let (w, h) = (g.width() as usize, g.height() as usize);
    let t = otsu(hist);
    let below: u64 = hist[..=t as usize].iter().sum();
    let total: u64 = hist.iter().sum();
    let ink_is_dark = below * 2 <= total;
    let ink: Vec<bool> = g
        .as_raw()
        .iter()
        .map(|&v| (v <= t) == ink_is_dark)
        .collect();
    let boxes = components(&ink, w, h);
    let mut heights: Vec<u32> = boxes
        .iter()
        .filter(|b| {
            let (bw, bh) = (b.x1 - b.x0 + 1, b.y1 - b.y0 + 1);
            let inside = b.x0 > 0 && b.y0 > 0 && b.x1 + 1 < w as u32 && b.y1 + 1 < h as u32;
            let fill = b.pixels as f32 / (bw * bh) as f32;
            inside
                && bh >= 2
                && (bh as usize) <= h / 8
                && bw <= 3 * bh
                && (0.08..=0.95).contains(&fill)
        })
        .map(|b| b.y1 - b.y0 + 1)
        .collect();
    if heights.len() < MIN_GLYPHS {
        return None;
    }
    heights.sort_unstable();
    Some(heights[(heights.len() - 1) * 9 / 10] as f32)
}

#[derive(Debug, Clone, Copy)]
struct Bbox {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    pixels: u32,
}

/// Bounding boxes of the 4-connected components of `ink` (two passes with union-find).
fn components(ink: &[bool], w: usize, h: usize) -> Vec<Bbox> {
    let mut label = vec![0u32; w * h];
    let mut parent: Vec<u32> = vec![0];
    fn find(p: &mut [u32], mut x: u32) -> u32 {
        while p[x as usize] != x {
            p[x as usize] = p[p[x as usize] as usize];
            x = p[x as usize];
        }
        x
    }
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if !ink[i] {
                continue;
            }
            let left = if x > 0 { label[i - 1] } else { 0 };
            let up = if y > 0 { label[i - w] } else { 0 };
            label[i] = match (left, up) {
                (0, 0) => {
                    let l = parent.len() as u32;
                    parent.push(l);
                    l
                }
                (l, 0) | (0, l) => l,
                (a, b) => {
                    let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                    if ra != rb {
                        parent[ra.max(rb) as usize] = ra.min(rb);
                    }
                    ra.min(rb)
                }
            };
        }
    }
    let mut boxes: Vec<Option<Bbox>> = vec![None; parent.len()];
    for y in 0..h {
        for x in 0..w {
            let l = label[y * w + x];
            if l == 0 {
                continue;
            }
            let r = find(&mut parent, l) as usize;
            let (x, y) = (x as u32, y as u32);
            let b = boxes[r].get_or_insert(Bbox {
                x0: x,
                y0: y,
                x1: x,
                y1: y,
                pixels: 0,
            });
            b.x0 = b.x0.min(x);
            b.y0 = b.y0.min(y);
            b.x1 = b.x1.max(x);
            b.y1 = b.y1.max(y);
            b.pixels += 1;
        }
    }
    boxes.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A white page with rows of dark `size`-pixel "glyphs" (rings, so they are not solid).
    fn page(w: u32, h: u32, size: u32) -> GrayImage {
        let mut g = GrayImage::from_pixel(w, h, image::Luma([245]));
        let mut y = size;
        while y + size * 2 < h {
            let mut x = size;
            while x + size * 2 < w {
                for dy in 0..size {
                    for dx in 0..(size * 2 / 3) {
                        let edge = dy < 2 || dy + 2 >= size || dx < 2 || dx + 2 >= size * 2 / 3;
                        if edge {
                            g.put_pixel(x + dx, y + dy, image::Luma([20]));
                        }
                    }
                }
                x += size;
            }
            y += size * 2;
        }
        g
    }

    #[test]
    fn text_height_is_measured_at_any_image_size() {
        let l = look(&page(800, 600, 12));
        assert_eq!(l.text_px, Some(12.0));
        assert!(!l.dark && !l.photo);
        // Measured on a 3x box-averaged copy, reported in original pixels.
        let t = look(&page(4000, 1200, 48)).text_px.unwrap();
        assert!((40.0..=54.0).contains(&t), "{t}");
        // No glyphs at all.
        assert_eq!(
            look(&GrayImage::from_pixel(300, 300, image::Luma([200]))).text_px,
            None
        );
    }

    #[test]
    fn dark_pages_and_noise_are_told_apart() {
        let mut d = page(600, 400, 16);
        image::imageops::invert(&mut d);
        let l = look(&d);
        assert!(l.dark);
        assert_eq!(l.text_px, Some(16.0));
        let mut state = 7u32;
        let noise = GrayImage::from_fn(400, 300, |_, _| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            image::Luma([(state >> 16) as u8])
        });
        assert!(look(&noise).photo);
    }

    /// A 600 x 900 screen of level `page` with a toast filled with `fill` at
    /// `[100, 700, 500, 760)`, holding "text" strokes of level `text`.
    fn toast(page: u8, fill: u8, text: u8) -> GrayImage {
        let mut g = GrayImage::from_pixel(600, 900, image::Luma([page]));
        for y in 700..760 {
            for x in 100..500 {
                let ink = (720..740).contains(&y) && x % 7 < 3 && (150..450).contains(&x);
                g.put_pixel(x, y, image::Luma([if ink { text } else { fill }]));
            }
        }
        g
    }

    #[test]
    fn dark_toasts_on_light_screens_are_found() {
        let l = look(&toast(245, 40, 240));
        assert_eq!(l.panels, vec![[100, 700, 500, 760]]);
        assert!(l.tinted.is_empty());
        // Nothing of the kind on a plain page.
        assert!(look(&page(600, 900, 14)).panels.is_empty());
        assert!(look(&page(600, 900, 14)).tinted.is_empty());
    }

    #[test]
    fn grey_toasts_on_dark_screens_are_tinted_panels() {
        let l = look(&toast(22, 90, 245));
        assert!(l.dark);
        assert_eq!(l.tinted, vec![[100, 700, 500, 760]]);
        assert!(l.panels.is_empty());
    }
}
