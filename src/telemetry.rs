//! Logging: `tracing` to stderr, as text or JSON.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the global subscriber. `default_filter` applies when
/// `NECMAIL_LOG` is unset.
pub fn init(config: &Config, default_filter: &str) {
    let filter = config
        .log_filter
        .as_deref()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter))
        // The IMAP client traces every command it writes, LOGIN and its
        // password too (the bounce mailbox): never logged, at any level.
        .add_directive(
            "async_imap::imap_stream=off"
                .parse()
                .expect("a valid directive"),
        );
    // Colours only for a person at a terminal, never into files or journald.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
