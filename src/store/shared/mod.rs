//! The domain's store traits, implemented once for both backends:
//! `sqlite.rs` and `postgres.rs` each compile this module with their own
//! `Db` (see [`crate::store`]).
//!
//! Most statements are string literals. The few assembled at run time (a
//! shared `SELECT` with its `WHERE`, a claim with the dialect's lock) are
//! put together only from this module's constants, and every value goes
//! through `bind`: that is what each `AssertSqlSafe` here asserts.

use super::Db;

mod admin;
mod campaigns;
mod feedback;
mod import_jobs;
mod lists;
mod media;
mod meetings;
mod reports;
mod schedule;
mod self_service;
mod subscribers;
