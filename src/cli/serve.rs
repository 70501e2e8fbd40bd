//! `necmail serve`: the daemon.

use super::CliResult;
use crate::config::Config;

pub async fn run(_config: Config) -> CliResult {
    todo!("SKELETON")
}
