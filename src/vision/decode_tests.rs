//! Hostile and unusual pictures, all generated here (two tiny generated fixtures aside): each
//! gives a typed error or a correct picture, never a panic.

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage};

use super::*;

const LIMITS: DecodeLimits =
    DecodeLimits { max_bytes: 1 << 24, max_side: 8192, max_pixels: 40_000_000, min_side: 16 };

fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| image::Rgb([(x * 4) as u8, (y * 4) as u8, 128]))
}

fn jpeg(picture: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(picture.as_raw(), picture.width(), picture.height(), ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn png(picture: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(picture.as_raw(), picture.width(), picture.height(), ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A valid PNG header claiming `width` x `height`, with no pixel data worth the name.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    png_claiming_depth(width, height, 8)
}

/// The same with `depth` bits per channel (RGB).
fn png_claiming_depth(width: u32, height: u32, depth: u8) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[depth, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    out.extend(png_chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

#[test]
fn empty_input_is_refused() {
    assert_eq!(decode_rgb(&[], &LIMITS), Err(PictureError::Empty));
}

#[test]
fn other_formats_are_refused_by_name() {
    let cases: [(&[u8], &str); 6] = [
        (
            b"version https://git-lfs.github.com/spec/v1\noid sha256:00\n",
            "Git LFS pointer (text, not the picture)",
        ),
        (b"GIF89a\x01\x00\x01\x00\x80\x00\x00", "GIF"),
        (b"  <!DOCTYPE html><html><body>Not found</body></html>", "HTML/XML text"),
        (b"BM\x3a\x00\x00\x00", "BMP"),
        (b"\x00\x00\x00\x18ftypheic", "HEIF/AVIF"),
        (b"just some bytes", "unknown"),
    ];
    for (bytes, name) in cases {
        assert_eq!(decode_rgb(bytes, &LIMITS), Err(PictureError::Unsupported(name)), "{name}");
    }
}

#[test]
fn a_good_jpeg_and_png_decode() {
    let picture = gradient(40, 30);
    for bytes in [jpeg(&picture), png(&picture)] {
        let rgb = decode_rgb(&bytes, &LIMITS).unwrap();
        assert_eq!(rgb.dimensions(), (40, 30));
    }
    assert_eq!(decode_rgb(&png(&picture), &LIMITS).unwrap(), picture, "PNG is lossless");
}

#[test]
fn truncated_pictures_are_reported_as_truncated() {
    let picture = gradient(64, 64);
    let whole = jpeg(&picture);
    for cut in [whole.len() / 2, whole.len() - 2, 200] {
        let err = decode_rgb(&whole[..cut], &LIMITS).unwrap_err();
        assert!(matches!(err, PictureError::Truncated { format: "JPEG" }), "cut at {cut}: {err:?}");
    }
    let whole = png(&picture);
    let err = decode_rgb(&whole[..whole.len() / 2], &LIMITS).unwrap_err();
    assert!(matches!(err, PictureError::Truncated { .. } | PictureError::Corrupt { .. }), "{err:?}");
    let err = decode_rgb(&whole[..20], &LIMITS).unwrap_err();
    assert!(matches!(err, PictureError::Truncated { .. } | PictureError::Corrupt { .. }), "{err:?}");
}

#[test]
fn tiny_pictures_are_too_small() {
    for bytes in [jpeg(&gradient(1, 1)), png(&gradient(1, 1)), png(&gradient(15, 200))] {
        let err = decode_rgb(&bytes, &LIMITS).unwrap_err();
        assert!(matches!(err, PictureError::TooSmall { min_side: 16, .. }), "{err:?}");
    }
}

#[test]
fn huge_dimensions_are_refused_before_decoding() {
    let err = decode_rgb(&png_claiming(20_000, 20_000), &LIMITS).unwrap_err();
    assert!(matches!(err, PictureError::TooLarge { width: 20_000, height: 20_000, .. }), "{err:?}");
    // A JPEG whose frame header claims 20000x20000.
    let mut bytes = jpeg(&gradient(32, 32));
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[sof + 5..sof + 9].copy_from_slice(&[0x4E, 0x20, 0x4E, 0x20]);
    let err = decode_rgb(&bytes, &LIMITS).unwrap_err();
    assert!(matches!(err, PictureError::TooLarge { width: 20_000, height: 20_000, .. }), "{err:?}");
    // Within the side limit but too many pixels.
    let err = decode_rgb(&png_claiming(8000, 8000), &LIMITS).unwrap_err();
    assert!(matches!(err, PictureError::TooLarge { .. }), "{err:?}");
}

/// With the shipped settings, a 16-bit 6000x6000 PNG (about 470 MB to decode) is refused from
/// its header: the pixel bound is what bounds the decoder's memory.
#[test]
fn the_shipped_limits_refuse_a_16_bit_6000_px_png_unread() {
    let shipped = crate::config::Config::load_from(None, &[]).unwrap().settings.vision;
    let err = decode_rgb(&png_claiming_depth(6000, 6000, 16), &DecodeLimits::from(&shipped)).unwrap_err();
    assert!(matches!(err, PictureError::TooLarge { width: 6000, height: 6000, .. }), "{err:?}");
    // A 1080 px profile picture's header passes the check (and fails later only for its
    // missing pixels).
    let err = decode_rgb(&png_claiming_depth(1080, 1080, 16), &DecodeLimits::from(&shipped)).unwrap_err();
    assert!(!matches!(err, PictureError::TooLarge { .. }), "{err:?}");
}

#[test]
fn too_many_bytes_are_refused_unread() {
    let limits = DecodeLimits { max_bytes: 100, ..LIMITS };
    let err = decode_rgb(&jpeg(&gradient(64, 64)), &limits).unwrap_err();
    assert!(matches!(err, PictureError::TooManyBytes { limit: 100, .. }), "{err:?}");
}

#[test]
fn cmyk_jpeg_is_converted_to_rgb() {
    let bytes = include_bytes!("../../tests/fixtures/cmyk.jpg");
    let rgb = decode_rgb(bytes, &LIMITS).unwrap();
    assert_eq!(rgb.dimensions(), (32, 32));
    let cyan = rgb.get_pixel(4, 16).0;
    let magenta = rgb.get_pixel(28, 16).0;
    assert!(cyan[0] < 100 && cyan[1] > 150 && cyan[2] > 150, "cyan ink: {cyan:?}");
    assert!(magenta[0] > 150 && magenta[1] < 100 && magenta[2] > 150, "magenta ink: {magenta:?}");
}

#[test]
fn animated_webp_gives_its_first_frame() {
    let bytes = include_bytes!("../../tests/fixtures/animated.webp");
    let rgb = decode_rgb(bytes, &LIMITS).unwrap();
    assert_eq!(rgb.dimensions(), (32, 32));
    assert_eq!(rgb.get_pixel(10, 10).0, [220, 30, 30]);
    let err = decode_rgb(&bytes[..bytes.len() - 20], &LIMITS).unwrap_err();
    assert!(matches!(err, PictureError::Truncated { .. } | PictureError::Corrupt { .. }), "{err:?}");
}

/// An APP1 Exif segment holding only Orientation = `value`.
fn exif_orientation(value: u8) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&[0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, value, 0, 0, 0, 0, 0, 0]);
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(tiff);
    let mut out = vec![0xFF, 0xE1];
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend(payload);
    out
}

#[test]
fn exif_orientation_is_applied() {
    let plain = jpeg(&gradient(40, 20));
    let mut rotated = plain[..2].to_vec();
    rotated.extend(exif_orientation(6));
    rotated.extend_from_slice(&plain[2..]);
    assert_eq!(decode_rgb(&plain, &LIMITS).unwrap().dimensions(), (40, 20));
    assert_eq!(decode_rgb(&rotated, &LIMITS).unwrap().dimensions(), (20, 40));
}

#[test]
fn garbage_after_a_valid_header_is_an_error_not_a_panic() {
    let mut bytes = jpeg(&gradient(64, 64));
    let n = bytes.len();
    for b in &mut bytes[300..n - 2] {
        *b = 0xFF;
    }
    let _ = decode_rgb(&bytes, &LIMITS);
    let mut bytes = png(&gradient(64, 64));
    let n = bytes.len();
    for b in &mut bytes[40..n - 12] {
        *b ^= 0x5A;
    }
    assert!(decode_rgb(&bytes, &LIMITS).is_err());
}
