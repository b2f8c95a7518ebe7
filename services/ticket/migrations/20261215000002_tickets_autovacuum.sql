-- Statistics, listings and search read recent tickets through index-only
-- scans, which skip the heap only for pages the visibility map marks
-- all-visible; every insert or update clears that mark until a vacuum sets
-- it again. With the default thresholds (20 % of the table) a desk of a
-- million tickets is vacuumed after ~200,000 changes, so the recent range
-- that dashboards read is mostly "not all-visible": the statistics statement
-- over 30 days (253,000 tickets) measured 472 ms with 305,000 heap fetches
-- after 60,000 updates, 289 ms with none after a vacuum (docs/indexes.md).
-- Vacuum after ~1 % instead; a vacuum skips all-visible pages, so frequent
-- runs are cheap.
ALTER TABLE tickets SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_insert_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.02
);
