-- 1,000,000 synthetic tickets spread over a year, for query plans (scripts/explain.sh)
-- and the read benchmarks (tests/bench, mode tickets). Non-open tickets have a
-- first reply (0-14 h after creation), resolved and closed ones a resolution
-- (0-3.5 days), and a third of those a rating, so the dashboard has figures.
SET synchronous_commit = off;
INSERT INTO tickets (id, number, human_id, user_id, ride_id, category_id, subject, description, priority, status, assignee_id,
                     rating, first_response_at, resolved_at, rated_at, created_at, updated_at)
SELECT gen_random_uuid(), n, 'TKT-' || lpad(n::text, 9, '0'),
       ('0a000000-0000-4000-8000-' || lpad((n % 10000)::text, 12, '0'))::uuid,
       CASE WHEN n % 2 = 0 THEN ('0d000000-0000-4000-8000-' || lpad((n % 200000)::text, 12, '0'))::uuid END,
       (ARRAY['ride_issue','driver_issue','payment_issue','account','vehicle','lost_item','gps_location','other'])[1 + n % 8],
       'Subject ' || n, 'Description of ticket ' || n,
       (ARRAY['low','medium','high','urgent'])[1 + (n / 7) % 4],
       status,
       CASE WHEN n % 5 <> 0 THEN ('0b000000-0000-4000-8000-' || lpad((n % 50)::text, 12, '0'))::uuid END,
       CASE WHEN resolved AND n % 3 = 0 THEN 1 + (n / 3) % 5 END,
       CASE WHEN status <> 'open' THEN created + (n::bigint * 7919 % 50000) * interval '1 second' END,
       CASE WHEN resolved THEN created + (50000 + n::bigint * 104729 % 250000) * interval '1 second' END,
       CASE WHEN resolved AND n % 3 = 0 THEN created + interval '4 days' END,
       created, created
FROM (SELECT n, timestamptz '2025-11-25' + (n * interval '31 seconds') AS created,
             (ARRAY['open','in_progress','waiting_user','resolved','closed','closed','closed','resolved'])[1 + (n / 3) % 8] AS status,
             (1 + (n / 3) % 8) IN (4, 5, 6, 7, 8) AS resolved
      FROM generate_series(1, 1000000) AS n) s;
ANALYZE tickets;
