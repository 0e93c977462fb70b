//! The one integration-test binary: every test gets its own database cloned from a migrated
//! template; outside services are faked at the HTTP boundary. The vision tests need the model
//! files (scripts/fetch-models.sh).

// Helpers panic on purpose: a broken fixture should fail the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]
// Test helpers favour plain signatures and local row types over these pedantic rules.
#![allow(clippy::needless_pass_by_value, clippy::items_after_statements, clippy::type_complexity)]
// End-to-end scenarios read best as one story.
#![allow(clippy::too_many_lines)]

mod api;
mod apify;
mod counting;
mod dashboard_api;
mod gemini;
mod helpers;
mod http;
mod ingest;
mod maintenance;
mod pictures;
mod privacy;
mod processes;
mod queue;
mod scrape;
mod sessions;
mod stubs;
mod vision;
