//! The personal addressing of each message: links, headers and the VERP
//! return path. Campaigns, `send-test` and `report preview` all use this, so
//! a preview is exactly what a recipient gets.

use chrono::Utc;
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::Config;
use crate::render::{ListInfo, MessageMeta, Recipient};
use crate::subscribers::Attributes;
use crate::tokens::{Purpose, Signer};

/// The list a message is sent through.
#[derive(Debug, Clone)]
pub struct ListRef {
    pub id: i64,
    pub info: ListInfo,
}

/// Everything personal about one message except its content.
#[derive(Debug, Clone)]
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
        let domain = config.from.domain();
        let sub = u64::try_from(subscriber_id).unwrap_or_default();
        let unsubscribe = signer.sign(
            Purpose::Unsubscribe,
            &[sub, u64::try_from(list.id).unwrap_or_default()],
        );
        let preferences = signer.preferences(subscriber_id);
        let delivery = signer.sign(
            Purpose::Delivery,
            &[u64::try_from(delivery_id).unwrap_or_default()],
        );
        Addressing {
            unsubscribe_url: config.public_link(&format!("u/{unsubscribe}")),
            unsubscribe_mailto: format!("mailto:leave+{unsubscribe}@{domain}"),
            preferences_url: config.public_link(&format!("p/{preferences}")),
            list_id: format!("{}.{domain}", list.info.slug),
            feedback_id: format!(
                "{campaign_id}:{}:report:{}",
                list.info.slug, config.feedback_sender_id
            ),
            message_id: format!("{campaign_id}.{delivery}@{domain}"),
            return_path: format!("bounce+{delivery}@{domain}"),
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
