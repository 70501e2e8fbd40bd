//! The domain's store traits, implemented once for both backends:
//! `sqlite.rs` and `postgres.rs` each compile this module with their own
//! `Db` (see [`crate::store`]).

use super::Db;

mod campaigns;
mod lists;
mod meetings;
mod reports;
mod schedule;
mod self_service;
mod subscribers;
