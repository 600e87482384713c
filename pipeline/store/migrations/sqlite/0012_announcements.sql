-- Proactive announcements (pipeline/announce, issue 14): each announcement with the
-- people who wrote, approved and sent it, and one row per recipient.
--
-- state: draft, submitted, approved, rejected, scheduled, sending, sent, cancelled.
-- Every change of state is made by a compare-and-set on state, in the same
-- transaction as its audit_log entry. planned is the recipients counted when it
-- was approved (it reserves the agency's caps until the send ends); the counters
-- (sent, failed, unreachable, opted_out, cost) are kept by the transaction that
-- records each batch of outcomes, so the page reads one row per announcement.
CREATE TABLE announcements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    agency      TEXT        NOT NULL,
    oa          TEXT        NOT NULL,
    title       TEXT        NOT NULL,
    content     TEXT        NOT NULL,
    segment     TEXT        NOT NULL,
    send_at     TEXT NOT NULL,
    state       TEXT        NOT NULL,
    author      TEXT        NOT NULL,
    approver    TEXT        NOT NULL DEFAULT '',
    sender      TEXT        NOT NULL DEFAULT '',
    reason      TEXT        NOT NULL DEFAULT '',
    planned     integer     NOT NULL DEFAULT 0,
    recipients  integer     NOT NULL DEFAULT 0,
    sent        integer     NOT NULL DEFAULT 0,
    failed      integer     NOT NULL DEFAULT 0,
    unreachable integer     NOT NULL DEFAULT 0,
    opted_out   integer     NOT NULL DEFAULT 0,
    cancelled   integer     NOT NULL DEFAULT 0,
    paid        integer     NOT NULL DEFAULT 0,
    cost        INTEGER     NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT
);
CREATE INDEX announcements_state ON announcements (state, send_at);
CREATE INDEX announcements_agency ON announcements (agency, send_at);

-- One row per recipient, written when the send starts. A row is claimed
-- (state sending, attempt_at) in a committed transaction before its message goes
-- out and settled (sent, failed, unreachable, opted_out, cancelled) in another
-- after the answer: after a crash only rows still "sending" are in doubt, and they
-- are checked with Zalo before anything is sent again.
CREATE TABLE announcement_recipients (
    announcement INTEGER NOT NULL,
    n            integer NOT NULL,
    user_id      TEXT    NOT NULL DEFAULT '',
    phone        TEXT    NOT NULL DEFAULT '',
    state        TEXT    NOT NULL,
    route        TEXT    NOT NULL DEFAULT '',
    code         integer NOT NULL DEFAULT 0,
    detail       TEXT    NOT NULL DEFAULT '',
    message_id   TEXT    NOT NULL DEFAULT '',
    quota_type   TEXT    NOT NULL DEFAULT '',
    cost         INTEGER NOT NULL DEFAULT 0,
    attempt_at   TEXT,
    done_at      TEXT,
    PRIMARY KEY (announcement, n)
);
CREATE INDEX announcement_recipients_state ON announcement_recipients (announcement, state, n);
