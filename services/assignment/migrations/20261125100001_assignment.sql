-- Assignment service schema: the roster, its projection of who holds which
-- ticket, and the escalation log. Table names differ from the ticket
-- service's and the kit's, so one database could hold both in a pinch.

CREATE TABLE agents (
    account_id       uuid        PRIMARY KEY,
    display_name     text        NOT NULL,
    -- Still staff in the accounts service (roster sync).
    active           boolean     NOT NULL,
    -- On shift: takes new tickets.
    available        boolean     NOT NULL DEFAULT true,
    capacity         integer     NOT NULL DEFAULT 10 CHECK (capacity >= 0),
    -- Category ids this agent is preferred for.
    skills           text[]      NOT NULL DEFAULT '{}',
    tier             text        NOT NULL DEFAULT 'l1' CHECK (tier IN ('l1', 'l2')),
    -- Always the count of this agent's open assignments (kept in the same
    -- transaction as every assignment change; reconciliation checks it).
    open_tickets     integer     NOT NULL DEFAULT 0 CHECK (open_tickets >= 0),
    last_assigned_at timestamptz,
    updated_at       timestamptz NOT NULL
);

-- Every change to an assignment takes the next revision, so reconciliation
-- can tell rows changed after it read the ticket service from stale ones.
CREATE SEQUENCE assignment_revision AS bigint;

CREATE TABLE assignments (
    ticket_id         uuid        PRIMARY KEY,
    human_id          text        NOT NULL,
    category_id       text        NOT NULL,
    -- The support.v1.TicketPriority number: higher is more urgent.
    priority          smallint    NOT NULL,
    ticket_created_at timestamptz NOT NULL,
    agent_id          uuid        REFERENCES agents (account_id),
    -- Counts toward workload: not resolved or closed.
    open              boolean     NOT NULL DEFAULT true,
    assigned_at       timestamptz,
    updated_at        timestamptz NOT NULL,
    revision          bigint      NOT NULL DEFAULT nextval('assignment_revision')
);

-- The waiting queue, in the order it is served: most urgent, then oldest.
CREATE INDEX assignments_waiting ON assignments (priority DESC, ticket_created_at, ticket_id)
    WHERE agent_id IS NULL AND open;
-- An agent's open work (workload counts, redistribution, rebalancing).
CREATE INDEX assignments_by_agent ON assignments (agent_id) WHERE open;

CREATE TABLE escalations (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id    uuid        NOT NULL,
    from_agent   uuid,
    -- NULL when no agent of the escalation tier was free.
    to_agent     uuid,
    reason       text        NOT NULL,
    escalated_at timestamptz NOT NULL
);
CREATE INDEX escalations_by_ticket ON escalations (ticket_id, escalated_at);
