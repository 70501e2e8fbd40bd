-- NEC meetings and the report that covers each; and when each schedule
-- last ticked, shared by every necmail instance on the database.

CREATE TABLE meetings (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    held_on           DATE NOT NULL UNIQUE,
    title             TEXT,
    report_id         BIGINT UNIQUE REFERENCES reports (id) ON DELETE SET NULL,
    overdue_notice_at TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE schedule_ticks (
    name      TEXT PRIMARY KEY,
    last_tick TIMESTAMPTZ NOT NULL
);
