//! Commenters' profile pictures: where they come from, fetching them before their links
//! expire, and their bytes until they are classified.
//!
//! Owns: `profile_pictures`, `picture_blobs`. Uses: `db`, `clients::pictures`.

pub mod fetch;
pub mod picture_url;
