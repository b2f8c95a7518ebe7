-- agents.open_tickets kept by the database: after every statement that
-- inserts, changes or deletes assignments, each agent's count moves by the
-- statement's net change to their open assignments (rows leaving an agent
-- or closing: -1; rows arriving or reopening: +1). It stays "always the
-- count of this agent's open assignments" in the writing transaction, as
-- before, without recounting.
--
-- Why: the service recounted (count(*) over the agent's open assignments)
-- after each change, under the decision lock. At 500 open tickets an agent
-- that took 17 ms a call and grew with the workload; under intake it was
-- the largest single cost in the assignment database and held the lock
-- that every decision and every new ticket waits for. Reconciliation still
-- recounts everyone against the truth and reports any drift.
CREATE FUNCTION assignments_workload() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids    uuid[];
    deltas int[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(agent_id ORDER BY agent_id), array_agg(n ORDER BY agent_id)
        INTO ids, deltas
        FROM (SELECT agent_id, count(*)::int AS n FROM new_rows
              WHERE agent_id IS NOT NULL AND open GROUP BY agent_id) d;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(agent_id ORDER BY agent_id), array_agg(n ORDER BY agent_id)
        INTO ids, deltas
        FROM (SELECT agent_id, sum(n)::int AS n
              FROM (SELECT agent_id, 1 AS n FROM new_rows
                    WHERE agent_id IS NOT NULL AND open
                    UNION ALL
                    SELECT agent_id, -1 FROM old_rows
                    WHERE agent_id IS NOT NULL AND open) c
              GROUP BY agent_id HAVING sum(n) <> 0) d;
    ELSE
        SELECT array_agg(agent_id ORDER BY agent_id), array_agg(-n ORDER BY agent_id)
        INTO ids, deltas
        FROM (SELECT agent_id, count(*)::int AS n FROM old_rows
              WHERE agent_id IS NOT NULL AND open GROUP BY agent_id) d;
    END IF;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    -- Rows locked in one order: writers holding the decision lock shared
    -- (answers recorded side by side) cannot deadlock on agents. Only
    -- agents whose count changes are locked, so answers that confirm a
    -- decision do not wait for each other.
    PERFORM 1 FROM agents WHERE account_id = ANY (ids) ORDER BY account_id FOR UPDATE;
    UPDATE agents a SET open_tickets = a.open_tickets + d.n
    FROM unnest(ids, deltas) AS d(id, n)
    WHERE a.account_id = d.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER assignments_workload_insert AFTER INSERT ON assignments
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION assignments_workload();
CREATE TRIGGER assignments_workload_update AFTER UPDATE ON assignments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION assignments_workload();
CREATE TRIGGER assignments_workload_delete AFTER DELETE ON assignments
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION assignments_workload();

-- Start from the truth.
UPDATE agents a
SET open_tickets = (SELECT count(*) FROM assignments s
                    WHERE s.agent_id = a.account_id AND s.open)::int;
