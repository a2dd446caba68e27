//! Screenshot preprocessing for OCR, decided per image from a cheap first look (`look.rs`):
//! grayscale, dark mode inverted, contrast stretched, and scaled so that the text is about the
//! height Tesseract reads best (small text up, large text down; huge images always down).

use super::look::{self, Look};
use image::{imageops, DynamicImage, GrayImage};

/// What was done, to map OCR boxes back to the original pixels.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Preprocessing)]
pub struct Prepared {
    /// Original pixels per prepared pixel is `1 / scale`.
    pub scale: f32,
    pub inverted: bool,
    /// The text height measured before OCR, in original pixels (`null`: no text-like shapes).
    pub text_px: Option<f32>,
    /// It looked like a photo of a screen rather than a screenshot.
    pub photo: bool,
    /// Panels of the other polarity (a dark toast on a light screen) inverted before OCR.
    pub panels: usize,
    /// Tinted panels whose fill was lifted to the background (a grey toast on a dark screen).
    pub tinted: usize,
}

/// The longest side OCR sees at most.
const MAX_SIDE: u32 = 3200;
/// The text height (90th percentile of glyph heights, about the body font size) scaled to.
/// Chosen on the rendered dev set (seed 11).
const TEXT_PX: f32 = 24.0;
/// The contrast stretch spans at least this many grey levels.
const MIN_SPAN: u8 = 96;
/// Scale factors this close to 1 are not worth a resampling pass.
const KEEP: std::ops::RangeInclusive<f32> = 0.8..=1.25;

/// Images whose longest side is under this may be scaled up (small UI text reads better larger).
const MIN_SIDE: u32 = 1600;

/// The scale for an image of `w x h` with this look: the smaller of "longest side up to
/// `MIN_SIDE`" (at most 3x) and "text to `TEXT_PX` pixels" (at least 0.5x), so large text is
/// scaled down or left alone instead of always scaled up. On the rendered dev set (seed 11)
/// text-height alone scaled a quarter of the images further up, which cost CPU and two
/// answers; the smaller of the two kept the answers of both.
fn choose_scale(w: u32, h: u32, l: &Look) -> f32 {
    let long = w.max(h).max(1) as f32;
    let by_side = if long < MIN_SIDE as f32 {
        (MIN_SIDE as f32 / long).min(3.0)
    } else {
        1.0
    };
    let by_text = match l.text_px {
        Some(t) if t > 0.0 => (TEXT_PX / t).clamp(0.5, 3.0),
        _ => by_side,
    };
    let mut scale = by_side.min(by_text);
    if KEEP.contains(&scale) {
        scale = 1.0;
    }
    scale.min(MAX_SIDE as f32 / long)
}

pub fn prepare(img: &DynamicImage) -> (GrayImage, Prepared) {
    let mut g = img.to_luma8();
    let l = look::look(&g);
    let (w, h) = g.dimensions();
    let scale = choose_scale(w, h, &l);
    let mut hist = [0u64; 256];
    for p in g.pixels() {
        hist[p.0[0] as usize] += 1;
    }
    let n: u64 = hist.iter().sum();
    let inverted = l.dark;
    let (lo, hi) = (percentile(&hist, n, 0.01), percentile(&hist, n, 0.99));
    // Stretch 1%..99% to 0..255, but over at least MIN_SPAN levels anchored at the background's
    // end: with under 1% ink (a sparse page) the 1% level is the background itself, and a
    // plain stretch turned a light grey page dark grey (Tesseract then read nothing).
    let (lo, hi) = if inverted {
        (lo, hi.max(lo.saturating_add(MIN_SPAN)))
    } else {
        (lo.min(hi.saturating_sub(MIN_SPAN)), hi)
    };
    let span = (hi as f32 - lo as f32).max(1.0);
    let lut: Vec<u8> = (0..256u32)
        .map(|v| {
            let x = ((v as f32 - lo as f32) / span * 255.0).clamp(0.0, 255.0) as u8;
            if inverted {
                255 - x
            } else {
                x
            }
        })
        .collect();
    for p in g.pixels_mut() {
        p.0[0] = lut[p.0[0] as usize];
    }
    for &[x0, y0, x1, y1] in &l.panels {
        for y in y0..y1.min(h) {
            for x in x0..x1.min(w) {
                let p = g.get_pixel_mut(x, y);
                p.0[0] = 255 - p.0[0];
            }
        }
    }
    for &b in &l.tinted {
        lift(&mut g, b);
    }
    if (scale - 1.0).abs() > 1e-3 {
        let nw = ((w as f32 * scale).round() as u32).max(1);
        let nh = ((h as f32 * scale).round() as u32).max(1);
        let filter = if scale > 1.0 {
            imageops::FilterType::CatmullRom
        } else {
            imageops::FilterType::Triangle
        };
        g = imageops::resize(&g, nw, nh, filter);
    }
    (
        g,
        Prepared {
            scale,
            inverted,
            text_px: l.text_px,
            photo: l.photo,
            panels: l.panels.len(),
            tinted: l.tinted.len(),
        },
    )
}

