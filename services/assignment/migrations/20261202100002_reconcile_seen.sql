-- Reconciliation pages through the ticket service's open tickets. Each page
-- notes the tickets it listed here (per pass), so rows open here but absent
-- from the whole listing are found with one anti-join at the end, without
-- holding a million ids in memory. Scratch data, deleted after each pass
-- (and, for a pass killed midway, by a later pass once an hour old):
-- unlogged, as a lost row only costs one pass.
CREATE UNLOGGED TABLE reconcile_seen (
    pass      uuid        NOT NULL,
    ticket_id uuid        NOT NULL,
    noted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pass, ticket_id)
);
