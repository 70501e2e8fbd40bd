use clap::Subcommand;

use super::CliResult;
use crate::config::{Config, Source};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration, secrets redacted. Exits 2 when a
    /// variable is invalid.
    Check,
}

pub fn run(command: ConfigCommand, config: &Config) -> CliResult {
    match command {
        ConfigCommand::Check => {
            for (name, value, source) in &config.effective {
                let source = match source {
                    Source::Environment => "set",
                    Source::Default => "default",
                };
                println!("{name}={value}  # {source}");
            }
            let database = config.database_url.location();
            match config.database_url.sqlite_file() {
                Some(file) if !file.exists() => {
                    println!("# the database is {database}, which does not exist yet")
                }
                _ => println!("# the database is {database}"),
            }
            println!("# the configuration is valid");
            Ok(())
        }
    }
}
