-- Attachments: metadata here, bytes in object storage under `object_key`
-- (docs/attachments.md). A row exists only for a complete object: the
-- object is written first, the row committed after; an object without a row
-- (a crash in between) is deleted by the attachment sweeper after an hour.

CREATE TABLE ticket_attachments (
    id           uuid        PRIMARY KEY,
    ticket_id    uuid        NOT NULL REFERENCES tickets (id),
    -- Set once, when PostMessage links it; NULL while ticket-level.
    message_id   uuid        REFERENCES ticket_messages (id),
    uploader_id  uuid        NOT NULL,
    file_name    text        NOT NULL CHECK (length(file_name) BETWEEN 1 AND 200),
    content_type text        NOT NULL,
    size_bytes   bigint      NOT NULL CHECK (size_bytes > 0),
    sha256       bytea       NOT NULL CHECK (length(sha256) = 32),
    object_key   text        NOT NULL UNIQUE,
    -- Staff-only: uploaded as internal, or linked to an internal note.
    internal     boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL
);

-- ListAttachments (per ticket, oldest first, keyset) and the per-ticket count.
CREATE INDEX ticket_attachments_by_ticket ON ticket_attachments (ticket_id, created_at, id);
