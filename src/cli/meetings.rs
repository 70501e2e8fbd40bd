//! `necmail meeting …`: record NEC meetings and see which have a report.

use clap::Subcommand;

use super::CliResult;
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum MeetingCommand {}

pub async fn run(command: MeetingCommand, _store: &dyn Store, _config: &Config) -> CliResult {
    match command {}
}
