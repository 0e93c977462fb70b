//! The picture fetcher against a stub CDN serving hostile answers: each is a recorded,
//! explained failure; nothing panics or hangs.

use std::time::{Duration, Instant};

use audiencelens::clients::pictures::{FetchError, PictureClient};
use audiencelens::config::Config;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::stubs::{jpeg, picture_url, serve_picture};

fn client() -> PictureClient {
    let config = Config::load_from(
        None,
        &[
            ("AUDIENCELENS__PICTURES__TIMEOUT_SECS".to_owned(), "1".to_owned()),
            ("AUDIENCELENS__PICTURES__MAX_BYTES".to_owned(), "200000".to_owned()),
        ],
    )
    .expect("config");
    PictureClient::new(&config.settings.pictures).expect("client")
}

/// A PNG of `w`x`h` pixels, all black: small on disk, huge once decoded.
fn big_png(w: u32, h: u32) -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::NoFilter,
    );
    let row = vec![0u8; w as usize];
    let mut pixels = Vec::with_capacity(w as usize * h as usize);
    for _ in 0..h {
        pixels.extend_from_slice(&row);
    }
    encoder.write_image(&pixels, w, h, image::ExtendedColorType::L8).expect("encode");
    out
}

#[tokio::test]
async fn hostile_answers_are_refused_with_a_reason() {
    let cdn = MockServer::start().await;
    let c = client();
    serve_picture(&cdn, "ok", 200, "image/jpeg", jpeg(150, 150, [90, 60, 30])).await;
    serve_picture(&cdn, "html", 200, "image/jpeg", b"<!DOCTYPE html><html>login</html>".to_vec()).await;
    serve_picture(&cdn, "gif", 200, "image/gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec()).await;
    serve_picture(&cdn, "expired", 403, "text/plain", b"URL signature expired".to_vec()).await;
    serve_picture(&cdn, "huge", 200, "image/jpeg", vec![0xFF; 300_000]).await;
    serve_picture(&cdn, "truncated", 200, "image/jpeg", jpeg(150, 150, [1, 1, 1])[..20].to_vec()).await;
    serve_picture(&cdn, "overloaded", 503, "text/plain", b"try later".to_vec()).await;
    Mock::given(method("GET"))
        .and(path("/v/t51.2885-19/silent.jpg"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&cdn)
        .await;

    let fetched = c.fetch(&picture_url(&cdn, "ok")).await.expect("a real picture");
    assert_eq!((fetched.width, fetched.height, fetched.mime), (150, 150, "image/jpeg"));

    let err = |name: &'static str| {
        let c = c.clone();
        let url = picture_url(&cdn, name);
        async move { c.fetch(&url).await.expect_err(name) }
    };
    assert!(matches!(err("html").await, FetchError::Rejected(m) if m.contains("HTML page")));
    assert!(matches!(err("gif").await, FetchError::Rejected(m) if m.contains("GIF")));
    assert_eq!(err("expired").await, FetchError::Expired(403));
    assert!(matches!(err("huge").await, FetchError::Rejected(m) if m.contains("larger than 200000 bytes")));
    assert!(matches!(err("truncated").await, FetchError::Rejected(m) if m.contains("unreadable")));
    assert!(matches!(err("overloaded").await, FetchError::Transient(m) if m.contains("503")));
    let started = Instant::now();
    assert!(matches!(err("silent").await, FetchError::Transient(m) if m == "timed out"));
    assert!(started.elapsed() < Duration::from_secs(5), "the timeout holds");
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_from_its_header() {
    let cdn = MockServer::start().await;
    let bomb = big_png(20_000, 20_000);
    assert!(bomb.len() < 2_000_000, "compresses to {} bytes", bomb.len());
    serve_picture(&cdn, "bomb", 200, "image/png", bomb).await;
    let config = Config::load_from(None, &[]).expect("config");
    let c = PictureClient::new(&config.settings.pictures).expect("client");
    let e = c.fetch(&picture_url(&cdn, "bomb")).await.expect_err("refused");
    assert!(matches!(&e, FetchError::Rejected(m) if m.contains("20000x20000")), "{e}");
}
