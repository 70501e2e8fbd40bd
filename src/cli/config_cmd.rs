use clap::Subcommand;

use super::{CliError, CliResult};
use crate::config::{Config, Source};
use crate::delivery::{SmtpRelay, Transport as _, dkim};

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
            let signers =
                dkim::load_all(&config.dkim()).map_err(|e| CliError::BadInput(e.to_string()))?;
            for signer in &signers {
                println!(
                    "# DKIM signs with {} under {}",
                    signer.algorithm(),
                    signer.dns_name()
                );
            }
            if dkim::ed25519_only(&signers) {
                eprintln!(
                    "warning: the only DKIM key is Ed25519, which Gmail, Microsoft and Yahoo do not \
                     yet verify, so DKIM fails there: add an RSA key with NECMAIL_DKIM_SELECTOR_2 \
                     and NECMAIL_DKIM_KEY_FILE_2 (RFC 8463)"
                );
            }
            // The relay's settings as a send would take them, without connecting.
            if config.smtp.is_some() {
                let relay =
                    SmtpRelay::new(config).map_err(|e| CliError::BadInput(e.to_string()))?;
                println!("# mail goes out through {}", relay.describe());
            }
            println!("# the configuration is valid");
            Ok(())
        }
    }
}
