use clap::{Args, Subcommand};

use super::{CliError, CliResult, output};
use crate::lists::{List, ListSlug, NewList, OptIn, parse_list_name};
use crate::store::Store;

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

pub async fn run(command: ListCommand, store: &dyn Store) -> CliResult {
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
    }
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
