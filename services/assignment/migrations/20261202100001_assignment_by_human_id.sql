-- AssignTicket accepts a ticket's human id (TKT-QHB407) as well as its UUID;
-- human ids are stored in their canonical uppercase spelling.
CREATE INDEX assignments_by_human_id ON assignments (human_id);
