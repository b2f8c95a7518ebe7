-- Ticket service schema: categories, tickets, messages.

CREATE TABLE categories (
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    active      boolean     NOT NULL DEFAULT true,
    sort_order  integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The original's categories, plus the ones its operators kept asking for.
INSERT INTO categories (id, name, description, sort_order) VALUES
    ('ride_issue',    'Ride Issue',     'Problems during or about a ride',           10),
    ('driver_issue',  'Driver Issue',   'Driver behaviour, safety or conduct',        20),
    ('payment_issue', 'Payment Issue',  'Charges, refunds, receipts and fares',       30),
    ('account',       'Account',        'Sign-in, profile and account settings',      40),
    ('vehicle',       'Vehicle',        'Vehicle condition, cleanliness or mismatch', 50),
    ('lost_item',     'Lost Item',      'Items left behind in a vehicle',             60),
    ('gps_location',  'GPS/Location',   'Wrong pickup, route or location problems',   70),
    ('other',         'Other',          'Anything else',                              80);

-- n for the human id (domain::ticket_number); never reused.
CREATE SEQUENCE ticket_number_seq AS bigint MINVALUE 0 START WITH 0;

CREATE TABLE tickets (
    id                uuid        PRIMARY KEY,
    number            bigint      NOT NULL UNIQUE,
    human_id          text        NOT NULL UNIQUE,
    user_id           uuid        NOT NULL,
    ride_id           uuid,
    category_id       text        NOT NULL REFERENCES categories (id),
    subject           text        NOT NULL,
    description       text        NOT NULL,
    priority          text        NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    status            text        NOT NULL CHECK (status IN ('open', 'in_progress', 'waiting_user', 'resolved', 'closed')),
    assignee_id       uuid,
    rating            smallint    CHECK (rating BETWEEN 1 AND 5),
    rating_feedback   text,
    first_response_at timestamptz,
    resolved_at       timestamptz,
    closed_at         timestamptz,
    rated_at          timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    version           bigint      NOT NULL DEFAULT 1
);

-- One index per list filter, each ending in the list order (created_at, id)
-- so a filtered page is an index range scan with no sort (docs/indexes.md).
CREATE INDEX tickets_by_created  ON tickets (created_at DESC, id DESC);
CREATE INDEX tickets_by_user     ON tickets (user_id, created_at DESC, id DESC);
CREATE INDEX tickets_by_status   ON tickets (status, created_at DESC, id DESC);
CREATE INDEX tickets_by_assignee ON tickets (assignee_id, created_at DESC, id DESC) WHERE assignee_id IS NOT NULL;
CREATE INDEX tickets_by_category ON tickets (category_id, created_at DESC, id DESC);
CREATE INDEX tickets_by_priority ON tickets (priority, created_at DESC, id DESC);
CREATE INDEX tickets_by_ride     ON tickets (ride_id, created_at DESC, id DESC) WHERE ride_id IS NOT NULL;

CREATE TABLE ticket_messages (
    id          uuid        PRIMARY KEY,
    ticket_id   uuid        NOT NULL REFERENCES tickets (id),
    author_id   uuid        NOT NULL,
    author_role text        NOT NULL CHECK (author_role IN ('user', 'staff')),
    body        text        NOT NULL,
    internal    boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL
);
CREATE INDEX ticket_messages_by_ticket ON ticket_messages (ticket_id, created_at, id);
