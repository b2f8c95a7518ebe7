-- The staff dashboard (GetTicketStats, storage/stats.rs) reads every ticket
-- created in a range. This index holds every column it reads, so each of its
-- passes is an index-only scan of the range instead of a heap visit per
-- ticket (docs/indexes.md has the plans). status, assignee_id, first
-- response, resolution and rating change on writes that already touch other
-- indexes, so the index costs those updates little more.
CREATE INDEX tickets_stats ON tickets (created_at)
    INCLUDE (status, priority, category_id, assignee_id, first_response_at, resolved_at, rating);
