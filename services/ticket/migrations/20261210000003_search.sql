-- Full-text search over tickets and their messages (SearchTickets,
-- docs/search.md, plans in docs/indexes.md).
--
-- Each text row carries its own tsvector, computed by PostgreSQL in the
-- statement that writes the row (a STORED generated column), so a ticket is
-- findable the moment its transaction commits and no writer can forget it.
-- Subject weighs A and description B; messages C, so a word in the subject
-- ranks above the same word in a reply. The 'english' configuration for
-- everything: tickets carry no language yet.
--
-- The vectors sit on rows that are written once: a ticket's subject and
-- description never change, a message never changes. Status, assignee and
-- other updates leave the vector as it is.

ALTER TABLE tickets ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', subject), 'A') ||
    setweight(to_tsvector('english', description), 'B')
) STORED;

ALTER TABLE ticket_messages ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', body), 'C')
) STORED;

-- GIN with a small pending list: inserts stay cheap (they append to the
-- list), while every search, which must also read the unmerged list, never
-- reads more than 512 kB of it.
CREATE INDEX tickets_search ON tickets USING gin (search)
    WITH (gin_pending_list_limit = 512);
CREATE INDEX ticket_messages_search ON ticket_messages USING gin (search)
    WITH (gin_pending_list_limit = 512);

-- How many texts (ticket texts plus messages) a query matches, as the
-- planner estimates it from the lexeme statistics ANALYZE keeps (the most
-- common lexemes and their frequencies): costs a plan, reads no row.
-- (VOLATILE: PostgreSQL allows EXPLAIN only there.)
-- SearchTickets ranks every match when this is small and otherwise lists
-- matches newest first (docs/search.md).
CREATE FUNCTION ticket_search_estimate(q tsquery) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tickets_plan json;
    messages_plan json;
BEGIN
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM tickets WHERE search @@ %L::tsquery', q)
        INTO tickets_plan;
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM ticket_messages WHERE search @@ %L::tsquery', q)
        INTO messages_plan;
    RETURN (tickets_plan -> 0 -> 'Plan' ->> 'Plan Rows')::bigint
         + (messages_plan -> 0 -> 'Plan' ->> 'Plan Rows')::bigint;
END
$$;
