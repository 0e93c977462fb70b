//! Clients of outside services. Every HTTP client in the product is built from
//! [`http_client`], so TLS is configured in one place.
//!
//! Owns: outbound HTTP. Uses: `config`.

pub mod address;
pub mod apify;
pub mod gemini;
pub mod pictures;

use std::sync::Once;

/// A reqwest builder with rustls on the `ring` provider (pure Rust, quick to build), installed
/// process-wide on first use.
pub fn http_client() -> reqwest::ClientBuilder {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Fails only if another provider was installed first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder().user_agent(concat!("audiencelens/", env!("CARGO_PKG_VERSION")))
}
