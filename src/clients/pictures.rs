//! Downloading profile pictures from Instagram's CDN, defensively: bounded time and size,
//! content sniffed by magic bytes (JPEG, PNG, WebP only, whatever the Content-Type says),
//! dimensions read from the header and bounded before anything decodes the pixels.

use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::clients::address::{AddressPolicy, NotPublic, PublicResolver};
use crate::config::PictureSettings;

/// A picture that is safe to keep and classify.
#[derive(Debug, Clone)]
pub struct Picture {
    pub bytes: Vec<u8>,
    pub sha256: [u8; 32],
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Why a picture was not fetched.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    /// The CDN refuses the link: its signature expired or the picture is gone. Final.
    #[error("link expired or picture removed (HTTP {0})")]
    Expired(u16),
    /// The answer is not a picture we accept. Final.
    #[error("{0}")]
    Rejected(String),
    /// Worth trying again later: timeouts, connection errors, 429 and 5xx.
    #[error("{0}")]
    Transient(String),
}

/// Which picture format `bytes` starts with.
#[must_use]
pub fn sniff(bytes: &[u8]) -> Option<(image::ImageFormat, &'static str)> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Some((image::ImageFormat::Jpeg, "image/jpeg")),
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some((image::ImageFormat::Png, "image/png")),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => {
            Some((image::ImageFormat::WebP, "image/webp"))
        }
        _ => None,
    }
}

fn describe_non_picture(bytes: &[u8]) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).to_ascii_lowercase();
    let what = if bytes.is_empty() {
        "an empty answer"
    } else if bytes.starts_with(b"GIF8") {
        "a GIF"
    } else if head.contains("<html") || head.contains("<!doctype") {
        "an HTML page"
    } else {
        "something else"
    };
    format!("not a JPEG, PNG or WebP picture ({what})")
}

/// Checks that `bytes` are a supported picture of acceptable size; returns it with its hash.
///
/// # Errors
/// [`FetchError::Rejected`] with the reason.
pub fn inspect(bytes: Vec<u8>, max_dimension: u32) -> Result<Picture, FetchError> {
    let (format, mime) = sniff(&bytes).ok_or_else(|| FetchError::Rejected(describe_non_picture(&bytes)))?;
    let (width, height) = image::ImageReader::with_format(std::io::Cursor::new(&bytes), format)
        .into_dimensions()
        .map_err(|e| FetchError::Rejected(format!("unreadable {mime} header: {e}")))?;
    if width == 0 || height == 0 || width > max_dimension || height > max_dimension {
        return Err(FetchError::Rejected(format!(
            "{width}x{height} pixels is outside 1..={max_dimension} on a side"
        )));
    }
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    Ok(Picture { bytes, sha256, mime, width, height })
}

/// Fetches pictures; cheap to clone.
#[derive(Debug, Clone)]
pub struct PictureClient {
    http: reqwest::Client,
    settings: PictureSettings,
    policy: std::sync::Arc<AddressPolicy>,
}

impl PictureClient {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(settings: &PictureSettings) -> reqwest::Result<Self> {
        let policy = std::sync::Arc::new(AddressPolicy::from(settings));
        let on_redirect = policy.clone();
        let mut builder = crate::clients::http_client()
            .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .timeout(Duration::from_secs(settings.timeout_secs))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > 3 {
                    return attempt.error("more than 3 redirects");
                }
                match on_redirect.check(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(reason) => attempt.error(format!("redirected: {reason}")),
                }
            }));
        if !policy.allows_local() {
            builder = builder.dns_resolver(std::sync::Arc::new(PublicResolver));
        }
        Ok(Self { http: builder.build()?, settings: settings.clone(), policy })
    }

    /// Downloads `url` within the size and time limits and inspects what came back.
    ///
    /// # Errors
    /// See [`FetchError`].
    pub async fn fetch(&self, url: &str) -> Result<Picture, FetchError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| FetchError::Rejected("not a URL".to_owned()))?;
        self.policy.check(&parsed).map_err(FetchError::Rejected)?;
        let response = self.http.get(parsed).send().await.map_err(|e| refused_or_transient(&e))?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            403 | 404 | 410 => return Err(FetchError::Expired(status)),
            429 | 500..=599 => return Err(FetchError::Transient(format!("HTTP {status}"))),
            _ => return Err(FetchError::Rejected(format!("unexpected HTTP {status}"))),
        }
        let max = self.settings.max_bytes;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(FetchError::Rejected(format!("larger than {max} bytes")));
        }
        let mut bytes = Vec::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| refused_or_transient(&e))?;
            if bytes.len() + chunk.len() > max {
                return Err(FetchError::Rejected(format!("larger than {max} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        inspect(bytes, self.settings.max_dimension)
    }
}

/// A redirect or a name the address rule refused is final; anything else may pass.
fn refused_or_transient(e: &reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut innermost = None;
    while let Some(cause) = source {
        if let Some(not_public) = cause.downcast_ref::<NotPublic>() {
            return FetchError::Rejected(not_public.to_string());
        }
        innermost = Some(cause);
        source = cause.source();
    }
    if e.is_redirect() {
        // The redirect policy's own reason (it names the host, never the link).
        return FetchError::Rejected(innermost.map_or_else(|| transport(e), ToString::to_string));
    }
    FetchError::Transient(transport(e))
}

/// The error without the URL: signed CDN links are long and identify the person.
fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    if e.is_connect() {
        return "cannot connect".to_owned();
    }
    let text = e.to_string();
    let text = match e.url() {
        Some(url) => text.replace(url.as_str(), "<picture url>"),
        None => text,
    };
    format!("download failed: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::new(width, height)
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .expect("encode");
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// A PNG signature and a valid IHDR chunk for the given size, without pixels.
    pub(crate) fn png_header_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut chunk = b"IHDR".to_vec();
        chunk.extend_from_slice(&width.to_be_bytes());
        chunk.extend_from_slice(&height.to_be_bytes());
        chunk.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        out.extend_from_slice(&13u32.to_be_bytes());
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&crc32(&chunk).to_be_bytes());
        // An empty IDAT: the header is complete, the pixels are missing.
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(b"IDAT");
        out.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
        out
    }

    #[test]
    fn accepts_a_real_picture() {
        let p = inspect(png(8, 6), 4096).expect("picture");
        assert_eq!((p.width, p.height, p.mime), (8, 6, "image/png"));
    }

    #[test]
    fn refuses_what_is_not_a_picture_or_too_big() {
        let e = |b: &[u8]| inspect(b.to_vec(), 4096).expect_err("rejected").to_string();
        assert!(e(b"<!DOCTYPE html><html>").contains("HTML"));
        assert!(e(b"GIF89a....").contains("GIF"));
        assert!(e(b"").contains("empty"));
        // A PNG whose header claims 20000x20000 (a decompression bomb) is refused unread.
        assert!(e(&png_header_claiming(20_000, 20_000)).contains("20000x20000"));
        assert!(e(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00]).contains("unreadable"));
    }
}
