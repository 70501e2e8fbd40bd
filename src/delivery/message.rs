//! The personal addressing of each message: links, headers and the VERP
//! return path. Campaigns, `send-test` and `report preview` all use this, so
//! a preview is exactly what a recipient gets.

use std::fmt::Write as _;

use chrono::Utc;
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::Config;
use crate::render::{ListInfo, MessageMeta, Recipient};
use crate::subscribers::Attributes;
use crate::tokens::{Purpose, Signer};

/// The lists a message is sent through: the one its List-Id names (RFC
/// 2919 allows one: the first of the campaign's lists the recipient was on
/// when it started), and for someone on several of the campaign's lists,
/// the others, in the campaign's order. The footer names them all, and the
/// unsubscribe link leaves them all.
#[derive(Debug, Clone)]
pub struct ListRef {
    pub id: i64,
    pub info: ListInfo,
    /// The other lists' ids, in the order of `also`.
    pub also_ids: Vec<i64>,
    pub also: Vec<ListInfo>,
}

impl ListRef {
    /// A message sent through one list.
    pub fn one(id: i64, info: ListInfo) -> Self {
        ListRef {
            id,
            info,
            also_ids: Vec::new(),
            also: Vec::new(),
        }
    }
}

/// Everything personal about one message except its content. A campaign's
/// worker keeps one and [`Addressing::fill`]s it for each message, so that
/// its strings are written into the buffers of the last.
#[derive(Debug, Clone, Default)]
pub struct Addressing {
    pub unsubscribe_url: String,
    pub unsubscribe_mailto: String,
    pub preferences_url: String,
    /// `slug.domain`: the List-Id without the list's name.
    pub list_id: String,
    /// Gmail's feedback loop: `campaign:list:type:sender`.
    pub feedback_id: String,
    /// Without angle brackets.
    pub message_id: String,
    /// The VERP envelope sender, `bounce+TOKEN@DOMAIN`.
    pub return_path: String,
}

impl Addressing {
    /// The addressing of delivery `delivery_id` of campaign `campaign_id` to
    /// subscriber `subscriber_id` through `list`.
    pub fn new(
        config: &Config,
        signer: &Signer,
        subscriber_id: i64,
        list: &ListRef,
        campaign_id: i64,
        delivery_id: i64,
    ) -> Self {
        let mut addressing = Addressing::default();
        addressing.fill(
            config,
            signer,
            subscriber_id,
            list,
            campaign_id,
            delivery_id,
        );
        addressing
    }

    /// Makes this the addressing [`Addressing::new`] makes, reusing its strings.
    pub fn fill(
        &mut self,
        config: &Config,
        signer: &Signer,
        subscriber_id: i64,
        list: &ListRef,
        campaign_id: i64,
        delivery_id: i64,
    ) {
        let domain = config.from.domain();
        let sub = u64::try_from(subscriber_id).unwrap_or_default();
        let id = |id: i64| u64::try_from(id).unwrap_or_default();
        let delivery = u64::try_from(delivery_id).unwrap_or_default();

        let url = &mut self.unsubscribe_url;
        url.clear();
        config.push_public_link("u/", url);
        let token_at = url.len();
        let lists = std::iter::once(list.id).chain(list.also_ids.iter().copied());
        signer.unsubscribe_into(sub, lists.map(id), url);
        let mailto = &mut self.unsubscribe_mailto;
        mailto.clear();
        for part in ["mailto:leave+", &url[token_at..], "@", domain] {
            mailto.push_str(part);
        }

        self.preferences_url.clear();
        config.push_public_link("p/", &mut self.preferences_url);
        signer.preferences_into(subscriber_id, &mut self.preferences_url);

        self.list_id.clear();
        for part in [list.info.slug.as_str(), ".", domain] {
            self.list_id.push_str(part);
        }
        self.feedback_id.clear();
        let _ = write!(self.feedback_id, "{campaign_id}:");
        for part in [
            list.info.slug.as_str(),
            ":report:",
            &config.feedback_sender_id,
        ] {
            self.feedback_id.push_str(part);
        }

        let path = &mut self.return_path;
        path.clear();
        path.push_str("bounce+");
        let token_at = path.len();
        signer.sign_into(Purpose::Delivery, &[delivery], path);
        let token_end = path.len();
        path.push('@');
        path.push_str(domain);
        self.message_id.clear();
        let _ = write!(self.message_id, "{campaign_id}.");
        for part in [&path[token_at..token_end], "@", domain] {
            self.message_id.push_str(part);
        }
    }

    /// The addressing of a one-off message of no campaign (`report
    /// preview`, `send-test`): as [`Addressing::new`] makes it, but with a
    /// Message-ID and a VERP token of its own, from a random number, so
    /// that no two are alike (Gmail folds messages with one Message-ID
    /// into one), and the Feedback-ID type `test`.
    pub fn one_off(config: &Config, signer: &Signer, subscriber_id: i64, list: &ListRef) -> Self {
        let mut nonce = [0u8; 8];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system's random generator works");
        let token = signer.sign(Purpose::Delivery, &[0, u64::from_le_bytes(nonce)]);
        let domain = config.from.domain();
        Addressing {
            message_id: format!("test.{token}@{domain}"),
            return_path: format!("bounce+{token}@{domain}"),
            feedback_id: format!("0:{}:test:{}", list.info.slug, config.feedback_sender_id),
            ..Addressing::new(config, signer, subscriber_id, list, 0, 0)
        }
    }

    pub fn recipient<'a>(
        &'a self,
        email: &'a str,
        name: Option<&'a str>,
        attributes: &'a Attributes,
        list: &'a ListRef,
    ) -> Recipient<'a> {
        Recipient {
            email,
            name,
            attributes,
            list: &list.info,
            also: &list.also,
            unsubscribe_url: &self.unsubscribe_url,
            preferences_url: &self.preferences_url,
        }
    }

    pub fn meta(&self) -> MessageMeta<'_> {
        MessageMeta {
            message_id: &self.message_id,
            date: Utc::now(),
            list_unsubscribe: Some((&self.unsubscribe_url, &self.unsubscribe_mailto)),
            list_id: Some(&self.list_id),
            feedback_id: Some(&self.feedback_id),
        }
    }
}
