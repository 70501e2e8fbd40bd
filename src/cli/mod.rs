//! The admin command line: `necmail …`.
//!
//! Exit codes: 0 success, 1 a runtime failure (the database is unreachable,
//! a file cannot be written), 2 bad usage or bad input. Errors are one
//! sentence on stderr.

mod admin;
mod backup;
mod campaigns;
mod config_cmd;
mod dkim_cmd;
mod editor;
mod inbound;
mod lists;
mod meetings;
mod output;
mod preview;
mod progress;
mod reports;
mod serve;
mod sources;
mod subscribers;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::store::{Store, StoreError};

#[derive(Debug, Parser)]
#[command(
    name = "necmail",
    version,
    about = "A self-hosted newsletter for the reports of a committee's meetings",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: the web pages, the scheduler and the delivery workers.
    Serve,
    /// Show or check the configuration.
    Config {
        #[command(subcommand)]
        command: config_cmd::ConfigCommand,
    },
    /// The DKIM keys: the DNS records to publish for them.
    Dkim {
        #[command(subcommand)]
        command: dkim_cmd::DkimCommand,
    },
    /// Apply the database migrations (every command also does this at start).
    Migrate,
    /// Create and manage mailing lists.
    List {
        #[command(subcommand)]
        command: lists::ListCommand,
    },
    /// Add, find, change, import, export and remove subscribers.
    Subscriber {
        #[command(subcommand)]
        command: subscribers::SubscriberCommand,
    },
    /// Import, list, show, preview, correct and remove reports.
    Report {
        #[command(subcommand)]
        command: reports::ReportCommand,
    },
    /// Manage the RSS and Atom feeds polled for new reports, and poll them.
    Source {
        #[command(subcommand)]
        command: sources::SourceCommand,
    },
    /// Send a report to lists: create, start, watch, pause, resume, cancel, retry.
    Campaign {
        #[command(subcommand)]
        command: campaigns::CampaignCommand,
    },
    /// Record the committee's meetings, so that a late report is noticed.
    Meeting {
        #[command(subcommand)]
        command: meetings::MeetingCommand,
    },
    /// Send one report to one address, exactly as a campaign would, through
    /// the configured transport.
    SendTest(preview::SendTestArgs),
    /// The web admin's accounts: add, list, remove, reset.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Copy the SQLite database to a new file, consistently, while necmail
    /// runs. (PostgreSQL: use pg_dump.)
    Backup(backup::BackupArgs),
    /// Take one inbound message on stdin (a Postfix pipe, .forward or
    /// procmail). Exit codes follow sysexits: 0 accepted, 67 unknown
    /// address, 65 unparsable, 75 temporary failure.
    Receive(inbound::ReceiveArgs),
    /// The bounces inbound mail recorded.
    Bounces {
        #[command(subcommand)]
        command: inbound::BouncesCommand,
    },
    /// What happened to addresses: joins, leaves, bounces, complaints, suppressions.
    Events {
        #[command(subcommand)]
        command: inbound::EventsCommand,
    },
    /// The suppressed addresses: list, add, lift.
    Suppression {
        #[command(subcommand)]
        command: inbound::SuppressionCommand,
    },
}

/// A failure, sorted by whose it is.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The user asked for something that cannot be done: exit code 2.
    #[error("{0}")]
    BadInput(String),
    /// Something failed at run time: exit code 1.
    #[error("{0}")]
    Runtime(String),
    /// Whoever read our output stopped reading (`necmail … | head`): not an error.
    #[error("the output was closed")]
    OutputClosed,
    /// `necmail receive` did not take the message: a sysexits code.
    #[error(transparent)]
    Inbound(#[from] crate::inbound::InboundError),
}

impl CliError {
    fn exit_code(&self) -> ExitCode {
        match self {
            CliError::BadInput(_) => ExitCode::from(2),
            CliError::Runtime(_) => ExitCode::from(1),
            CliError::OutputClosed => ExitCode::SUCCESS,
            CliError::Inbound(e) => ExitCode::from(e.sysexit()),
        }
    }
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        CliError::BadInput(e.to_string())
    }
}

