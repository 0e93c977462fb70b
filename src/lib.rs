//! AudienceLens: Instagram audience analysis — who comments on an account, by gender, age
//! bracket and profile type, with honest uncertainty.
//!
//! Architecture (dependencies point down):
//!
//! ```text
//! main.rs ─► cli ─► app (composition root: state, roles, shutdown)
//!                    ├─► http      JSON API (the only actix-web user)
//!                    ├─► schedule  cron entries that enqueue jobs
//!                    └─► jobs      one file per job kind; register_all
//!                          └─► queue   generic Postgres job queue (claim, lease, retry, rescue)
//!                                └─► db   pool, embedded migrations, generated schema
//! vision: the local profile-picture classifier and audience estimates (domain modules and
//! the CLI call it; it uses only config).
//! config, metrics: leaf modules used from anywhere.
//! bench: benchmarks that ship in the binary (`audiencelens bench ...`).
//! ```

pub mod accounts;
pub mod analyses;
pub mod app;
pub mod bench;
pub mod cascade;
pub mod cli;
pub mod clients;
pub mod config;
pub mod db;
pub mod http;
pub mod insights;
pub mod jobs;
pub mod metrics;
pub mod privacy;
pub mod profiles;
pub mod queue;
pub mod schedule;
pub mod scraping;
pub mod users;
pub mod vision;
