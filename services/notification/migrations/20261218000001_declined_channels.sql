-- The channels a notification was not sent on because its recipient's
-- preferences said no, as bits (1 email, 2 push), on the notification
-- itself. They were a `skipped` delivery row each: a new ticket told to 200
-- staff wrote 200 such rows and their index entries, read by nothing but
-- ListDeliveries, which now reads them from here. Rows written before stay
-- as they are; ListDeliveries shows both.
ALTER TABLE notifications ADD COLUMN declined smallint NOT NULL DEFAULT 0;
