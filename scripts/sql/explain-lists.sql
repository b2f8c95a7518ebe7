SET plan_cache_mode = force_custom_plan;
PREPARE list(uuid, text, text, text, uuid, uuid, timestamptz, timestamptz, timestamptz, uuid, bigint) AS
SELECT id, human_id, user_id, ride_id, category_id, subject, description, priority,
       status, assignee_id, rating, rating_feedback, first_response_at, resolved_at,
       closed_at, rated_at, created_at, updated_at, version
FROM tickets
WHERE ($1::uuid IS NULL OR user_id = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR priority = $3)
  AND ($4::text IS NULL OR category_id = $4)
  AND ($5::uuid IS NULL OR assignee_id = $5)
  AND ($6::uuid IS NULL OR ride_id = $6)
  AND ($7::timestamptz IS NULL OR created_at >= $7)
  AND ($8::timestamptz IS NULL OR created_at < $8)
  AND ($9::timestamptz IS NULL OR (created_at, id) < ($9, $10::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $11;
\echo '### staff, no filter, first page'
EXPLAIN (ANALYZE, COSTS OFF, TIMING ON, SUMMARY ON) EXECUTE list(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 21);
\echo '### a user''s own tickets'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE list('0a000000-0000-4000-8000-000000000042', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 21);
\echo '### staff: status = open'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE list(NULL, 'open', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 21);
\echo '### staff: assignee'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE list(NULL, NULL, NULL, NULL, '0b000000-0000-4000-8000-000000000007', NULL, NULL, NULL, NULL, NULL, 21);
\echo '### staff: ride'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE list(NULL, NULL, NULL, NULL, NULL, '0d000000-0000-4000-8000-000000001234', NULL, NULL, NULL, NULL, 21);
\echo '### staff: category + priority'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE list(NULL, NULL, 'urgent', 'payment_issue', NULL, NULL, NULL, NULL, NULL, NULL, 21);
\echo '### staff: created range'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE list(NULL, NULL, NULL, NULL, NULL, NULL, '2026-03-01', '2026-03-02', NULL, NULL, 21);
\echo '### get by human id'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) SELECT * FROM tickets WHERE (NULL::uuid IS NOT NULL AND id = NULL) OR ('TKT-000123456'::text IS NOT NULL AND human_id = 'TKT-000123456');
