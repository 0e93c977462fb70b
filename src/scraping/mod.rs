//! Instagram data in: Apify dataset items (from the scrapers or from export files) parsed into
//! posts, comments and commenter profiles, and stored idempotently.
//!
//! Owns: `posts`, `comments`, `ig_profiles`, `tracked_account_posts`, `apify_runs`, an
//! analysis's input (`analysis_posts`, `analysis_comments`).
//! Uses: `db`, `accounts`, `profiles`, `clients::apify`.

pub mod export;
mod fields;
pub mod import;
pub mod intake;
pub mod items;
pub mod plan;
pub mod runs;
pub mod store;

pub use fields::{post_id_from_url, shortcode_to_id};
