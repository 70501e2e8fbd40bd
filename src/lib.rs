//! necmail: a self-hosted newsletter service that mails each NEC report to
//! party members and councillors.
//!
//! The crate is split by domain: [`lists`] and [`subscribers`] hold the
//! audience, [`store`] keeps everything on SQLite or PostgreSQL, and [`cli`]
//! is the admin's command line.

pub mod campaigns;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod lists;
pub mod render;
pub mod reports;
pub mod store;
pub mod subscribers;
pub mod telemetry;
pub mod tokens;
