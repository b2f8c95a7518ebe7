-- 1,000,000 synthetic tickets spread over a year, for query plans (scripts/explain.sh).
SET synchronous_commit = off;
INSERT INTO tickets (id, number, human_id, user_id, ride_id, category_id, subject, description, priority, status, assignee_id, created_at, updated_at)
SELECT gen_random_uuid(), n, 'TKT-' || lpad(n::text, 9, '0'),
       ('0a000000-0000-4000-8000-' || lpad((n % 10000)::text, 12, '0'))::uuid,
       CASE WHEN n % 2 = 0 THEN ('0d000000-0000-4000-8000-' || lpad((n % 200000)::text, 12, '0'))::uuid END,
       (ARRAY['ride_issue','driver_issue','payment_issue','account','vehicle','lost_item','gps_location','other'])[1 + n % 8],
       'Subject ' || n, 'Description of ticket ' || n,
       (ARRAY['low','medium','high','urgent'])[1 + (n / 7) % 4],
       (ARRAY['open','in_progress','waiting_user','resolved','closed','closed','closed','resolved'])[1 + (n / 3) % 8],
       CASE WHEN n % 5 <> 0 THEN ('0b000000-0000-4000-8000-' || lpad((n % 50)::text, 12, '0'))::uuid END,
       timestamptz '2025-11-25' + (n * interval '31 seconds'),
       timestamptz '2025-11-25' + (n * interval '31 seconds')
FROM generate_series(1, 1000000) AS n;
ANALYZE tickets;
