-- Events are retried and can arrive out of order: each assignment remembers
-- the newest event (or ticket-service answer) applied to it, so an older
-- state-setting event cannot overwrite newer state. Ordered by
-- (last_event_at, last_event_id): the event id (UUIDv7) breaks ties between
-- events of one instant; the nil id marks state taken from a ticket-service
-- answer (AssignTicket, GetTicket, ListTickets), which an event of the same
-- instant overrides.
ALTER TABLE assignments
    ADD COLUMN last_event_at timestamptz,
    ADD COLUMN last_event_id uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
