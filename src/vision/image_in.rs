//! Untrusted images in: the format by content (never by name), size limits checked from the
//! header before any pixel is decoded (decompression bombs), then a bounded decode.

use super::ScreenshotConfig;
use crate::error::{AppError, AppResult};
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

const FIELD: &str = "image";

/// The formats accepted, by their magic bytes.
pub fn sniff(b: &[u8]) -> Option<ImageFormat> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some(ImageFormat::WebP)
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if b.starts_with(b"BM") && b.len() >= 26 {
        Some(ImageFormat::Bmp)
    } else {
        None
    }
}

fn invalid(message: String) -> AppError {
    AppError::invalid(FIELD, message)
}

fn too_large(message: String) -> AppError {
    AppError::too_large(FIELD, message)
}

/// Check `bytes` against the limits and decode the image (a GIF's first frame).
pub fn decode(bytes: &[u8], cfg: &ScreenshotConfig) -> AppResult<DynamicImage> {
    if bytes.is_empty() {
        return Err(invalid("the image is empty".into()));
    }
    if bytes.len() > cfg.max_bytes {
        return Err(too_large(format!(
            "the image has {} bytes, over the limit of {} (screenshot.max_bytes)",
            bytes.len(),
            cfg.max_bytes
        )));
    }
    let format = sniff(bytes).ok_or_else(|| AppError::Invalid {
        kind: crate::error::InvalidKind::UnsupportedMedia,
        field: FIELD.into(),
        message: "not a PNG, JPEG, WebP, GIF or BMP image (judged by its content)".into(),
    })?;
    let name = format!("{format:?}").to_uppercase();
    let reader = |b: &[u8]| ImageReader::with_format(Cursor::new(b.to_vec()), format);
    let (w, h) = reader(bytes)
        .into_dimensions()
        .map_err(|e| invalid(format!("cannot read the {name} header: {e}")))?;
    if w == 0 || h == 0 {
        return Err(invalid(format!("the image is {w}x{h}: it has no pixels")));
    }
    if w > cfg.max_width || h > cfg.max_height {
        return Err(too_large(format!(
            "the image is {w}x{h}, over the limit of {}x{} (screenshot.max_width, screenshot.max_height)",
            cfg.max_width, cfg.max_height
        )));
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > cfg.max_pixels {
        return Err(too_large(format!(
            "the image has {pixels} pixels, over the limit of {} (screenshot.max_pixels)",
            cfg.max_pixels
        )));
    }
    if format == ImageFormat::Gif && !cfg.animated_gif_first_frame && is_animated_gif(bytes, cfg) {
        return Err(invalid(
            "an animated GIF: send a still screenshot (or set screenshot.animated_gif_first_frame)"
                .into(),
        ));
    }
    let mut r = reader(bytes);
    r.limits(limits(cfg));
    r.decode().map_err(|e| {
        invalid(format!(
            "cannot decode the {name} image (truncated or corrupt?): {e}"
        ))
    })
}

/// The decoders' limits: the configured size, and RGBA8 of the largest accepted image plus the
/// decoders' own buffers.
fn limits(cfg: &ScreenshotConfig) -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(cfg.max_width);
    limits.max_image_height = Some(cfg.max_height);
    limits.max_alloc = Some(cfg.max_pixels.saturating_mul(4).saturating_add(64 << 20));
    limits
}

/// More than one frame (decodes at most two frames, within the same limits as the image: a
/// frame may claim a far larger size than the GIF's logical screen).
fn is_animated_gif(bytes: &[u8], cfg: &ScreenshotConfig) -> bool {
    use image::{AnimationDecoder, ImageDecoder};
    match image::codecs::gif::GifDecoder::new(Cursor::new(bytes)) {
        Ok(mut d) => d.set_limits(limits(cfg)).is_ok() && d.into_frames().take(2).count() > 1,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::GrayImage::from_pixel(w, h, image::Luma([200]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    /// A PNG whose header claims `w`x`h` (the pixel data is tiny and wrong: never decoded).
    fn png_claiming(w: u32, h: u32) -> Vec<u8> {
        let mut b = png(2, 2);
        b[16..20].copy_from_slice(&w.to_be_bytes());
        b[20..24].copy_from_slice(&h.to_be_bytes());
        // Fix the IHDR CRC so decoders read the header.
        let crc = crc32(&b[12..29]);
        b[29..33].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &x in data {
            c ^= u32::from(x);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    fn err(bytes: &[u8], cfg: &ScreenshotConfig) -> (u16, String) {
        match decode(bytes, cfg) {
            Ok(_) => panic!("accepted"),
            Err(e) => (e.status().as_u16(), e.to_string()),
        }
    }

    #[test]
    fn bad_images_are_named_4xx() {
        let cfg = ScreenshotConfig::default();
        assert!(decode(&png(40, 30), &cfg).is_ok());
        assert_eq!(err(b"hello, I am a text file named .png", &cfg).0, 415);
        let p = png(40, 30);
        let (s, m) = err(&p[..p.len() - 20], &cfg);
        assert_eq!(s, 422, "{m}");
        let (s, m) = err(&png_claiming(20_000, 20_000), &cfg);
        assert_eq!(s, 413, "{m}");
        assert!(m.contains("screenshot.max_width"), "{m}");
        let (s, m) = err(&png_claiming(7000, 7000), &cfg);
        assert_eq!(s, 413, "{m}");
        assert!(m.contains("screenshot.max_pixels"), "{m}");
        assert_eq!(err(&png_claiming(0, 0), &cfg).0, 422);
        assert_eq!(err(b"", &cfg).0, 422);
        let small = ScreenshotConfig {
            max_bytes: 100,
            ..ScreenshotConfig::default()
        };
        let (s, m) = err(&png(300, 300), &small);
        assert_eq!(s, 413, "{m}");
        assert!(m.contains("screenshot.max_bytes"));
    }

    #[test]
    fn gifs_first_frame_or_rejected_when_animated() {
        use image::codecs::gif::GifEncoder;
        use image::{Delay, Frame, RgbaImage};
        let mut still = Vec::new();
        let mut two = Vec::new();
        {
            let mut e = GifEncoder::new(&mut still);
            e.encode_frame(Frame::new(RgbaImage::new(8, 8))).unwrap();
        }
        {
            let mut e = GifEncoder::new(&mut two);
            for _ in 0..2 {
                let f = Frame::from_parts(
                    RgbaImage::new(8, 8),
                    0,
                    0,
                    Delay::from_numer_denom_ms(100, 1),
                );
                e.encode_frame(f).unwrap();
            }
        }
        let cfg = ScreenshotConfig::default();
        assert!(decode(&still, &cfg).is_ok());
        let (s, m) = err(&two, &cfg);
        assert_eq!(s, 422);
        assert!(m.contains("animated"), "{m}");
        let first = ScreenshotConfig {
            animated_gif_first_frame: true,
            ..ScreenshotConfig::default()
        };
        assert_eq!(decode(&two, &first).unwrap().width(), 8);
    }
}
