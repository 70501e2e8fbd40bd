//! Subscribers, their subscriptions to lists with the consent behind each,
//! and the suppression list that outlives them.

mod attributes;
mod email;
pub mod import;
mod name;
pub(crate) mod self_service;
pub mod spreadsheet;
mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use attributes::{
    AttributeError, AttributePair, Attributes, ROLE, ROLES, normalise_key, normalise_value,
};
pub use email::{EmailError, SubscriberEmail};
pub use name::{NameError, SubscriberName};
pub use self_service::{
    AskToConfirm, Asked, ConfirmationTurn, Pending, PreferenceChange, QueuedConfirmation,
    SelfServiceStore, Signup, SignupOutcome,
};
pub use store::{ImportJobStore, SubscriberStore};

use crate::lists::ListSlug;

string_enum!(
    /// Where a subscriber stands with one list.
    SubscriptionStatus {
        Unconfirmed = "unconfirmed",
        Confirmed = "confirmed",
        Unsubscribed = "unsubscribed",
    }
);
string_enum!(
    /// A subscriber's standing overall: a blocklisted subscriber gets nothing.
    SubscriberStatus { Active = "active", Blocklisted = "blocklisted" }
);
string_enum!(
    /// How a subscription's consent was given.
    ConsentMethod { Form = "form", Email = "email", Import = "import", Admin = "admin" }
);
string_enum!(
    /// Why an address is suppressed.
    SuppressionReason {
        Unsubscribed = "unsubscribed",
        HardBounce = "hard-bounce",
        Complaint = "complaint",
        Erased = "erased",
    }
);

/// The consent record kept with each subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consent {
    pub at: DateTime<Utc>,
    pub method: ConsentMethod,
    /// The source address of the request, when there was one.
    pub ip: Option<String>,
    /// Which version of the consent wording the person saw or the admin asserted.
    pub wording: String,
}

/// Where an admin asserted consent: the wording names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminChannel {
    Cli,
    Web,
}

impl AdminChannel {
    fn as_str(self) -> &'static str {
        match self {
            AdminChannel::Cli => "cli",
            AdminChannel::Web => "web",
        }
    }
}

impl Consent {
    /// Consent asserted by an admin, at the command line or in the web
    /// admin, now.
    pub fn by_admin(channel: AdminChannel, method: ConsentMethod) -> Self {
        Consent {
            at: Utc::now(),
            method,
            ip: None,
            wording: format!("{}-{}", channel.as_str(), method.as_str()),
        }
    }

    /// An admin's word, now, that someone who unsubscribed from everything
    /// asked to be added again: the wording records the resubscription.
    pub fn resubscribed_by_admin(channel: AdminChannel) -> Self {
        Consent {
            wording: format!("{}-admin-resubscribe", channel.as_str()),
            ..Consent::by_admin(channel, ConsentMethod::Admin)
        }
    }
}

/// One subscription of a subscriber, as shown to admins and in exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub slug: ListSlug,
    pub status: SubscriptionStatus,
    pub consent: Consent,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

/// A subscriber with every subscription: all the data kept about a person.
#[derive(Debug, Clone, Serialize)]
pub struct Subscriber {
    #[serde(skip)]
    pub id: i64,
    pub email: SubscriberEmail,
    pub name: Option<String>,
    pub status: SubscriberStatus,
    pub attributes: Attributes,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub lists: Vec<Membership>,
    /// Why and since when the address gets no mail at all, if it is suppressed.
    pub suppression: Option<Suppression>,
}

/// A suppressed address: necmail will not add or mail it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub reason: SuppressionReason,
    pub at: DateTime<Utc>,
}

impl Suppression {
    /// The sentence a user reads when a suppressed address is refused.
    pub fn refusal(&self, email: &SubscriberEmail) -> String {
        let why = match self.reason {
            SuppressionReason::Unsubscribed => "unsubscribed from everything",
            SuppressionReason::HardBounce => "hard-bounced",
            SuppressionReason::Complaint => "reported our mail as spam",
            SuppressionReason::Erased => "asked for their data to be erased",
        };
        format!(
            "{email} is suppressed: the address {why} on {}",
            self.at.format("%Y-%m-%d")
        )
    }
}

/// A status to filter by: a subscription status, or blocklisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Subscription(SubscriptionStatus),
    Blocklisted,
}

impl std::str::FromStr for StatusFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "blocklisted" {
            return Ok(StatusFilter::Blocklisted);
        }
        s.parse().map(StatusFilter::Subscription).map_err(|_| {
            format!(
                "{s:?} is not a status; use confirmed, unconfirmed, unsubscribed or blocklisted"
            )
        })
    }
}

/// Which subscribers to list or export.
#[derive(Debug, Clone, Default)]
pub struct SubscriberFilter {
    pub list: Option<ListSlug>,
    pub status: Option<StatusFilter>,
    pub attributes: Vec<AttributePair>,
    /// A case-insensitive substring of the address or the name.
    pub search: Option<String>,
}

/// Where a page of a search by prefix ends: the text that matched last,
/// and its subscriber's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCursor {
    pub key: String,
    pub id: i64,
}

/// An admin's request to add someone.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    pub email: SubscriberEmail,
    pub name: Option<SubscriberName>,
    pub attributes: Attributes,
    pub lists: Vec<ListSlug>,
    /// Confirm every subscription at once, even on double-opt-in lists.
    pub confirmed: bool,
    /// The person, who unsubscribed from everything, asked to be added
    /// again: lifts that suppression. A hard bounce, a complaint or an
    /// erasure is never lifted.
    pub resubscribe: bool,
    pub consent: Consent,
}

/// A change to a subscriber's own fields.
#[derive(Debug, Clone, Default)]
pub struct SubscriberUpdate {
    /// `Some(None)` clears the name.
    pub name: Option<Option<SubscriberName>>,
    pub set: Attributes,
    pub unset: Vec<String>,
}

/// The status a new subscription starts in.
pub fn initial_status(opt_in: crate::lists::OptIn, confirmed: bool) -> SubscriptionStatus {
    if confirmed || opt_in == crate::lists::OptIn::Single {
        SubscriptionStatus::Confirmed
    } else {
        SubscriptionStatus::Unconfirmed
    }
}
