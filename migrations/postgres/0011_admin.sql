-- The web admin: its accounts, one-time links to set a password, sessions,
-- the audit log of every admin action, and its settings.

CREATE TABLE admin_accounts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Lower-case: one account per address, however it is typed.
    email         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'editor')),
    -- An argon2id PHC string; NULL until set from a one-time link.
    password_hash TEXT,
    -- The TOTP secret in base32; NULL without two-factor.
    totp_secret   TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    signed_in_at  TIMESTAMPTZ
);

-- Only a SHA-256 of each link's token is kept.
CREATE TABLE admin_setup_links (
    token_hash TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES admin_accounts (id) ON DELETE CASCADE,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX admin_setup_links_by_account ON admin_setup_links (account_id);

-- Only a SHA-256 of each session id is kept.
CREATE TABLE admin_sessions (
    id_hash      TEXT PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES admin_accounts (id) ON DELETE CASCADE,
    csrf         TEXT NOT NULL,
    ip           TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX admin_sessions_by_account ON admin_sessions (account_id);

-- Who did what, when, from where; kept when the account is removed.
CREATE TABLE admin_audit (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     TIMESTAMPTZ NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    ip     TEXT
);

CREATE TABLE admin_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
