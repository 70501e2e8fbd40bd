//! `necmail admin`: the web admin's accounts.

use clap::{Args, Subcommand};
use serde::Serialize;

use super::{CliError, CliResult, output};
use crate::admin::{self, Account, Actor, AdminError, Role, SETUP_LINK_HOURS};
use crate::config::Config;
use crate::delivery::notice::{Notice, send_notice};
use crate::store::Store;
use crate::subscribers::SubscriberEmail;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an account, and print the one-time link (valid 24 hours) that
    /// sets its password; it is also emailed when an SMTP relay is configured.
    Add(AddArgs),
    /// Show every account.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Remove an account (the last owner cannot be removed).
    Rm { email: String },
    /// Take away an account's password and two-factor, sign it out
    /// everywhere, and print a new one-time link.
    Reset { email: String },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    email: String,
    /// owner: everything; editor: reports and campaigns, but no sending,
    /// approving or subscriber data.
    #[arg(long)]
    role: String,
}

impl From<AdminError> for CliError {
    fn from(e: AdminError) -> Self {
        if e.is_bad_input() {
            CliError::BadInput(e.to_string())
        } else {
            CliError::Runtime(e.to_string())
        }
    }
}

pub async fn run(command: AdminCommand, store: &dyn Store, config: &Config) -> CliResult {
    match command {
        AdminCommand::Add(args) => {
            let role: Role = args
                .role
                .parse()
                .map_err(|e| CliError::BadInput(format!("--role: {e}")))?;
            let (account, token) =
                admin::add_account(store, &args.email, role, &Actor::cli()).await?;
            println!("created the {} account {}", account.role, account.email);
            hand_out_link(&account, &token, config).await
        }
        AdminCommand::Ls { json } => {
            let accounts = store.accounts().await?;
            if json {
                let rows: Vec<Row> = accounts.iter().map(Row::from).collect();
                return Ok(output::json(&rows)?);
            }
            let rows: Vec<Vec<String>> = accounts
                .iter()
                .map(|a| {
                    vec![
                        a.email.clone(),
                        a.role.to_string(),
                        if a.has_password { "yes" } else { "not yet" }.into(),
                        if a.totp { "on" } else { "off" }.into(),
                        a.signed_in_at
                            .map_or("never".into(), |at| output::local_time(at, config.timezone)),
                    ]
                })
                .collect();
            Ok(output::table(
                &["EMAIL", "ROLE", "PASSWORD", "TWO-FACTOR", "LAST SIGN-IN"],
                &rows,
            )?)
        }
        AdminCommand::Rm { email } => {
            let account = admin::remove_account(store, &email, &Actor::cli()).await?;
            println!("removed the {} account {}", account.role, account.email);
            Ok(())
        }
        AdminCommand::Reset { email } => {
            let (account, token) = admin::reset_account(store, &email, &Actor::cli()).await?;
            println!(
                "reset {}: its password and two-factor are gone and it is signed out everywhere",
                account.email
            );
            hand_out_link(&account, &token, config).await
        }
    }
}

/// An account as `admin ls --json` prints it.
#[derive(Serialize)]
struct Row<'a> {
    email: &'a str,
    role: Role,
    has_password: bool,
    totp: bool,
    created_at: chrono::DateTime<chrono::Utc>,
    signed_in_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl<'a> From<&'a Account> for Row<'a> {
    fn from(a: &'a Account) -> Self {
        Row {
            email: &a.email,
            role: a.role,
            has_password: a.has_password,
            totp: a.totp,
            created_at: a.created_at,
            signed_in_at: a.signed_in_at,
        }
    }
}

/// Prints the one-time link, and emails it when a relay is configured.
async fn hand_out_link(account: &Account, token: &str, config: &Config) -> CliResult {
    let url = config.admin_link(&format!("/admin/set-password/{token}"));
    println!("set its password within {SETUP_LINK_HOURS} hours at:\n{url}");
    if config.smtp.is_none() {
        return Ok(());
    }
    let transport = crate::delivery::transport(config)?;
    let to = SubscriberEmail::parse(&account.email)
        .map_err(|e| CliError::Runtime(format!("the account's address is not usable: {e}")))?;
    let text = format!(
        "You have a {} account on the {} admin.\n\nChoose your password here, within {SETUP_LINK_HOURS} hours; the link works once:\n{url}\n",
        account.role, config.site_name
    );
    let subject = format!("Your {} admin account", config.site_name);
    match send_notice(
        &*transport,
        config,
        &Notice {
            to: &to,
            to_name: None,
            subject: &subject,
            text: &text,
            html: None,
            reply_to: None,
        },
    )
    .await
    {
        Ok(_) => println!("the link was emailed to {}", account.email),
        Err(e) => eprintln!("warning: the link could not be emailed ({e}); send it yourself"),
    }
    Ok(())
}
