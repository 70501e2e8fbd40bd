-- Images copied from reports at import, served at NECMAIL_PUBLIC_URL/media/NAME.
-- NAME is the SHA-256 of the bytes and the type's extension, so an image is
-- stored once, and every instance sharing the database serves it.
CREATE TABLE media (
    name       TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    bytes      BYTEA NOT NULL,
    source_url TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
