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
    id          bigserial PRIMARY KEY,
    agency      text        NOT NULL,
    oa          text        NOT NULL,
    title       text        NOT NULL,
    content     text        NOT NULL,
    segment     text        NOT NULL,
    send_at     timestamptz NOT NULL,
    state       text        NOT NULL,
    author      text        NOT NULL,
    approver    text        NOT NULL DEFAULT '',
    sender      text        NOT NULL DEFAULT '',
    reason      text        NOT NULL DEFAULT '',
    planned     integer     NOT NULL DEFAULT 0,
    recipients  integer     NOT NULL DEFAULT 0,
    sent        integer     NOT NULL DEFAULT 0,
    failed      integer     NOT NULL DEFAULT 0,
    unreachable integer     NOT NULL DEFAULT 0,
    opted_out   integer     NOT NULL DEFAULT 0,
    cancelled   integer     NOT NULL DEFAULT 0,
    paid        integer     NOT NULL DEFAULT 0,
    cost        bigint      NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    started_at  timestamptz,
    finished_at timestamptz
);
CREATE INDEX announcements_state ON announcements (state, send_at);
CREATE INDEX announcements_agency ON announcements (agency, send_at);

-- One row per recipient, written when the send starts. A row is claimed
-- (state sending, attempt_at) in a committed transaction before its message goes
-- out and settled (sent, failed, unreachable, opted_out, cancelled) in another
-- after the answer: after a crash only rows still "sending" are in doubt, and they
-- are checked with Zalo before anything is sent again.
CREATE TABLE announcement_recipients (
    announcement bigint  NOT NULL,
    n            integer NOT NULL,
    user_id      text    NOT NULL DEFAULT '',
    phone        text    NOT NULL DEFAULT '',
    state        text    NOT NULL,
    route        text    NOT NULL DEFAULT '',
    code         integer NOT NULL DEFAULT 0,
    detail       text    NOT NULL DEFAULT '',
    message_id   text    NOT NULL DEFAULT '',
    quota_type   text    NOT NULL DEFAULT '',
    cost         bigint  NOT NULL DEFAULT 0,
    attempt_at   timestamptz,
    done_at      timestamptz,
    PRIMARY KEY (announcement, n)
);
CREATE INDEX announcement_recipients_state ON announcement_recipients (announcement, state, n);
