//! Insights: classifying an account's commenters and aggregating them into audience snapshots;
//! reading snapshots, history, comparisons, overlap and commenter lists.
//!
//! Owns: `classifications` (writes), `analyses.snapshot`. Uses: `db`, `vision`.

pub mod aggregate;
pub mod classify;
pub mod export;
pub mod funnel;
pub mod read;
pub mod snapshot;
pub mod trends;
