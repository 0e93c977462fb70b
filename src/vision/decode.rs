//! Picture bytes → RGB8 pixels, defensively: the format is sniffed from magic bytes (JPEG, PNG,
//! WebP; anything else is refused by name), size limits are checked from the header before any
//! pixel is decoded (decompression bombs), EXIF orientation is applied, alpha is dropped and
//! grey is expanded. Every failure is a [`PictureError`], never a panic.
//!
//! Owns: decoding and its limits. Uses: `image` only.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};

use super::error::PictureError;
use crate::config::VisionSettings;

/// Size limits checked before and during decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    pub max_bytes: usize,
    pub max_side: u32,
    pub max_pixels: u64,
    pub min_side: u32,
}

impl From<&VisionSettings> for DecodeLimits {
    fn from(s: &VisionSettings) -> Self {
        Self { max_bytes: s.max_bytes, max_side: s.max_side, max_pixels: s.max_pixels, min_side: s.min_side }
    }
}

/// The formats we decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureFormat {
    Jpeg,
    Png,
    WebP,
}

impl PictureFormat {
    fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::WebP => "WebP",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
            Self::WebP => ImageFormat::WebP,
        }
    }
}

/// The format named by the first bytes; known other formats are refused by name.
pub fn sniff(bytes: &[u8]) -> Result<PictureFormat, PictureError> {
    if bytes.is_empty() {
        return Err(PictureError::Empty);
    }
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Ok(PictureFormat::Jpeg);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok(PictureFormat::Png);
    }
    if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP".as_slice()) {
        return Ok(PictureFormat::WebP);
    }
    let other = if starts(b"GIF87a") || starts(b"GIF89a") {
        "GIF"
    } else if starts(b"BM") {
        "BMP"
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        "TIFF"
    } else if bytes.get(4..8) == Some(b"ftyp".as_slice()) {
        "HEIF/AVIF"
    } else if starts(b"version https://git-lfs") {
        "Git LFS pointer (text, not the picture)"
    } else if looks_like_markup(bytes) {
        "HTML/XML text"
    } else {
        "unknown"
    };
    Err(PictureError::Unsupported(other))
}

fn looks_like_markup(bytes: &[u8]) -> bool {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

/// A JPEG whose last scan has no end-of-image marker after it was cut off. (Entropy-coded data
/// cannot contain 0xFFD9, so the first one after the last start-of-scan is the real end.)
fn is_truncated_jpeg(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return true;
    };
    !bytes[sos + 2..].windows(2).any(|w| w == [0xFF, 0xD9])
}

fn decode_error(format: PictureFormat, error: &ImageError) -> PictureError {
    let name = format.name();
    match error {
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            PictureError::Truncated { format: name }
        }
        other => {
            let reason = other.to_string();
            let lower = reason.to_ascii_lowercase();
            if lower.contains("end of file") || lower.contains("eof") || lower.contains("truncat") {
                PictureError::Truncated { format: name }
            } else {
                PictureError::Corrupt { format: name, reason }
            }
        }
    }
}

/// Decodes `bytes` to RGB8 with EXIF orientation applied.
pub fn decode_rgb(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, PictureError> {
    if bytes.len() > limits.max_bytes {
        return Err(PictureError::TooManyBytes { bytes: bytes.len(), limit: limits.max_bytes });
    }
    let format = sniff(bytes)?;
    if format == PictureFormat::Jpeg && is_truncated_jpeg(bytes) {
        return Err(PictureError::Truncated { format: format.name() });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    // Headers first, without limits, so the size check below can name the real dimensions.
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(|e| decode_error(format, &e))?;
    let (width, height) = decoder.dimensions();
    if width.max(height) > limits.max_side || u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(PictureError::TooLarge {
            width,
            height,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        });
    }
    if width.min(height) < limits.min_side {
        return Err(PictureError::TooSmall { width, height, min_side: limits.min_side });
    }
    let mut alloc = Limits::default();
    // Output buffer (up to 8 bytes per pixel for 16-bit RGBA) plus decoder scratch: with the
    // pixel bound, this bounds the decoder's memory.
    alloc.max_alloc = Some(limits.max_pixels.saturating_mul(16));
    decoder.set_limits(alloc).map_err(|e| decode_error(format, &e))?;
    // A broken EXIF block is not worth losing the picture for.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut picture = DynamicImage::from_decoder(decoder).map_err(|e| decode_error(format, &e))?;
    picture.apply_orientation(orientation);
    Ok(match picture {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.into_rgb8(),
    })
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
