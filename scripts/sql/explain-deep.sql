SELECT created_at AS c, id AS i FROM tickets ORDER BY created_at DESC, id DESC OFFSET 20000 LIMIT 1 \gset
PREPARE deep(uuid, text, timestamptz, uuid, bigint) AS
SELECT id FROM tickets
WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::text IS NULL OR status = $2)
  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
ORDER BY created_at DESC, id DESC LIMIT $5;
\echo '### page 1,000 (cursor after 20,000 rows), no filter'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE deep(NULL, NULL, :'c', :'i', 21);
\echo '### page 1,000, status = closed'
SELECT created_at AS c2, id AS i2 FROM tickets WHERE status = 'closed' ORDER BY created_at DESC, id DESC OFFSET 20000 LIMIT 1 \gset
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE deep(NULL, 'closed', :'c2', :'i2', 21);
