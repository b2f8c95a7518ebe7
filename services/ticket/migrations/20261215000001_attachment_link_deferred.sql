-- PostMessage links a message's attachments before the statement that writes
-- the message itself (the links' answers go into that statement's event), so
-- the reference from an attachment to its message is checked at commit.
ALTER TABLE ticket_attachments
    ALTER CONSTRAINT ticket_attachments_message_id_fkey DEFERRABLE INITIALLY DEFERRED;
