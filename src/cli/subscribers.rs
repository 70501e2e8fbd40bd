use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::output::{self, JsonArray};
use super::progress::Progress;
use super::{CliError, CliResult};
use crate::config::Config;
use crate::feedback::{EventSource, Office};
use crate::lists::{ListSlug, OptIn};
use crate::store::{Store, StoreError};
use crate::subscribers::import::{CsvImportError, ImportOptions, Reject, RejectsFile, import_csv};
use crate::subscribers::spreadsheet;
use crate::subscribers::{
    AdminChannel, AttributePair, Consent, ConsentMethod, NewSubscriber, StatusFilter, Subscriber,
    SubscriberEmail, SubscriberFilter, SubscriberName, SubscriberUpdate, SuppressionReason,
    normalise_key,
};

/// Subscribers fetched per page by `ls` and `export`.
const PAGE: i64 = 1000;

#[derive(Debug, Subcommand)]
pub enum SubscriberCommand {
    /// Add someone to one or more lists.
    Add(AddArgs),
    /// List subscribers, optionally filtered.
    Ls(LsArgs),
    /// Show everything stored about one person, consent records included.
    Show {
        #[arg(value_parser = parse_email)]
        email: SubscriberEmail,
        #[arg(long)]
        json: bool,
    },
    /// Change a subscriber's name or attributes.
    Update(UpdateArgs),
    /// Unsubscribe from one list, or from every list (which also suppresses
    /// the address, so no import adds it back).
    Unsubscribe {
        #[arg(value_parser = parse_email)]
        email: SubscriberEmail,
        #[arg(long)]
        list: Option<ListSlug>,
    },
    /// Stop all mail to a subscriber, whatever their subscriptions say.
    Block {
        #[arg(value_parser = parse_email)]
        email: SubscriberEmail,
    },
    /// Lift a block.
    Unblock {
        #[arg(value_parser = parse_email)]
        email: SubscriberEmail,
    },
    /// Delete a subscriber.
    Rm {
        #[arg(value_parser = parse_email)]
        email: SubscriberEmail,
        /// Delete every personal field and keep only a hash of the address,
        /// so that a later import or sign-up of it is refused.
        #[arg(long)]
        erase: bool,
    },
    /// Import subscribers from a CSV file (or - for stdin) with an email column.
    Import(ImportArgs),
    /// Write subscribers as CSV to stdout, in the layout `import` reads.
    Export(FilterArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[arg(value_parser = parse_email)]
    email: SubscriberEmail,
    #[arg(long, value_parser = parse_name)]
    name: Option<NameArg>,
    /// A list to subscribe to; repeat for several.
    #[arg(long = "list", required = true)]
    lists: Vec<ListSlug>,
    /// An attribute, e.g. role=councillor; repeat for several.
    #[arg(long = "attr")]
    attributes: Vec<AttributePair>,
    /// Confirm at once, even on double-opt-in lists: you assert their consent.
    #[arg(long)]
    confirmed: bool,
    /// Add again someone who unsubscribed from everything, when they have
    /// asked you to: lifts that suppression and records their request as
    /// consent. Needs --confirmed. A hard bounce, a complaint or an erasure
    /// is never lifted.
    #[arg(long, requires = "confirmed")]
    resubscribe: bool,
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    #[arg(long)]
    list: Option<ListSlug>,
    /// confirmed, unconfirmed, unsubscribed or blocklisted.
    #[arg(long)]
    status: Option<StatusFilter>,
    /// Only subscribers with this attribute value; repeat to narrow.
    #[arg(long = "attr")]
    attributes: Vec<AttributePair>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Only addresses or names containing this text (any case).
    #[arg(long)]
    search: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[arg(value_parser = parse_email)]
    email: SubscriberEmail,
    /// The new name; "" clears it.
    #[arg(long, value_parser = parse_name)]
    name: Option<NameArg>,
    #[arg(long = "attr")]
    attributes: Vec<AttributePair>,
    /// An attribute key to remove; repeat for several.
    #[arg(long = "unset-attr")]
    unset: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file, or - to read stdin.
    file: PathBuf,
    #[arg(long = "list", required = true)]
    lists: Vec<ListSlug>,
    /// Confirm every subscription: you assert that each person consented.
    #[arg(long)]
    confirmed: bool,
    /// Then email each unconfirmed member of the lists a confirmation link,
    /// as `necmail list confirm-pending` does.
    #[arg(long, conflicts_with = "confirmed")]
    send_confirmation: bool,
    /// Write rejected rows here (line, email, reason) instead of summarising them.
    #[arg(long)]
    rejects: Option<PathBuf>,
}

/// A parsed `--name`; `None` inside means "no name".
#[derive(Debug, Clone)]
pub struct NameArg(Option<SubscriberName>);

pub(super) fn parse_email(s: &str) -> Result<SubscriberEmail, String> {
    SubscriberEmail::parse(s).map_err(|e| format!("{s:?} is not a usable address: {e}"))
}

fn parse_name(s: &str) -> Result<NameArg, String> {
    SubscriberName::parse(s)
        .map(NameArg)
        .map_err(|e| e.to_string())
}

pub async fn run(command: SubscriberCommand, store: &dyn Store, config: &Config) -> CliResult {
    match command {
        SubscriberCommand::Add(args) => add(store, args).await,
        SubscriberCommand::Ls(args) => {
            let filter = SubscriberFilter {
                list: args.filter.list,
                status: args.filter.status,
                attributes: args.filter.attributes,
                search: args.search.filter(|s| !s.trim().is_empty()),
            };
            list_subscribers(store, &filter, args.json).await
        }
        SubscriberCommand::Show { email, json } => {
            let subscriber = match store.subscriber(&email).await {
                Err(e @ StoreError::NotFound(_)) => {
                    return Err(match store.suppression(&email).await? {
                        Some(s) => CliError::BadInput(format!("{e}; {}", s.refusal(&email))),
                        None => e.into(),
                    });
                }
                found => found?,
            };
            if json {
                Ok(output::json(&[subscriber])?)
            } else {
                Ok(show(&subscriber)?)
            }
        }
        SubscriberCommand::Update(args) => {
            let unset = args
                .unset
                .iter()
                .map(|k| normalise_key(k).map_err(|e| CliError::BadInput(e.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            if args.name.is_none() && args.attributes.is_empty() && unset.is_empty() {
                return Err(CliError::BadInput(
                    "nothing to update: give --name, --attr or --unset-attr".into(),
                ));
            }
            let update = SubscriberUpdate {
                name: args.name.map(|n| n.0),
                set: args.attributes.into_iter().collect(),
                unset,
            };
            let subscriber = store.update_subscriber(&args.email, &update).await?;
            println!("updated {}", subscriber.email);
            Ok(())
        }
        SubscriberCommand::Unsubscribe { email, list } => {
            let subscriber = office(store).unsubscribe(&email, list.as_ref()).await?;
            match list {
                Some(slug) => println!("unsubscribed {} from {slug}", subscriber.email),
                None => println!(
                    "unsubscribed {} from every list and suppressed the address",
                    subscriber.email
                ),
            }
            Ok(())
        }
        SubscriberCommand::Block { email } => {
            let subscriber = store.set_blocklisted(&email, true).await?;
            println!("blocked {}: they will get no mail", subscriber.email);
            Ok(())
        }
        SubscriberCommand::Unblock { email } => {
            let subscriber = store.set_blocklisted(&email, false).await?;
            println!("unblocked {}", subscriber.email);
            Ok(())
        }
        SubscriberCommand::Rm { email, erase } => {
            let deleted = store.remove_subscriber(&email, erase).await?;
            match (deleted, erase) {
                (true, true) => println!(
                    "erased {email}; only a hash of the address is kept, to refuse it later"
                ),
                (false, true) => println!(
                    "{email} was not stored; its hash is kept so it is refused from now on"
                ),
                _ => println!("removed {email}"),
            }
            Ok(())
        }
        SubscriberCommand::Import(args) => import(store, args, config).await,
        SubscriberCommand::Export(args) => {
            let filter = SubscriberFilter {
                list: args.list,
                status: args.status,
                attributes: args.attributes,
                search: None,
            };
            export(store, &filter).await
        }
    }
}

/// The command line's hand in a person's record: its events say `cli`.
fn office(store: &dyn Store) -> Office<'_> {
    Office {
        subscribers: store,
        lists: store,
        feedback: store,
        source: EventSource::Cli,
    }
}

async fn add(store: &dyn Store, args: AddArgs) -> CliResult {
    let consent = if args.resubscribe {
        Consent::resubscribed_by_admin(AdminChannel::Cli)
    } else {
        Consent::by_admin(AdminChannel::Cli, ConsentMethod::Admin)
    };
    let new = NewSubscriber {
        email: args.email.clone(),
        name: args.name.and_then(|n| n.0),
        attributes: args.attributes.into_iter().collect(),
        lists: args.lists,
        confirmed: args.confirmed,
        resubscribe: args.resubscribe,
        consent,
    };
    let added = store.add_subscriber(&new).await;
    let subscriber = match added {
        Err(refused @ StoreError::Refused(_)) => {
            let way_back = match store.suppression(&args.email).await? {
                Some(s) if s.reason == SuppressionReason::Unsubscribed => {
                    "; if they have asked you to add them again, add --confirmed --resubscribe, \
                     which records their request"
                }
                Some(_) if args.resubscribe => {
                    "; --resubscribe lifts only an unsubscribe from everything, never a hard \
                     bounce, a complaint or an erasure"
                }
                _ => "",
            };
            return Err(CliError::BadInput(format!("{refused}{way_back}")));
        }
        added => added?,
    };
    if args.resubscribe {
        office(store).resubscribed(&subscriber, &new.lists).await?;
    }
    println!("added {} to {}", subscriber.email, memberships(&subscriber));
    Ok(())
}

fn memberships(s: &Subscriber) -> String {
    let parts: Vec<String> = s
        .lists
        .iter()
        .map(|m| format!("{} ({})", m.slug, m.status))
        .collect();
    if parts.is_empty() {
        "no lists".into()
    } else {
        parts.join(", ")
    }
}

fn attributes_text(s: &Subscriber) -> String {
    s.attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn list_subscribers(store: &dyn Store, filter: &SubscriberFilter, json: bool) -> CliResult {
    let mut after = 0;
    if json {
        let mut array = JsonArray::new(output::stdout())?;
        loop {
            let page = store.subscribers(filter, after, PAGE).await?;
            for s in &page {
                array.push(s)?;
            }
            match page.last() {
                Some(last) => after = last.id,
                None => break,
            }
        }
        return Ok(array.finish()?);
    }
    let mut rows = Vec::new();
    loop {
        let page = store.subscribers(filter, after, PAGE).await?;
        rows.extend(page.iter().map(|s| {
            vec![
                s.email.to_string(),
                s.name.clone().unwrap_or_default(),
                s.status.to_string(),
                s.lists
                    .iter()
                    .map(|m| format!("{}:{}", m.slug, m.status))
                    .collect::<Vec<_>>()
                    .join(","),
                attributes_text(s),
            ]
        }));
        match page.last() {
            Some(last) => after = last.id,
            None => break,
        }
    }
    Ok(output::table(
        &["EMAIL", "NAME", "STATUS", "LISTS", "ATTRIBUTES"],
        &rows,
    )?)
}

fn show(s: &Subscriber) -> io::Result<()> {
    let mut out = output::stdout();
    writeln!(out, "email:       {}", s.email)?;
    writeln!(
        out,
        "name:        {}",
        s.name.as_deref().unwrap_or("(none)")
    )?;
    writeln!(out, "status:      {}", s.status)?;
    match &s.suppression {
        Some(p) => writeln!(out, "suppressed:  {} since {}", p.reason, p.at.to_rfc3339())?,
        None => writeln!(out, "suppressed:  no")?,
    }
    writeln!(out, "attributes:  {}", attributes_text(s))?;
    writeln!(out, "created:     {}", s.created_at.to_rfc3339())?;
    writeln!(out, "updated:     {}", s.updated_at.to_rfc3339())?;
    for m in &s.lists {
        writeln!(out, "list {}: {}", m.slug, m.status)?;
        let ip = m
            .consent
            .ip
            .as_deref()
            .map(|ip| format!(" from {ip}"))
            .unwrap_or_default();
        writeln!(
            out,
            "  consent:   {} by {}{ip}, wording {}",
            m.consent.at.to_rfc3339(),
            m.consent.method,
            m.consent.wording
        )?;
        if let Some(at) = m.confirmed_at {
            writeln!(out, "  confirmed: {}", at.to_rfc3339())?;
        }
        if let Some(at) = m.unsubscribed_at {
            writeln!(out, "  left:      {}", at.to_rfc3339())?;
        }
    }
    out.flush()
}

async fn import(store: &dyn Store, args: ImportArgs, config: &Config) -> CliResult {
    let mut lists = Vec::with_capacity(args.lists.len());
    for slug in &args.lists {
        lists.push(store.list(slug).await?);
    }
    let (input, size): (Box<dyn Read + Send>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let file = File::open(&args.file)
            .map_err(|e| CliError::BadInput(format!("cannot open {}: {e}", args.file.display())))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let mut rejects_file = match &args.rejects {
        Some(path) => Some(
            File::create(path)
                .map_err(csv::Error::from)
                .and_then(RejectsFile::new)
                .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", path.display())))?,
        ),
        None => None,
    };
    const SHOWN_REJECTS: u64 = 20;
    let mut shown = 0;
    let progress = Progress::new("import", size, "bytes");
    let options = ImportOptions {
        lists,
        confirmed: args.confirmed,
        channel: AdminChannel::Cli,
        job: None,
    };
    let mut write_error = None;
    let result = import_csv(
        store,
        input,
        &options,
        |reject: &Reject| match &mut rejects_file {
            Some(w) => {
                if let Err(e) = w.write(reject) {
                    write_error.get_or_insert(e);
                }
            }
            None => {
                if shown < SHOWN_REJECTS {
                    progress.println(match reject.email.as_str() {
                        "" => format!("line {}: {}", reject.line, reject.reason),
                        email => format!("line {}: {} ({email})", reject.line, reject.reason),
                    });
                }
                shown += 1;
            }
        },
        |counts, bytes| progress.update(if size.is_some() { bytes } else { counts.rows() }, counts),
    )
    .await;
    progress.finish();
    let counts = result.map_err(|e| match e {
        CsvImportError::BadFile(msg) => CliError::BadInput(msg),
        CsvImportError::Store(e) => e.into(),
        CsvImportError::Io(e) => {
            CliError::Runtime(format!("reading {} failed: {e}", args.file.display()))
        }
    })?;
    if let Some(w) = &mut rejects_file {
        w.flush()?;
    }
    if let Some(e) = write_error {
        return Err(CliError::Runtime(format!(
            "writing the rejects file failed: {e}"
        )));
    }
    if shown > SHOWN_REJECTS {
        eprintln!(
            "… and {} more rejected rows; use --rejects FILE to keep them all",
            shown - SHOWN_REJECTS
        );
    }
    println!("{counts}");
    let double: Vec<&ListSlug> = options
        .lists
        .iter()
        .filter(|l| l.opt_in == OptIn::Double)
        .map(|l| &l.slug)
        .collect();
    if args.send_confirmation {
        for slug in double {
            super::lists::confirm_pending(store, slug, config).await?;
        }
    } else if counts.unconfirmed > 0 {
        let commands: Vec<String> = double
            .iter()
            .map(|slug| format!("`necmail list confirm-pending {slug}`"))
            .collect();
        println!(
            "{} of them are unconfirmed: they get nothing until they confirm; email them a \
             confirmation link with {} (or import with --send-confirmation)",
            counts.unconfirmed,
            commands.join(" and ")
        );
    }
    Ok(())
}

async fn export(store: &dyn Store, filter: &SubscriberFilter) -> CliResult {
    let keys = store.attribute_keys().await?;
    let mut out = csv::Writer::from_writer(output::stdout());
    out.write_record(spreadsheet::export_header(&keys))
        .map_err(output::csv_error)?;
    let mut after = 0;
    loop {
        let page = store.subscribers(filter, after, PAGE).await?;
        for s in &page {
            let record: Vec<_> = spreadsheet::export_row(s, &keys).collect();
            out.write_record(record.iter().map(|cell| cell.as_bytes()))
                .map_err(output::csv_error)?;
        }
        match page.last() {
            Some(last) => after = last.id,
            None => break,
        }
    }
    out.flush()?;
    Ok(())
}
