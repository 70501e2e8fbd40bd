//! What the web admin needs from storage; `crate::store` implements it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Account, Credentials, Role};
use crate::error::StoreError;

/// A session to begin.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// [`super::token_hash`] of the id in the cookie.
    pub id_hash: String,
    pub account_id: i64,
    pub csrf: String,
    pub ip: Option<String>,
    pub now: DateTime<Utc>,
}

/// A session as stored, with its account.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub account: Account,
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    /// Given by the store; 0 in a new entry.
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The account's address, or `cli`.
    pub actor: String,
    /// What was done, as `thing.verb`: `sign-in`, `account.add`, ….
    pub action: String,
    pub detail: String,
    pub ip: Option<String>,
}

/// What happened to the audience since a time: for the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Activity {
    /// Subscriptions consented to (confirmed or not).
    pub signups: i64,
    pub unsubscribes: i64,
    /// Addresses suppressed after a hard bounce.
    pub bounces: i64,
    pub complaints: i64,
}

#[async_trait]
pub trait AdminStore: Send + Sync {
    /// A new account without a password; an address already used is a conflict.
    async fn create_account(
        &self,
        email: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<Account, StoreError>;
    /// Every account, by address.
    async fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    /// The account with this address and its secrets, if there is one.
    async fn credentials(&self, email: &str) -> Result<Option<Credentials>, StoreError>;
    /// Account `id` and its secrets; not found when it is gone.
    async fn credentials_by_id(&self, id: i64) -> Result<Credentials, StoreError>;
    /// Removes an account, its links and sessions; the last owner is refused.
    async fn remove_account(&self, email: &str) -> Result<Account, StoreError>;
    /// Clears an account's password, two-factor, links and sessions.
    async fn reset_account(&self, email: &str) -> Result<Account, StoreError>;
    /// Stores a one-time link, replacing the account's earlier ones.
    async fn create_setup_link(
        &self,
        account_id: i64,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The account a link that works at `now` is for.
    async fn setup_link(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StoreError>;
    /// Uses a link that works at `now`: sets the password hash and ends every
    /// session of the account. `None` when the link does not work.
    async fn use_setup_link(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StoreError>;
    /// Sets account `id`'s password hash and ends its sessions but `keep`.
    async fn set_password(
        &self,
        id: i64,
        password_hash: &str,
        keep: &str,
    ) -> Result<(), StoreError>;
    /// Sets or clears account `id`'s TOTP secret.
    async fn set_totp(&self, id: i64, secret: Option<&str>) -> Result<(), StoreError>;
    /// Begins a session, and records the sign-in on its account.
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;
    /// The session with this id hash, if it exists.
    async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Records that the session was used at `now`.
    async fn touch_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    async fn end_session(&self, id_hash: &str) -> Result<(), StoreError>;
    /// Ends every session of account `id`; returns how many there were.
    async fn end_sessions(&self, id: i64) -> Result<u64, StoreError>;
    async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Up to `limit` lines of the audit log, newest first, older than line
    /// `before` when given.
    async fn audit_log(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError>;
    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError>;
    /// What happened to the audience since `since`.
    async fn activity(&self, since: DateTime<Utc>) -> Result<Activity, StoreError>;
}
