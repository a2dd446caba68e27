//! Screenshot preprocessing for OCR: grayscale, dark mode inverted, contrast stretched, small
//! text scaled up and huge images scaled down (which also bounds OCR time).

use image::{imageops, DynamicImage, GrayImage};

/// What was done, to map OCR boxes back to the original pixels.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Preprocessing)]
pub struct Prepared {
    /// Original pixels per prepared pixel is `1 / scale`.
    pub scale: f32,
    pub inverted: bool,
}

/// The longest side OCR sees at most.
const MAX_SIDE: u32 = 3200;
/// Images whose longest side is under this are scaled up (small UI text reads better larger).
const MIN_SIDE: u32 = 1600;

pub fn prepare(img: &DynamicImage) -> (GrayImage, Prepared) {
    let mut g = img.to_luma8();
    let (w, h) = g.dimensions();
    let long = w.max(h).max(1);
    let scale = if long > MAX_SIDE {
        MAX_SIDE as f32 / long as f32
    } else if long < MIN_SIDE {
        (MIN_SIDE as f32 / long as f32).min(3.0)
    } else {
        1.0
    };
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
    let mut hist = [0u64; 256];
    for p in g.pixels() {
        hist[p.0[0] as usize] += 1;
    }
    let n: u64 = hist.iter().sum();
    let mean = hist
        .iter()
        .enumerate()
        .map(|(v, c)| v as u64 * c)
        .sum::<u64>() as f32
        / n.max(1) as f32;
    // Dark mode: mostly dark pixels means light text on a dark background.
    let inverted = mean < 110.0;
    let (lo, hi) = (percentile(&hist, n, 0.01), percentile(&hist, n, 0.99));
    // A flat image keeps its levels (only inverted); otherwise stretch 1%..99% to 0..255.
    let (lo, hi) = if hi > lo { (lo, hi) } else { (0, 255) };
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
    (g, Prepared { scale, inverted })
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
}
