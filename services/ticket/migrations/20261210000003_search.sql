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

-- The lexeme statistics ANALYZE keeps for a tsvector column: the most
-- common lexemes (ten per statistics-target unit) and their frequencies.
-- A larger list than the default 1,000 lets ticket_search_estimate tell
-- common words from rare ones further down the long tail.
ALTER TABLE tickets ALTER COLUMN search SET STATISTICS 1000;
ALTER TABLE ticket_messages ALTER COLUMN search SET STATISTICS 1000;

-- About how many rows of `tbl` ('tickets' or 'ticket_messages') a query
-- matches, from those statistics; reads no row. SearchTickets ranks every
-- match when the sum is small, and otherwise lists matches newest first,
-- walking an index for a table whose matches are many and reading the GIN
-- index for one whose matches are few (docs/search.md).
--
-- A word among the most common lexemes counts with its frequency, any
-- other word as rare (0): it is rarer than the 10,000 most common ones.
-- (The planner's own estimate guesses up to 0.5% of the table for such a
-- word.) Words that must all match (AND, phrases) multiply, as if
-- independent, like the planner's; with an OR, their counts add up.
-- Excluded words (-word) do not count.
CREATE FUNCTION ticket_search_estimate(q tsquery, tbl text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    WITH words AS (
        SELECT DISTINCT m[1] AS word
        FROM regexp_matches(querytree(q), '''((?:[^'']|'''')*)''', 'g') AS m
    ),
    stats AS (
        SELECT c.reltuples, s.most_common_elems::text::text[] AS elems,
               s.most_common_elem_freqs AS freqs
        FROM pg_stats s
        JOIN pg_class c ON c.relname = s.tablename
                       AND c.relnamespace = to_regnamespace(s.schemaname)
        WHERE s.schemaname = current_schema() AND s.tablename = tbl AND s.attname = 'search'
    ),
    per_table AS (
        SELECT st.reltuples,
               CASE WHEN strpos(querytree(q), '|') > 0
                    THEN sum(coalesce(st.freqs[array_position(st.elems, w.word)], 0))
                    -- A product of frequencies; any rare word makes it 0.
                    ELSE CASE WHEN bool_and(array_position(st.elems, w.word) IS NOT NULL)
                              THEN exp(sum(ln(st.freqs[array_position(st.elems, w.word)])))
                              ELSE 0 END
               END AS share
        FROM stats st CROSS JOIN words w
        GROUP BY st.reltuples
    )
    SELECT coalesce(sum(reltuples * least(share, 1)), 0)::bigint FROM per_table
$$;
