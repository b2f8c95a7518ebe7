-- The notification service's own tables (the kit's come first: processed
-- events for the consumer's deduplication).

-- One row per (event, recipient): the in-app feed. Rows are inserted under
-- a transaction-scoped advisory lock held to commit, so they commit in `seq`
-- order and a stream reading "after seq N" never skips a row that commits
-- late. `seq` orders a
-- recipient's feed and is the stream's resume cursor; `params` keeps the
-- template variables so email and push render later in the recipient's
-- locale.
CREATE TABLE notifications (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             uuid        NOT NULL UNIQUE,
    event_id       uuid        NOT NULL,
    recipient_id   uuid        NOT NULL,
    kind           text        NOT NULL,
    ticket_id      uuid        NOT NULL,
    human_id       text        NOT NULL,
    title          text        NOT NULL,
    body           text        NOT NULL,
    link           text        NOT NULL,
    params         jsonb       NOT NULL,
    create_time    timestamptz NOT NULL,
    read_time      timestamptz,
    -- A redelivered event creates nothing new.
    UNIQUE (event_id, recipient_id)
);

-- The feed, both ways (listing newest first, stream replay oldest first),
-- and the unread subset (count, unread filter).
CREATE INDEX notifications_feed ON notifications (recipient_id, seq);
CREATE INDEX notifications_unread ON notifications (recipient_id, seq) WHERE read_time IS NULL;
-- A ticket's history (ListDeliveries, MarkRead by ticket).
CREATE INDEX notifications_ticket ON notifications (ticket_id, seq);
-- Callers name tickets by `TKT-…` too.
CREATE INDEX notifications_human_id ON notifications (human_id);

-- One row per (notification, channel) for email and push: queued until a
-- sender claims it, then sent, failed or skipped (with the reason). A
-- queued row is due at `next_attempt_at`; claiming pushes that forward by
-- the lease, so a sender that dies mid-send leaves it to be retried.
CREATE TABLE deliveries (
    id              uuid        PRIMARY KEY,
    notification_id uuid        NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel         text        NOT NULL CHECK (channel IN ('email', 'push')),
    state           text        NOT NULL CHECK (state IN ('queued', 'sent', 'failed', 'skipped')),
    reason          text,
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,
    create_time     timestamptz NOT NULL,
    next_attempt_at timestamptz,
    sent_time       timestamptz,
    -- Push: the device tokens already sent to, so a retry after a partial
    -- failure reaches only the rest.
    sent_tokens     text[]      NOT NULL DEFAULT '{}',
    UNIQUE (notification_id, channel)
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'queued';

-- A person's own choices; anything absent takes their role's default.
CREATE TABLE preferences (
    account_id  uuid        NOT NULL,
    kind        text        NOT NULL,
    channel     text        NOT NULL CHECK (channel IN ('email', 'push')),
    enabled     boolean     NOT NULL,
    update_time timestamptz NOT NULL,
    PRIMARY KEY (account_id, kind, channel)
);

-- Staff who worked on a ticket (assigned, or wrote on it): who hears of an
-- internal note.
CREATE TABLE ticket_staff (
    ticket_id uuid NOT NULL,
    staff_id  uuid NOT NULL,
    PRIMARY KEY (ticket_id, staff_id)
);

-- Device tokens the push gateway reported as unregistered: never used again.
CREATE TABLE unregistered_push_tokens (
    token       text        PRIMARY KEY,
    account_id  uuid        NOT NULL,
    reported_at timestamptz NOT NULL
);
