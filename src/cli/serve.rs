//! `necmail serve`: the daemon.

use super::{CliError, CliResult};
use crate::config::Config;
use crate::serve::ServeError;

pub async fn run(config: Config) -> CliResult {
    crate::serve::serve(config, super::shutdown_signal())
        .await
        .map_err(|e| match e {
            ServeError::Config(msg) => CliError::BadInput(msg),
            ServeError::Runtime(msg) => CliError::Runtime(msg),
        })
}
