use chrono::Utc;
use clap::{Args, Subcommand};

use super::{CliError, CliResult, output};
use crate::config::Config;
use crate::lists::{List, ListSlug, NewList, OptIn, parse_list_name};
use crate::store::Store;
use crate::subscribers::AskToConfirm;
use crate::web::CONFIRM_LIFETIME_DAYS;

#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// Create a list.
    Create(CreateArgs),
    /// Show every list with its subscriber counts.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Show one list.
    Show {
        slug: ListSlug,
        #[arg(long)]
        json: bool,
    },
    /// Change a list's display name.
    Rename {
        slug: ListSlug,
        #[arg(long)]
        name: String,
    },
    /// Change where a list appears on the subscribe form and the preferences
    /// page: lowest position first (0 by default), then by slug.
    Set {
        slug: ListSlug,
        #[arg(long, allow_negative_numbers = true)]
        position: i32,
    },
    /// Delete a list. Refused while it has subscribers, unless --force.
    Rm {
        slug: ListSlug,
        /// Delete it even with subscribers (their other lists are kept).
        #[arg(long)]
        force: bool,
    },
    /// Email each unconfirmed member (imported without --confirmed, or who
    /// never clicked) a confirmation link, unless theirs still works. They
    /// are queued: `necmail serve` sends them within
    /// NECMAIL_CONFIRMATIONS_PER_HOUR, and no address gets more than
    /// NECMAIL_CONFIRMATIONS_PER_ADDRESS_PER_DAY.
    ConfirmPending { slug: ListSlug },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Short name: lower-case letters, digits and hyphens, e.g. `councillors`.
    slug: ListSlug,
    /// Display name, e.g. "Labour councillors".
    #[arg(long)]
    name: String,
    #[arg(long, default_value = "")]
    description: String,
    /// Confirm new subscriptions at once instead of by email.
    #[arg(long)]
    single_opt_in: bool,
    /// Keep the list off the public subscribe form.
    #[arg(long)]
    private: bool,
}

pub async fn run(command: ListCommand, store: &dyn Store, config: &Config) -> CliResult {
    match command {
        ListCommand::Create(args) => {
            let name =
                parse_list_name(&args.name).map_err(|e| CliError::BadInput(e.to_string()))?;
            let list = store
                .create_list(&NewList {
                    slug: args.slug,
                    name,
                    description: args.description.trim().to_owned(),
                    opt_in: if args.single_opt_in {
                        OptIn::Single
                    } else {
                        OptIn::Double
                    },
                    public: !args.private,
                })
                .await?;
            println!(
                "created list {} ({} opt-in)",
                list.slug,
                list.opt_in.as_str()
            );
            Ok(())
        }
        ListCommand::Ls { json } => {
            let lists = store.lists().await?;
            if json {
                Ok(output::json(&lists)?)
            } else {
                Ok(table(&lists)?)
            }
        }
        ListCommand::Show { slug, json } => {
            let list = store.list(&slug).await?;
            if json {
                return Ok(output::json(&[list])?);
            }
            let c = list.subscribers;
            println!("slug:         {}", list.slug);
            println!("name:         {}", list.name);
            println!("description:  {}", list.description);
            println!("opt-in:       {}", list.opt_in.as_str());
            println!("public:       {}", if list.public { "yes" } else { "no" });
            println!("position:     {}", list.position);
            println!(
                "created:      {}",
                list.created_at.format("%Y-%m-%d %H:%M UTC")
            );
            println!(
                "subscribers:  {} confirmed, {} unconfirmed, {} unsubscribed, {} blocklisted",
                c.confirmed, c.unconfirmed, c.unsubscribed, c.blocklisted
            );
            Ok(())
        }
        ListCommand::Rename { slug, name } => {
            let name = parse_list_name(&name).map_err(|e| CliError::BadInput(e.to_string()))?;
            let list = store.rename_list(&slug, &name).await?;
            println!("renamed list {} to {:?}", list.slug, list.name);
            Ok(())
        }
        ListCommand::Set { slug, position } => {
            let list = store.set_list_position(&slug, position).await?;
            println!("list {} is at position {}", list.slug, list.position);
            Ok(())
        }
        ListCommand::Rm { slug, force } => {
            store.delete_list(&slug, force).await?;
            println!("deleted list {slug}");
            Ok(())
        }
        ListCommand::ConfirmPending { slug } => confirm_pending(store, &slug, config).await,
    }
}

/// Queues a confirmation email to each unconfirmed member of list `slug`
/// whose link no longer works or who never had one, and says what it did.
pub(super) async fn confirm_pending(
    store: &dyn Store,
    slug: &ListSlug,
    config: &Config,
) -> CliResult {
    let now = Utc::now();
    let asked = store
        .ask_to_confirm(&AskToConfirm {
            list: slug.clone(),
            issued_at: now.timestamp(),
            live_since: now.timestamp() - CONFIRM_LIFETIME_DAYS * 24 * 60 * 60,
            since: now - chrono::Duration::hours(24),
            per_address: config.confirmations_per_address_per_day,
        })
        .await?;
    println!(
        "queued {} confirmation emails to the unconfirmed members of {slug}: `necmail serve` \
         sends them, {} an hour at most (NECMAIL_CONFIRMATIONS_PER_HOUR); each member gets \
         mail from {slug} once they confirm",
        asked.queued, config.confirmations_per_hour
    );
    if asked.awaiting > 0 {
        println!(
            "left alone {} whose confirmation link still works (sent in the last {} days)",
            asked.awaiting, CONFIRM_LIFETIME_DAYS
        );
    }
    if asked.over_limit > 0 {
        println!(
            "passed over {} whose address already had {} confirmation emails in the last day \
             (NECMAIL_CONFIRMATIONS_PER_ADDRESS_PER_DAY); run this again tomorrow",
            asked.over_limit, config.confirmations_per_address_per_day
        );
    }
    Ok(())
}

fn table(lists: &[List]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = lists
        .iter()
        .map(|l| {
            vec![
                l.slug.to_string(),
                l.name.clone(),
                l.opt_in.as_str().to_owned(),
                if l.public { "public" } else { "private" }.to_owned(),
                l.subscribers.confirmed.to_string(),
                l.subscribers.unconfirmed.to_string(),
                l.subscribers.unsubscribed.to_string(),
                l.subscribers.blocklisted.to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "SLUG",
            "NAME",
            "OPT-IN",
            "VISIBILITY",
            "CONFIRMED",
            "UNCONFIRMED",
            "UNSUBSCRIBED",
            "BLOCKLISTED",
        ],
        &rows,
    )
}
