-- NEC meetings and the report that covers each; and when each schedule
-- last ticked, shared by every necmail instance on the database.

CREATE TABLE meetings (
    id                INTEGER PRIMARY KEY,
    held_on           TEXT NOT NULL UNIQUE,
    title             TEXT,
    report_id         INTEGER UNIQUE REFERENCES reports (id) ON DELETE SET NULL,
    overdue_notice_at TEXT,
    created_at        TEXT NOT NULL
);

CREATE TABLE schedule_ticks (
    name      TEXT PRIMARY KEY,
    last_tick TEXT NOT NULL
);
