-- What the scheduler's batch jobs need (support.v1.TicketJobsService,
-- api/jobs.rs, docs/scheduler.md): the bookkeeping that makes a repeated
-- page change nothing, and the indexes their keyset pages walk.

-- Alerted SLA breaches: one TicketOverdue per ticket per breach, ever.
CREATE TABLE ticket_sla_alerts (
    ticket_id  uuid        NOT NULL REFERENCES tickets (id),
    breach     text        NOT NULL CHECK (breach IN ('first_response', 'resolution')),
    due_at     timestamptz NOT NULL,
    run_id     uuid        NOT NULL,
    alerted_at timestamptz NOT NULL,
    PRIMARY KEY (ticket_id, breach)
);

-- Every rating ask: reminder 0 is the request, 1, 2, ... the reminders. The
-- key makes each ask happen once, whatever runs or repeats.
CREATE TABLE ticket_rating_requests (
    ticket_id uuid        NOT NULL REFERENCES tickets (id),
    reminder  integer     NOT NULL CHECK (reminder >= 0),
    run_id    uuid        NOT NULL,
    asked_at  timestamptz NOT NULL,
    PRIMARY KEY (ticket_id, reminder)
);
-- Reminders walk asks by time.
CREATE INDEX ticket_rating_requests_by_asked ON ticket_rating_requests (asked_at, ticket_id);

-- Escalation: when a ticket was last escalated and by which run. A ticket is
-- escalated again only once another threshold has passed since (and never
-- twice by one run).
ALTER TABLE tickets ADD COLUMN escalated_at timestamptz;
ALTER TABLE tickets ADD COLUMN escalation_run uuid;

-- The highest fencing token each scheduler run presented: a lower one is a
-- stale holder, refused.
CREATE TABLE job_run_fences (
    run_id  uuid        PRIMARY KEY,
    fence   bigint      NOT NULL,
    seen_at timestamptz NOT NULL
);

-- Auto-close walks resolved tickets by resolution time; rating requests walk
-- unrated resolved (or closed) ones. Both partial: small next to the table.
CREATE INDEX tickets_resolved_by_time ON tickets (resolved_at, id) WHERE status = 'resolved';
CREATE INDEX tickets_unrated_by_resolution ON tickets (resolved_at, id)
    WHERE rating IS NULL AND resolved_at IS NOT NULL;
