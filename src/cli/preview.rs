//! `necmail report preview` and `necmail send-test`: one recipient's message,
//! built exactly as a campaign builds it.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{CliError, CliResult};
use crate::config::Config;
use crate::delivery::{Addressing, Envelope, ListRef, Outgoing};
use crate::lists::ListSlug;
use crate::render::{ListInfo, Prepared, Rendered, Site, Templates, TestLinks};
use crate::reports::{Report, ReportRef};
use crate::store::{Store, StoreError};
use crate::subscribers::{Attributes, SubscriberEmail, SubscriptionStatus};
use crate::tokens::Purpose;

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

/// Who a one-off message is for.
struct OneRecipient {
    subscriber_id: i64,
    email: SubscriberEmail,
    name: Option<String>,
    attributes: Attributes,
    list: ListRef,
}

/// The subscriber behind `email` (through their first confirmed list), or,
/// when `must_exist` is false and there is none, a stranger on the first list.
async fn recipient(
    store: &dyn Store,
    email: &SubscriberEmail,
    must_exist: bool,
) -> Result<OneRecipient, CliError> {
    let list_ref = |list: crate::lists::List| ListRef {
        id: list.id,
        info: ListInfo {
            slug: list.slug.to_string(),
            name: list.name,
        },
    };
    match store.subscriber(email).await {
        Ok(s) => {
            let membership = s
                .lists
                .iter()
                .find(|m| m.status == SubscriptionStatus::Confirmed)
                .or_else(|| s.lists.first());
            let list = match membership {
                Some(m) => store.list(&m.slug).await?,
                None => any_list(store).await?,
            };
            Ok(OneRecipient {
                subscriber_id: s.id,
                email: s.email,
                name: s.name,
                attributes: s.attributes,
                list: list_ref(list),
            })
        }
        Err(StoreError::NotFound(msg)) if must_exist => Err(CliError::BadInput(msg)),
        Err(StoreError::NotFound(_)) => Ok(OneRecipient {
            subscriber_id: 0,
            email: email.clone(),
            name: None,
            attributes: Attributes::new(),
            list: list_ref(any_list(store).await?),
        }),
        Err(e) => Err(e.into()),
    }
}

async fn any_list(store: &dyn Store) -> Result<crate::lists::List, CliError> {
    store.lists().await?.into_iter().next().ok_or_else(|| {
        CliError::BadInput("there are no lists yet; create one with `necmail list create`".into())
    })
}

/// One recipient's message, built as a campaign builds it for `site`: the
/// decoded parts and the whole MIME message, with the addressing (links,
/// return path). A test message's personal links are its preview page.
fn compose(
    config: &Config,
    site: &Site,
    report: &Report,
    who: &OneRecipient,
) -> Result<(Rendered, String, Addressing), CliError> {
    let prepared = prepare(config, site, report)?;
    let mut addressing =
        Addressing::one_off(config, &config.signer(), who.subscriber_id, &who.list);
    if let Some(test) = &site.test {
        addressing.unsubscribe_url.clone_from(&test.personal_url);
        addressing.preferences_url.clone_from(&test.personal_url);
    }
    let recipient = addressing.recipient(
        who.email.as_str(),
        who.name.as_deref(),
        &who.attributes,
        &who.list,
    );
    let bad = |e: crate::render::RenderError| CliError::BadInput(e.to_string());
    let rendered = prepared.render(&recipient).map_err(bad)?;
    let mut message = String::new();
    prepared
        .write_message(&recipient, &addressing.meta(), &mut message)
        .map_err(bad)?;
    Ok((rendered, message, addressing))
}

/// Loads the templates and renders the report once, as a campaign does.
fn prepare(config: &Config, site: &Site, report: &Report) -> Result<Prepared, CliError> {
    let templates = Templates::load(config.templates_dir.as_deref())
        .map_err(|e| CliError::BadInput(e.to_string()))?;
    Prepared::new(Arc::new(templates), report, site).map_err(|e| CliError::BadInput(e.to_string()))
}

/// The site of a test message of `report`: its links are signed previews,
/// which work whether or not the report was sent and whoever gets it.
fn test_site(config: &Config, report: &Report) -> Site {
    let issued = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default();
    let id = u64::try_from(report.id).unwrap_or_default();
    let token = config.signer().sign(Purpose::Preview, &[id, issued]);
    Site {
        test: Some(TestLinks {
            web_url: config.public_link(&format!("preview/{token}")),
            personal_url: config.public_link(&format!("preview/{token}/link")),
        }),
        ..Site::from_config(config)
    }
}

pub async fn preview(args: PreviewArgs, store: &dyn Store, config: &Config) -> CliResult {
    let report = store.report(&args.report).await?;
    let who = match &args.as_email {
        Some(email) => recipient(store, email, true).await?,
        None => OneRecipient {
            subscriber_id: 0,
            email: SubscriberEmail::parse("preview@example.org").expect("a valid address"),
            name: None,
            attributes: Attributes::new(),
            list: ListRef {
                id: 0,
                info: match store.lists().await?.into_iter().next() {
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
            },
        },
    };
    let (rendered, eml, _) = compose(config, &Site::from_config(config), &report, &who)?;
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
    let who = recipient(store, &args.to, false).await?;
    let (_, message, addressing) = compose(config, &test_site(config, &report), &report, &who)?;
    let transport = crate::delivery::transport(config).map_err(|e| match e.is_bad_input() {
        true => CliError::BadInput(e.to_string()),
        false => CliError::Runtime(e.to_string()),
    })?;
    let id = format!(
        "test-{}-{}",
        report.id,
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f")
    );
    let envelope = Envelope {
        id: &id,
        mail_from: &addressing.return_path,
        rcpt_to: &who.email,
    };
    let accepted = transport
        .send(&envelope, Outgoing::from(message.as_bytes()))
        .await
        .map_err(|e| {
            CliError::Runtime(format!(
                "the test message to {} was not sent: {e}",
                who.email
            ))
        })?;
    println!(
        "sent report {} to {} through {}: {}",
        report.slug,
        who.email,
        transport.describe(),
        accepted.reply
    );
    Ok(())
}
