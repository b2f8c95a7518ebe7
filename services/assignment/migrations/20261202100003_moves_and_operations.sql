-- Long work made durable. A decision is committed first, as the projection
-- it leads to plus a pending move; the ticket service is told afterwards,
-- by a worker that retries with the move's own request id (so a retry after
-- a timeout is the same move, never a second one) and that any replica
-- resumes after a restart. Operations (a redistribution, a rebalance) are
-- intents recorded by an RPC and carried out one decision at a time.

CREATE TABLE operations (
    id          uuid        PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('redistribute', 'rebalance')),
    -- Redistribute: the agent whose open tickets go to others.
    agent_id    uuid        REFERENCES agents (account_id),
    done        boolean     NOT NULL DEFAULT false,
    -- Moves decided so far.
    moved       integer     NOT NULL DEFAULT 0,
    -- The replica working on it holds it until then (renewed each step;
    -- a crashed replica's operation is resumed by another once it lapses).
    lease_until timestamptz NOT NULL DEFAULT '-infinity',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX operations_running ON operations (created_at) WHERE NOT done;

CREATE TABLE moves (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id    uuid        NOT NULL REFERENCES assignments (ticket_id),
    -- The holder in the ticket service when decided (NULL: nobody).
    from_agent   uuid,
    -- NULL: leave the ticket unassigned (it waits).
    to_agent     uuid,
    -- Sent to the ticket service on every attempt: derived from the
    -- decision, never from the attempt.
    request_id   uuid        NOT NULL UNIQUE,
    operation_id uuid        REFERENCES operations (id),
    attempts     integer     NOT NULL DEFAULT 0,
    -- Not attempted before (a lease while in flight, then the backoff).
    not_before   timestamptz NOT NULL DEFAULT '-infinity',
    created_at   timestamptz NOT NULL,
    -- Set once the ticket service answered; kept a day for retried requests.
    done_at      timestamptz
);
-- At most one pending move per ticket: moves of one ticket never overtake.
CREATE UNIQUE INDEX moves_pending_ticket ON moves (ticket_id) WHERE done_at IS NULL;
CREATE INDEX moves_pending ON moves (not_before, id) WHERE done_at IS NULL;
CREATE INDEX moves_of_operation ON moves (operation_id) WHERE operation_id IS NOT NULL;
CREATE INDEX moves_done ON moves (done_at) WHERE done_at IS NOT NULL;
