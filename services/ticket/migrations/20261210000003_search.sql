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
-- SearchTickets reads them to estimate how many texts a query matches
-- (domain::search::LexemeStats); a larger list than the default 1,000
-- tells common words from rare ones further down the long tail.
ALTER TABLE tickets ALTER COLUMN search SET STATISTICS 1000;
ALTER TABLE ticket_messages ALTER COLUMN search SET STATISTICS 1000;
