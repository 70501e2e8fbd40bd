use clap::Subcommand;

use super::{CliError, CliResult};
use crate::config::Config;
use crate::delivery::dkim;

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Print the DNS TXT record to publish for each configured DKIM key, as
    /// zone-file entries split into strings of at most 255 bytes.
    Dns,
}

pub fn run(command: DkimCommand, config: &Config) -> CliResult {
    match command {
        DkimCommand::Dns => {
            let signers =
                dkim::load_all(&config.dkim()).map_err(|e| CliError::BadInput(e.to_string()))?;
            if signers.is_empty() {
                return Err(CliError::BadInput(
                    "no DKIM key is configured: set NECMAIL_DKIM_SELECTOR and NECMAIL_DKIM_KEY_FILE"
                        .into(),
                ));
            }
            for signer in &signers {
                println!("; {} ({})", signer.dns_name(), signer.algorithm());
                println!("{}", signer.zone_entry());
            }
            if dkim::ed25519_only(&signers) {
                eprintln!(
                    "warning: Gmail, Microsoft and Yahoo do not yet verify Ed25519 alone: \
                     publish an RSA key too (NECMAIL_DKIM_SELECTOR_2, NECMAIL_DKIM_KEY_FILE_2)"
                );
            }
            Ok(())
        }
    }
}
