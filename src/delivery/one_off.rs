//! One recipient's message, built exactly as a campaign builds it: for
//! `necmail report preview`, `necmail send-test` and the web admin's test
//! message.

use std::sync::Arc;

use super::{Addressing, Envelope, ListRef, Outgoing, Transport};
use crate::config::Config;
use crate::error::StoreError;
use crate::lists::{List, ListStore};
use crate::render::{ListInfo, Prepared, Rendered, Site, Templates, TestLinks};
use crate::reports::Report;
use crate::subscribers::{
    Attributes, Membership, SubscriberEmail, SubscriberStore, SubscriptionStatus,
};
use crate::tokens::Purpose;

/// Why a one-off message could not be made or sent.
#[derive(Debug, thiserror::Error)]
pub enum OneOffError {
    /// The request cannot be met as it is: the sentence says why.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transport did not take the message.
    #[error("{0}")]
    NotSent(String),
}

/// Who a one-off message is for.
#[derive(Debug, Clone)]
pub struct OneRecipient {
    pub subscriber_id: i64,
    pub email: SubscriberEmail,
    pub name: Option<String>,
    pub attributes: Attributes,
    pub list: ListRef,
}

fn list_info(list: List) -> (i64, ListInfo) {
    let info = ListInfo {
        slug: list.slug.to_string(),
        name: list.name,
    };
    (list.id, info)
}

fn list_ref(list: List) -> ListRef {
    let (id, info) = list_info(list);
    ListRef::one(id, info)
}

/// The subscriber behind `email` (through every list they are confirmed
/// on, as a campaign to all of them would send it, else their first), or,
/// when `must_exist` is false and there is none, a stranger on the first list.
pub async fn recipient(
    people: &dyn SubscriberStore,
    lists: &dyn ListStore,
    email: &SubscriberEmail,
    must_exist: bool,
) -> Result<OneRecipient, OneOffError> {
    match people.subscriber(email).await {
        Ok(s) => {
            let confirmed = |m: &&Membership| m.status == SubscriptionStatus::Confirmed;
            let memberships: Vec<&Membership> = match s.lists.iter().any(|m| confirmed(&m)) {
                true => s.lists.iter().filter(confirmed).collect(),
                false => s.lists.first().into_iter().collect(),
            };
            let mut through = Vec::with_capacity(memberships.len());
            for m in memberships {
                through.push(list_info(lists.list(&m.slug).await?));
            }
            let list = if through.is_empty() {
                list_ref(any_list(lists).await?)
            } else {
                let (id, info) = through.remove(0);
                let (also_ids, also) = through.into_iter().unzip();
                ListRef {
                    id,
                    info,
                    also_ids,
                    also,
                }
            };
            Ok(OneRecipient {
                subscriber_id: s.id,
                email: s.email,
                name: s.name,
                attributes: s.attributes,
                list,
            })
        }
        Err(StoreError::NotFound(msg)) if must_exist => Err(OneOffError::Invalid(msg)),
        Err(StoreError::NotFound(_)) => Ok(OneRecipient {
            subscriber_id: 0,
            email: email.clone(),
            name: None,
            attributes: Attributes::new(),
            list: list_ref(any_list(lists).await?),
        }),
        Err(e) => Err(e.into()),
    }
}

async fn any_list(lists: &dyn ListStore) -> Result<List, OneOffError> {
    lists.lists().await?.into_iter().next().ok_or_else(|| {
        OneOffError::Invalid("there are no lists yet; create one with `necmail list create`".into())
    })
}

/// One recipient's message, built as a campaign builds it for `site`, with
/// `subject` instead of the template's when given: the decoded parts and
/// the whole MIME message, with the addressing (links, return path). A
/// test message's personal links are its preview page.
pub fn compose(
    config: &Config,
    templates: Arc<Templates>,
    site: &Site,
    report: &Report,
    subject: Option<String>,
    who: &OneRecipient,
) -> Result<(Rendered, String, Addressing), OneOffError> {
    let bad = |e: crate::render::RenderError| OneOffError::Invalid(e.to_string());
    let mut prepared = Prepared::new(templates, report, site).map_err(bad)?;
    prepared.set_subject(subject);
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
    let rendered = prepared.render(&recipient).map_err(bad)?;
    let mut message = String::new();
    prepared
        .write_message(&recipient, &addressing.meta(), &mut message)
        .map_err(bad)?;
    Ok((rendered, message, addressing))
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

/// What is needed to send a test message.
pub struct TestSender<'a> {
    pub config: &'a Config,
    pub templates: Arc<Templates>,
    pub transport: &'a dyn Transport,
    pub people: &'a dyn SubscriberStore,
    pub lists: &'a dyn ListStore,
}

impl TestSender<'_> {
    /// Sends `report` as a test message to `to`, with `subject` instead of
    /// the template's when given; a subscriber gets their own version.
    /// Returns the transport's reply.
    pub async fn send(
        &self,
        report: &Report,
        subject: Option<String>,
        to: &SubscriberEmail,
    ) -> Result<String, OneOffError> {
        let who = recipient(self.people, self.lists, to, false).await?;
        let site = test_site(self.config, report);
        let (_, message, addressing) = compose(
            self.config,
            Arc::clone(&self.templates),
            &site,
            report,
            subject,
            &who,
        )?;
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
        let accepted = self
            .transport
            .send(&envelope, Outgoing::from(message.as_bytes()))
            .await
            .map_err(|e| {
                OneOffError::NotSent(format!(
                    "the test message to {} was not sent: {e}",
                    who.email
                ))
            })?;
        Ok(accepted.reply)
    }
}
