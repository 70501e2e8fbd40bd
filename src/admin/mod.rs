//! The web admin's accounts, their sign-in and the audit log: what the
//! admin pages (`crate::web`) and `necmail admin` share.
//!
//! - Accounts are an owner, who does everything, or an editor, who writes
//!   reports and prepares campaigns but cannot send, approve, nor see or
//!   change subscriber data ([`Role`]).
//! - A password is set from a one-time link valid [`SETUP_LINK_HOURS`]
//!   hours, and kept as an argon2id hash ([`password`]). Two-factor sign-in
//!   with TOTP is optional, and an owner can require it for everyone.
//! - Sessions are kept in the database: a 256-bit random id, of which only a
//!   SHA-256 is stored, with a CSRF token of its own. A session ends after
//!   [`SESSION_IDLE`] without use, and [`SESSION_LIFETIME`] after sign-in.
//! - Failed sign-ins slow down the next ones, per address and per account
//!   ([`throttle`]).
//! - Every action is written to the audit log: who, what, when, from where.

pub mod password;
mod store;
pub mod throttle;
pub mod totp;

use std::net::IpAddr;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

pub use store::{Activity, AdminStore, AuditEntry, NewSession, SessionRecord};

use crate::subscribers::SubscriberEmail;

/// How long a link to set a password works.
pub const SETUP_LINK_HOURS: i64 = 24;
/// A session unused this long ends.
pub const SESSION_IDLE: Duration = Duration::hours(8);
/// A session ends this long after sign-in, however much it is used.
pub const SESSION_LIFETIME: Duration = Duration::days(7);
/// The setting that makes every account use two-factor sign-in.
pub const REQUIRE_TOTP: &str = "require_totp";

string_enum!(
    /// What an account may do.
    Role {
        Owner = "owner",
        Editor = "editor",
    }
);

/// An admin account, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub role: Role,
    /// False until the password is set from its one-time link.
    pub has_password: bool,
    pub totp: bool,
    pub created_at: DateTime<Utc>,
    pub signed_in_at: Option<DateTime<Utc>>,
}

impl Account {
    pub fn is_owner(&self) -> bool {
        self.role == Role::Owner
    }
}

/// An account with what sign-in checks.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub account: Account,
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
}

/// Why an account cannot be made or changed as asked.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] crate::error::StoreError),
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

impl AdminError {
    pub fn is_bad_input(&self) -> bool {
        match self {
            AdminError::Invalid(_) => true,
            AdminError::Store(e) => e.is_bad_input(),
            AdminError::Hash(_) => false,
        }
    }
}

/// An account's address as stored: a valid address, in lower case.
pub fn account_email(given: &str) -> Result<String, AdminError> {
    SubscriberEmail::parse(given.trim())
        .map(|e| e.as_str().to_lowercase())
        .map_err(|e| AdminError::Invalid(format!("{given:?} is not an email address: {e}")))
}

/// A new random secret of 256 bits, URL-safe: a session id or a link token.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random number generator works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a session id or a link token: its SHA-256, in hex.
pub fn token_hash(token: &str) -> String {
    crate::text::hex(&Sha256::digest(token.as_bytes()))
}

/// Whether a session that began at `created` and was last used at
/// `last_seen` is still good at `now`.
pub fn session_is_live(
    created: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    now - last_seen < SESSION_IDLE && now - created < SESSION_LIFETIME
}

/// Who did an action, for the audit log: an account's address, or `cli`.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub ip: Option<IpAddr>,
}

impl Actor {
    /// The command line (`necmail admin …`), run by whoever has a shell.
    pub fn cli() -> Actor {
        Actor {
            name: "cli".into(),
            ip: None,
        }
    }
}

/// Creates an account and its one-time link; returns the account and the
/// link's token (to put in a URL, never stored).
pub async fn add_account(
    store: &dyn AdminStore,
    email: &str,
    role: Role,
    by: &Actor,
) -> Result<(Account, String), AdminError> {
    let email = account_email(email)?;
    let now = Utc::now();
    let account = store.create_account(&email, role, now).await?;
    let token = new_setup_link(store, account.id, now).await?;
    audit(store, by, "account.add", &format!("{email} as {role}")).await?;
    Ok((account, token))
}

/// Takes away an account's password, two-factor and sessions, and makes a
/// new one-time link to set a password; returns the link's token.
pub async fn reset_account(
    store: &dyn AdminStore,
    email: &str,
    by: &Actor,
) -> Result<(Account, String), AdminError> {
    let email = account_email(email)?;
    let account = store.reset_account(&email).await?;
    let token = new_setup_link(store, account.id, Utc::now()).await?;
    audit(store, by, "account.reset", &email).await?;
    Ok((account, token))
}

/// Removes an account; the last owner cannot be removed.
pub async fn remove_account(
    store: &dyn AdminStore,
    email: &str,
    by: &Actor,
) -> Result<Account, AdminError> {
    let email = account_email(email)?;
    let account = store.remove_account(&email).await?;
    audit(store, by, "account.remove", &email).await?;
    Ok(account)
}

async fn new_setup_link(
    store: &dyn AdminStore,
    account: i64,
    now: DateTime<Utc>,
) -> Result<String, AdminError> {
    let token = random_token();
    store
        .create_setup_link(
            account,
            &token_hash(&token),
            now + Duration::hours(SETUP_LINK_HOURS),
        )
        .await?;
    Ok(token)
}

/// Writes one line to the audit log.
pub async fn audit(
    store: &dyn AdminStore,
    by: &Actor,
    action: &str,
    detail: &str,
) -> Result<(), crate::error::StoreError> {
    store
        .audit(&AuditEntry {
            id: 0,
            at: Utc::now(),
            actor: by.name.clone(),
            action: action.to_owned(),
            detail: detail.to_owned(),
            ip: by.ip.map(|ip| ip.to_string()),
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_idle_or_too_old() {
        let start = Utc::now();
        assert!(session_is_live(start, start, start + Duration::hours(7)));
        assert!(!session_is_live(start, start, start + Duration::hours(8)));
        let later = start + Duration::days(6) + Duration::hours(23);
        assert!(session_is_live(start, later, later + Duration::minutes(59)));
        assert!(!session_is_live(start, later, start + Duration::days(7)));
    }

    #[test]
    fn tokens_are_random_and_stored_only_as_a_hash() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits in URL-safe base64");
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn account_addresses_are_kept_in_lower_case() {
        assert_eq!(
            account_email(" Ann@Example.ORG ").unwrap(),
            "ann@example.org"
        );
        assert!(account_email("not an address").is_err());
    }
}
