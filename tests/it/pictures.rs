//! The picture fetcher against a stub CDN serving hostile answers: each is a recorded,
//! explained failure; nothing panics or hangs.

use std::time::{Duration, Instant};

use audiencelens::clients::pictures::{FetchError, PictureClient};
use audiencelens::config::Config;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::stubs::{jpeg, local_picture_config, picture_url, serve_picture};

fn client() -> PictureClient {
    let config = local_picture_config(&[
        ("AUDIENCELENS__PICTURES__TIMEOUT_SECS", "1"),
        ("AUDIENCELENS__PICTURES__MAX_BYTES", "200000"),
    ]);
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
    let config = local_picture_config(&[]);
    let c = PictureClient::new(&config.settings.pictures).expect("client");
    let e = c.fetch(&picture_url(&cdn, "bomb")).await.expect_err("refused");
    assert!(matches!(&e, FetchError::Rejected(m) if m.contains("20000x20000")), "{e}");
}

/// Picture links are input: with the default settings (https, Instagram's CDN, public addresses
/// only) a link to this machine is refused before any request, and so is a redirect from an
/// allowed host to a private address, and a listed name that resolves to loopback.
#[tokio::test]
async fn links_to_private_or_unlisted_addresses_are_never_fetched() {
    let cdn = MockServer::start().await;
    serve_picture(&cdn, "ok", 200, "image/jpeg", jpeg(150, 150, [90, 60, 30])).await;
    let strict = Config::load_from(None, &[]).expect("defaults");
    let c = PictureClient::new(&strict.settings.pictures).expect("client");
    for url in [
        picture_url(&cdn, "ok"),
        "https://127.0.0.1/v/t51.2885-19/x.jpg".to_owned(),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "https://scontent.example.org/v/t51.2885-19/x.jpg".to_owned(),
        "file:///etc/passwd".to_owned(),
    ] {
        let e = c.fetch(&url).await.expect_err("refused");
        assert!(matches!(e, FetchError::Rejected(_)), "{url}: {e:?}");
    }
    assert!(cdn.received_requests().await.unwrap_or_default().is_empty(), "nothing reached the server");

    // "localhost" listed by mistake: https and the host list pass, the resolver refuses.
    let listed = Config::load_from(
        None,
        &[("AUDIENCELENS__PICTURES__ALLOWED_HOSTS".to_owned(), "localhost".to_owned())],
    )
    .expect("config");
    let c = PictureClient::new(&listed.settings.pictures).expect("client");
    let e = c.fetch("https://localhost:9/x.jpg").await.expect_err("refused");
    assert!(matches!(&e, FetchError::Rejected(m) if m.contains("no public address")), "{e:?}");

    // An allowed (local) host redirecting to a host that is not listed.
    Mock::given(method("GET"))
        .and(path("/v/t51.2885-19/hop.jpg"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "http://internal.example/secret"))
        .mount(&cdn)
        .await;
    let e = client().fetch(&picture_url(&cdn, "hop")).await.expect_err("refused");
    assert!(matches!(&e, FetchError::Rejected(m) if m.contains("not on pictures.allowed_hosts")), "{e:?}");

    // Production refuses the local escape hatch.
    let prod = Config::load_from(
        None,
        &[
            ("AUDIENCELENS__ENVIRONMENT".to_owned(), "production".to_owned()),
            ("AUDIENCELENS__PICTURES__ALLOW_LOCAL".to_owned(), "true".to_owned()),
        ],
    );
    assert!(prod.is_err_and(|e| e.to_string().contains("pictures.allow_local")));
}
