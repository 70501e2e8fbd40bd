//! The web admin's accounts, sessions and audit log, for both backends:
//! compiled into each (see [`crate::store`]).

use chrono::{DateTime, Utc};

use super::Db;
use crate::admin::{
    Account, Activity, AdminStore, AuditEntry, Credentials, NewSession, Role, SessionRecord,
};
use crate::error::StoreError;
use crate::store::SqlStore;
use crate::store::error::is_unique_violation;

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: i64,
    email: String,
    role: String,
    password_hash: Option<String>,
    totp_secret: Option<String>,
    created_at: DateTime<Utc>,
    signed_in_at: Option<DateTime<Utc>>,
}

const ACCOUNT_COLUMNS: &str =
    "a.id, a.email, a.role, a.password_hash, a.totp_secret, a.created_at, a.signed_in_at";

impl TryFrom<AccountRow> for Credentials {
    type Error = StoreError;

    fn try_from(row: AccountRow) -> Result<Self, StoreError> {
        let role: Role = row
            .role
            .parse()
            .map_err(|e| StoreError::corrupt(format_args!("the admin {}", row.email), e))?;
        Ok(Credentials {
            account: Account {
                id: row.id,
                email: row.email,
                role,
                has_password: row.password_hash.is_some(),
                totp: row.totp_secret.is_some(),
                created_at: row.created_at,
                signed_in_at: row.signed_in_at,
            },
            password_hash: row.password_hash,
            totp_secret: row.totp_secret,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    account: AccountRow,
    csrf: String,
    session_created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    detail: String,
    ip: Option<String>,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            detail: r.detail,
            ip: r.ip,
        }
    }
}

fn no_account(email: &str) -> StoreError {
    StoreError::not_found(format!("there is no admin account {email}"))
}

impl SqlStore<Db> {
    async fn account_row(&self, email: &str) -> Result<Option<Credentials>, StoreError> {
        sqlx::query_as::<Db, AccountRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM admin_accounts a WHERE a.email = $1"
        )))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?
        .map(Credentials::try_from)
        .transpose()
    }
}