impl From<crate::inbound::mailbox::MailboxError> for CliError {
    fn from(e: crate::inbound::mailbox::MailboxError) -> Self {
        if e.is_bad_input() {
            CliError::BadInput(e.to_string())
        } else {
            CliError::Runtime(e.to_string())
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        if e.is_bad_input() {
            CliError::BadInput(e.to_string())
        } else {
            CliError::Runtime(e.to_string())
        }
    }
}

impl From<crate::delivery::SetupError> for CliError {
    fn from(e: crate::delivery::SetupError) -> Self {
        if e.is_bad_input() {
            CliError::BadInput(e.to_string())
        } else {
            CliError::Runtime(e.to_string())
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::OutputClosed
        } else {
            CliError::Runtime(format!("writing the output failed: {e}"))
        }
    }
}

pub type CliResult = Result<(), CliError>;

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    // A bug shows no one a panic message or a backtrace: it is one line on
    // stderr (the daemon's log), and what it stopped fails as it would.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("unknown");
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error{place}: {what}");
    }));
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    if let Err(e) = &dotenv
        && !e.not_found()
    {
        eprintln!("error: cannot read {}", dotenv_problem(e));
        return ExitCode::from(2);
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            for p in &e.0 {
                eprintln!("error: {}: {}", p.variable, p.reason);
            }
            eprintln!("error: the configuration is invalid; see .env.example for every variable");
            return ExitCode::from(2);
        }
    };
    // The daemon reports what it does; commands speak only when asked, and
    // never show SQL (sqlx warns of a slow statement, quoting it, on a busy
    // machine).
    let default_filter = if matches!(cli.command, Command::Serve) {
        "info"
    } else {
        "warn,sqlx::query=error"
    };
    crate::telemetry::init(&config, default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads())
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::OutputClosed) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// What is wrong with the `.env` file, naming its line and variable but
/// never quoting the value, which may be a secret. (dotenvy's own message
/// quotes it.)
fn dotenv_problem(e: &dotenvy::Error) -> String {
    let dotenvy::Error::LineParse(value, index) = e else {
        return format!(".env: {e}");
    };
    let path = std::env::current_dir().ok().and_then(|dir| {
        dir.ancestors()
            .map(|d| d.join(".env"))
            .find(|p| p.is_file())
    });
    let text = path.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
    let found = text.as_deref().and_then(|text| {
        text.lines()
            .enumerate()
            .find(|(_, line)| line.contains(value.as_str()))
            .map(|(n, line)| (n + 1, line.split_once('=').map_or("", |(k, _)| k.trim())))
    });
    let file = path.map_or_else(|| ".env".to_owned(), |p| p.display().to_string());
    match found {
        Some((number, name)) => format!(
            "{file}: line {number} ({name}) cannot be parsed at character {}; a value with spaces, \
             quotes, < or > must be written between double quotes",
            index + 1
        ),
        None => format!("{file}: a line cannot be parsed; a value with spaces must be quoted"),
    }
}

async fn run(cli: Cli, config: Config) -> CliResult {
    // Only the commands that set necmail up may create its database: any
    // other, run from the wrong folder, would work on a new, empty one.
    let may_create = matches!(
        cli.command,
        Command::Serve
            | Command::Migrate
            | Command::List {
                command: lists::ListCommand::Create(_)
            }
    );
    match cli.command {
        Command::Serve => serve::run(config).await,
        Command::Config { command } => config_cmd::run(command, &config),
        Command::Dkim { command } => dkim_cmd::run(command, &config),
        Command::Migrate => {
            let store = open_store(&config, may_create).await?;
            println!("the {} database is up to date", store.backend().name());
            store.close().await;
            Ok(())
        }
        Command::List { command } => {
            let store = open_store(&config, may_create).await?;
            let result = lists::run(command, store.as_ref(), &config).await;
            store.close().await;
            result
        }
        Command::Subscriber { command } => {
            let store = open_store(&config, may_create).await?;
            let result = subscribers::run(command, store.as_ref(), &config).await;
            store.close().await;
            result
        }
        Command::Report { command } => {
            let store = open_store(&config, may_create).await?;
            let result = reports::run(command, store.as_ref(), &config).await;
            store.close().await;
            result
        }
        Command::Source { command } => {
            let store = open_store(&config, may_create).await?;
            let result = sources::run(command, store.as_ref(), &config).await;
            store.close().await;
            result
        }
        Command::Campaign { command } => {
            let store = open_store(&config, may_create).await?;
            let result = campaigns::run(command, Arc::clone(&store), &config).await;
            store.close().await;
            result
        }
        Command::Meeting { command } => {
            let store = open_store(&config, may_create).await?;
            let result = meetings::run(command, store.as_ref(), &config).await;
            store.close().await;
            result
        }
        Command::SendTest(args) => {
            let store = open_store(&config, may_create).await?;
            let result = preview::send_test(args, store.as_ref(), &config).await;
            store.close().await;
            result
        }
        Command::Admin { command } => {
            let store = open_store(&config, may_create).await?;
            let result = admin::run(command, store.as_ref(), &config).await;
            store.close().await;
            result
        }
        Command::Backup(args) => {
            let store = open_store(&config, may_create).await?;
            let result = backup::run(args, store.as_ref()).await;
            store.close().await;
            result
        }
        Command::Receive(args) => {
            // Postfix tries again later after 75: so it does when the
            // database cannot be opened.
            let store = open_store(&config, may_create).await.map_err(|e| {
                crate::inbound::InboundError::Unavailable(StoreError::Unavailable(e.to_string()))
            })?;
            let result = inbound::receive(args, Arc::clone(&store), &config).await;
            store.close().await;
            result
        }
        Command::Bounces { command } => {
            let store = open_store(&config, may_create).await?;
            let result = inbound::bounces(command, Arc::clone(&store), &config).await;
            store.close().await;
            result
        }
        Command::Events { command } => {
            let store = open_store(&config, may_create).await?;
            let result = inbound::events(command, store.as_ref(), &config).await;
            store.close().await;
            result
        }
        Command::Suppression { command } => {
            let store = open_store(&config, may_create).await?;
            let result = inbound::suppression(command, store.as_ref(), &config).await;
            store.close().await;
            result
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return interrupt.await.unwrap_or(()),
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or(());
}

async fn open_store(config: &Config, may_create: bool) -> Result<Arc<dyn Store>, CliError> {
    if !may_create
        && let Some(file) = config.database_url.sqlite_file()
        && !file.exists()
    {
        return Err(CliError::BadInput(format!(
            "there is no necmail database at {}: run necmail in the folder that holds it, \
             or set DATABASE_URL to it (`necmail migrate` creates a new one)",
            file.display()
        )));
    }
    crate::store::connect(config.database_url.expose(), &config.pool_options())
        .await
        .map_err(|e| match e {
            StoreError::Unavailable(msg) => CliError::Runtime(msg),
            other => other.into(),
        })
}