/// Make a tinted panel's fill the background (white) and keep its text dark: its text is the
/// side of the fill with more pixels far from it (light text is inverted first), then every
/// level is scaled by `255 / fill`. Tesseract's global threshold otherwise falls between the
/// fill and the page, and the text drowns with the fill.
fn lift(g: &mut GrayImage, [x0, y0, x1, y1]: [u32; 4]) {
    let (x1, y1) = (x1.min(g.width()), y1.min(g.height()));
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    // The fill and the text from inside the rounded corners.
    let m = (x1 - x0).min(y1 - y0) / 6;
    let mut hist = [0u64; 256];
    for y in y0 + m..y1 - m {
        for x in x0 + m..x1 - m {
            hist[g.get_pixel(x, y).0[0] as usize] += 1;
        }
    }
    let n: u64 = hist.iter().sum();
    if n == 0 {
        return;
    }
    let fill = percentile(&hist, n, 0.5) as usize;
    let darker: u64 = hist[..fill.saturating_sub(50)].iter().sum();
    let lighter: u64 = hist[(fill + 51).min(256)..].iter().sum();
    let invert = lighter > darker;
    let fill = if invert { 255 - fill } else { fill };
    if fill < 60 {
        return;
    }
    let gain = 255.0 / fill as f32;
    for y in y0..y1 {
        for x in x0..x1 {
            let p = g.get_pixel_mut(x, y);
            let v = if invert { 255 - p.0[0] } else { p.0[0] };
            p.0[0] = (v as f32 * gain).min(255.0) as u8;
        }
    }
}

fn percentile(hist: &[u64; 256], n: u64, q: f64) -> u8 {
    let target = (n as f64 * q) as u64;
    let mut acc = 0;
    for (v, c) in hist.iter().enumerate() {
        acc += c;
        if acc > target {
            return v as u8;
        }
    }
    255
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dark_small_images_are_inverted_stretched_and_scaled() {
        let mut img = GrayImage::from_pixel(400, 100, image::Luma([30]));
        for y in 45..55 {
            for x in 10..200 {
                img.put_pixel(x, y, image::Luma([200]));
            }
        }
        let (g, p) = prepare(&DynamicImage::ImageLuma8(img));
        assert!(p.inverted);
        assert_eq!(g.dimensions(), (1200, 300));
        assert!((p.scale - 3.0).abs() < 1e-6);
        // The background is now white, the text dark.
        assert_eq!(g.get_pixel(0, 0).0[0], 255);
        let (g, p) = prepare(&DynamicImage::ImageLuma8(GrayImage::from_pixel(
            6400,
            100,
            image::Luma([250]),
        )));
        assert!(!p.inverted);
        assert_eq!(g.width(), MAX_SIDE);
    }

    #[test]
    fn large_text_is_scaled_down_and_sparse_pages_stay_light() {
        // Rows of 60 px rings: text that big is halved, not scaled up to 1600 px.
        let mut img = GrayImage::from_pixel(1000, 800, image::Luma([244]));
        for row in 0..5u32 {
            for col in 0..12u32 {
                let (x0, y0) = (20 + col * 80, 20 + row * 150);
                for y in y0..y0 + 60 {
                    for x in x0..x0 + 40 {
                        if y < y0 + 3 || y >= y0 + 57 || x < x0 + 3 || x >= x0 + 37 {
                            img.put_pixel(x, y, image::Luma([30]));
                        }
                    }
                }
            }
        }
        let (g, p) = prepare(&DynamicImage::ImageLuma8(img));
        assert_eq!(p.text_px, Some(60.0));
        assert_eq!(g.width(), 500);
        // A light grey page with under 1% ink and a white bar: the background stays light
        // (a plain 1%..99% stretch made it dark grey).
        let mut sparse = GrayImage::from_pixel(800, 600, image::Luma([244]));
        for y in 0..30 {
            for x in 0..800 {
                sparse.put_pixel(x, y, image::Luma([255]));
            }
        }
        for x in 100..120 {
            sparse.put_pixel(x, 300, image::Luma([20]));
        }
        let (g, p) = prepare(&DynamicImage::ImageLuma8(sparse));
        assert!(!p.inverted);
        assert!(g.get_pixel(g.width() / 2, g.height() / 2).0[0] > 200);
    }

    #[test]
    fn grey_toasts_on_dark_screens_become_dark_text_on_white() {
        // A dark list with light text, and a grey toast with light text over it.
        let mut img = GrayImage::from_pixel(720, 1560, image::Luma([22]));
        for row in 0..8u32 {
            for y in 200 + row * 140..230 + row * 140 {
                for x in 160..500 {
                    if x % 9 < 3 {
                        img.put_pixel(x, y, image::Luma([240]));
                    }
                }
            }
        }
        for y in 800..900 {
            for x in 110..610 {
                let text = (835..865).contains(&y) && (280..440).contains(&x) && x % 7 < 3;
                img.put_pixel(x, y, image::Luma([if text { 245 } else { 90 }]));
            }
        }
        let (g, p) = prepare(&DynamicImage::ImageLuma8(img));
        assert!(p.inverted);
        assert_eq!(p.tinted, 1);
        let at = |x: u32, y: u32| g.get_pixel(x, y).0[0];
        // The fill is the background now, and the toast's text is dark on it.
        assert!(at(200, 820) >= 250, "{}", at(200, 820));
        assert!(at(280, 850) < 40, "{}", at(280, 850));
        assert!(at(20, 20) >= 250);
    }
}
