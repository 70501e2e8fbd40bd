//! `necmail report preview` and `necmail send-test`: one recipient's message,
//! built exactly as a campaign builds it.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{CliError, CliResult};
use crate::config::Config;
use crate::delivery::ListRef;
use crate::delivery::one_off::{OneOffError, OneRecipient, TestSender, compose, recipient};
use crate::lists::ListSlug;
use crate::render::{ListInfo, Site, Templates};
use crate::reports::ReportRef;
use crate::store::Store;
use crate::subscribers::{Attributes, SubscriberEmail};

/// Gmail clips messages whose HTML is larger than this.
const GMAIL_CLIP_BYTES: usize = 102 * 1024;

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The report's id or slug.
    report: ReportRef,
    /// Render it as this subscriber gets it (name, attributes, list).
    #[arg(long = "as", value_parser = parse_email)]
    as_email: Option<SubscriberEmail>,
    /// Where to write preview.html, preview.txt and preview.eml.
    #[arg(long, default_value = "preview")]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct SendTestArgs {
    /// The report's id or slug.
    report: ReportRef,
    /// Who gets the test message. A subscriber gets their own version.
    #[arg(long, value_parser = parse_email)]
    to: SubscriberEmail,
}

fn parse_email(s: &str) -> Result<SubscriberEmail, String> {
    SubscriberEmail::parse(s).map_err(|e| format!("{s:?} is not a usable address: {e}"))
}

impl From<OneOffError> for CliError {
    fn from(e: OneOffError) -> Self {
        match e {
            OneOffError::Invalid(m) => CliError::BadInput(m),
            OneOffError::Store(e) => e.into(),
            OneOffError::NotSent(m) => CliError::Runtime(m),
        }
    }
}

/// The templates, loaded as a campaign loads them.
fn templates(config: &Config) -> Result<Arc<Templates>, CliError> {
    Templates::load(config.templates_dir.as_deref())
        .map(Arc::new)
        .map_err(|e| CliError::BadInput(e.to_string()))
}

pub async fn preview(args: PreviewArgs, store: &dyn Store, config: &Config) -> CliResult {
    let report = store.report(&args.report).await?;
    let who = match &args.as_email {
        Some(email) => recipient(store, store, email, true).await?,
        None => OneRecipient {
            subscriber_id: 0,
            email: SubscriberEmail::parse("preview@example.org").expect("a valid address"),
            name: None,
            attributes: Attributes::new(),
            list: ListRef::one(
                0,
                match store.lists().await?.into_iter().next() {
                    Some(l) => ListInfo {
                        slug: l.slug.to_string(),
                        name: l.name,
                    },
                    None => ListInfo {
                        slug: ListSlug::parse("members")
                            .expect("a valid slug")
                            .to_string(),
                        name: "Members".into(),
                    },
                },
            ),
        },
    };
    let site = Site::from_config(config);
    let (rendered, eml, _) = compose(config, templates(config)?, &site, &report, None, &who)?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", args.out.display())))?;
    for (name, content) in [
        ("preview.html", &rendered.html),
        ("preview.txt", &rendered.text),
        ("preview.eml", &eml),
    ] {
        let path = args.out.join(name);
        std::fs::write(&path, content)
            .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    println!("subject: {}", rendered.subject);
    println!("HTML part: {} bytes", rendered.html.len());
    if rendered.html.len() > GMAIL_CLIP_BYTES {
        eprintln!("warning: the HTML part is over 102 KB, so Gmail will clip it");
    }
    Ok(())
}

pub async fn send_test(args: SendTestArgs, store: &dyn Store, config: &Config) -> CliResult {
    config.check_for_sending()?;
    let report = store.report(&args.report).await?;
    let transport = crate::delivery::transport(config).map_err(|e| match e.is_bad_input() {
        true => CliError::BadInput(e.to_string()),
        false => CliError::Runtime(e.to_string()),
    })?;
    let sender = TestSender {
        config,
        templates: templates(config)?,
        transport: &*transport,
        people: store,
        lists: store,
    };
    let reply = sender.send(&report, None, &args.to).await?;
    println!(
        "sent report {} to {} through {}: {reply}",
        report.slug,
        args.to,
        transport.describe(),
    );
    Ok(())
}
