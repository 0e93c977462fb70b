//! The one integration-test binary: every test gets its own database cloned from a migrated
//! template; outside services are faked at the HTTP boundary. The vision tests need the model
//! files (scripts/fetch-models.sh).

// Helpers panic on purpose: a broken fixture should fail the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod helpers;
mod http;
mod processes;
mod queue;
mod vision;
