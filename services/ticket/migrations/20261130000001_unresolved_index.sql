-- ListTickets with `open` (or any set of not yet resolved statuses): the queue
-- staff work from. Partial, so it holds only the few unresolved tickets among
-- millions, and in list order, so a page is a range scan (docs/indexes.md).
CREATE INDEX tickets_unresolved ON tickets (created_at DESC, id DESC)
    WHERE status IN ('open', 'in_progress', 'waiting_user');