#[async_trait::async_trait]
impl AdminStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn create_account(
        &self,
        email: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<Account, StoreError> {
        let _turn = self.turn().await;
        let id: i64 = sqlx::query_scalar::<Db, i64>(
            "INSERT INTO admin_accounts (email, role, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(email)
        .bind(role.as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("there is already an admin account {email}"))
            } else {
                e.into()
            }
        })?;
        Ok(Account {
            id,
            email: email.to_owned(),
            role,
            has_password: false,
            totp: false,
            created_at: now,
            signed_in_at: None,
        })
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        sqlx::query_as::<Db, AccountRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM admin_accounts a ORDER BY a.email"
        )))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| Credentials::try_from(row).map(|c| c.account))
        .collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn credentials(&self, email: &str) -> Result<Option<Credentials>, StoreError> {
        self.account_row(email).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn credentials_by_id(&self, id: i64) -> Result<Credentials, StoreError> {
        sqlx::query_as::<Db, AccountRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM admin_accounts a WHERE a.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(Credentials::try_from)
        .transpose()?
        .ok_or_else(|| StoreError::not_found(format!("there is no admin account {id}")))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn remove_account(&self, email: &str) -> Result<Account, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query_as::<Db, AccountRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM admin_accounts a WHERE a.email = $1"
        )))
        .bind(email)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| no_account(email))?;
        let account = Credentials::try_from(row)?.account;
        if account.is_owner() {
            let owners: i64 = sqlx::query_scalar::<Db, i64>(
                "SELECT COUNT(*) FROM admin_accounts WHERE role = 'owner'",
            )
            .fetch_one(&mut *tx)
            .await?;
            if owners <= 1 {
                return Err(StoreError::Refused(format!(
                    "{email} is the last owner: add another owner first"
                )));
            }
        }
        sqlx::query("DELETE FROM admin_accounts WHERE id = $1")
            .bind(account.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(account)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn reset_account(&self, email: &str) -> Result<Account, StoreError> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar::<Db, i64>(
            "UPDATE admin_accounts SET password_hash = NULL, totp_secret = NULL
              WHERE email = $1 RETURNING id",
        )
        .bind(email)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| no_account(email))?;
        for sql in [
            "DELETE FROM admin_sessions WHERE account_id = $1",
            "DELETE FROM admin_setup_links WHERE account_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(self
            .account_row(email)
            .await?
            .ok_or_else(|| no_account(email))?
            .account)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn create_setup_link(
        &self,
        account_id: i64,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM admin_setup_links WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO admin_setup_links (token_hash, account_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(account_id)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn setup_link(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StoreError> {
        sqlx::query_as::<Db, AccountRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM admin_accounts a
               JOIN admin_setup_links l ON l.account_id = a.id
              WHERE l.token_hash = $1 AND l.expires_at > $2"
        )))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| Credentials::try_from(row).map(|c| c.account))
        .transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn use_setup_link(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(id) = sqlx::query_scalar::<Db, i64>(
            "DELETE FROM admin_setup_links WHERE token_hash = $1 AND expires_at > $2
             RETURNING account_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        sqlx::query("UPDATE admin_accounts SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM admin_sessions WHERE account_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(self.credentials_by_id(id).await?.account))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn set_password(
        &self,
        id: i64,
        password_hash: &str,
        keep: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE admin_accounts SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM admin_sessions WHERE account_id = $1 AND id_hash <> $2")
            .bind(id)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn set_totp(&self, id: i64, secret: Option<&str>) -> Result<(), StoreError> {
        let _turn = self.turn().await;
        sqlx::query("UPDATE admin_accounts SET totp_secret = $1 WHERE id = $2")
            .bind(secret)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO admin_sessions (id_hash, account_id, csrf, ip, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&s.id_hash)
        .bind(s.account_id)
        .bind(&s.csrf)
        .bind(&s.ip)
        .bind(s.now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE admin_accounts SET signed_in_at = $1 WHERE id = $2")
            .bind(s.now)
            .bind(s.account_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query_as::<Db, SessionRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS}, s.csrf, s.created_at AS session_created_at, s.last_seen_at
               FROM admin_sessions s JOIN admin_accounts a ON a.id = s.account_id
              WHERE s.id_hash = $1"
        )))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionRecord {
                account: Credentials::try_from(r.account)?.account,
                csrf: r.csrf,
                created_at: r.session_created_at,
                last_seen_at: r.last_seen_at,
            })
        })
        .transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn touch_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let _turn = self.turn().await;
        sqlx::query("UPDATE admin_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn end_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let _turn = self.turn().await;
        sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn end_sessions(&self, id: i64) -> Result<u64, StoreError> {
        let _turn = self.turn().await;
        Ok(
            sqlx::query("DELETE FROM admin_sessions WHERE account_id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    #[tracing::instrument(level = "debug", skip_all, fields(action = %entry.action))]
    async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let _turn = self.turn().await;
        sqlx::query(
            "INSERT INTO admin_audit (at, actor, action, detail, ip) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.detail)
        .bind(&entry.ip)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn audit_log(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(sqlx::query_as::<Db, AuditRow>(
            "SELECT id, at, actor, action, detail, ip FROM admin_audit
              WHERE $1 IS NULL OR id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(AuditEntry::from)
        .collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar::<Db, String>("SELECT value FROM admin_settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let _turn = self.turn().await;
        sqlx::query(
            "INSERT INTO admin_settings (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn activity(&self, since: DateTime<Utc>) -> Result<Activity, StoreError> {
        let (signups, unsubscribes, bounces, complaints): (i64, i64, i64, i64) =
            sqlx::query_as::<Db, (i64, i64, i64, i64)>(
                "SELECT (SELECT COUNT(*) FROM subscriptions WHERE consent_at >= $1),
                        (SELECT COUNT(*) FROM subscriptions WHERE unsubscribed_at >= $1),
                        (SELECT COUNT(*) FROM suppressions
                          WHERE reason = 'hard-bounce' AND created_at >= $1),
                        (SELECT COUNT(*) FROM suppressions
                          WHERE reason = 'complaint' AND created_at >= $1)",
            )
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
        Ok(Activity {
            signups,
            unsubscribes,
            bounces,
            complaints,
        })
    }
}
