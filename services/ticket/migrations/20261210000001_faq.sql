-- The FAQ (support.v1.FaqService, docs/faq.md): entries with their search
-- index, sharded per-day view counters, one vote per person per entry, and
-- the analytics the scheduler's `update_faq_analytics` job folds.
--
-- pg_trgm (contrib) gives the typo-tolerant fallback. CREATE EXTENSION needs
-- a superuser or, from PostgreSQL 13, a database owner (pg_trgm is a
-- trusted extension); where the migrating role has neither, an operator
-- creates it beforehand and this line is a no-op (docs/faq.md).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- An entry's language code → the text-search configuration that stems it;
-- 'simple' (no stemming, no stop words) where PostgreSQL ships none.
-- IMMUTABLE so the stored tsvector below may use it: the mapping never
-- changes under existing rows (changing it means a new function and a
-- rewrite of the column).
CREATE FUNCTION faq_ts_config(language text) RETURNS regconfig
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (CASE language
        WHEN 'ar' THEN 'arabic'     WHEN 'hy' THEN 'armenian'  WHEN 'eu' THEN 'basque'
        WHEN 'ca' THEN 'catalan'    WHEN 'da' THEN 'danish'    WHEN 'nl' THEN 'dutch'
        WHEN 'en' THEN 'english'    WHEN 'fi' THEN 'finnish'   WHEN 'fr' THEN 'french'
        WHEN 'de' THEN 'german'     WHEN 'el' THEN 'greek'     WHEN 'hi' THEN 'hindi'
        WHEN 'hu' THEN 'hungarian'  WHEN 'id' THEN 'indonesian' WHEN 'ga' THEN 'irish'
        WHEN 'it' THEN 'italian'    WHEN 'lt' THEN 'lithuanian' WHEN 'ne' THEN 'nepali'
        WHEN 'no' THEN 'norwegian'  WHEN 'nb' THEN 'norwegian' WHEN 'nn' THEN 'norwegian'
        WHEN 'pt' THEN 'portuguese' WHEN 'ro' THEN 'romanian'  WHEN 'ru' THEN 'russian'
        WHEN 'sr' THEN 'serbian'    WHEN 'es' THEN 'spanish'   WHEN 'sv' THEN 'swedish'
        WHEN 'ta' THEN 'tamil'      WHEN 'tr' THEN 'turkish'   WHEN 'yi' THEN 'yiddish'
        ELSE 'simple' END)::regconfig
$$;

CREATE TABLE faqs (
    id                uuid        PRIMARY KEY,
    -- The short id the original REST API used; accepted wherever `id` is.
    number            bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    question          text        NOT NULL,
    answer            text        NOT NULL,
    category_id       text        NOT NULL REFERENCES categories (id),
    -- ISO 639 primary subtag, lowercase (api/faqs/requests.rs normalises).
    language          text        NOT NULL CHECK (language ~ '^[a-z]{2,3}$'),
    published         boolean     NOT NULL DEFAULT false,
    sort_order        integer     NOT NULL DEFAULT 0,
    -- Current votes, kept in each vote's transaction (it holds this row's
    -- lock, so the counts are exact; see storage/faqs.rs `vote`).
    helpful_count     bigint      NOT NULL DEFAULT 0 CHECK (helpful_count >= 0),
    not_helpful_count bigint      NOT NULL DEFAULT 0 CHECK (not_helpful_count >= 0),
    -- Raised by every admin change: the events' snapshot version.
    version           bigint      NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    -- The question outweighs the answer (A > B in ts_rank), each stemmed in
    -- the entry's own language. Kept by PostgreSQL on every write.
    search            tsvector    GENERATED ALWAYS AS (
        setweight(to_tsvector(faq_ts_config(language), question), 'A') ||
        setweight(to_tsvector(faq_ts_config(language), answer), 'B')
    ) STORED
);
CREATE INDEX faqs_search ON faqs USING gin (search);
-- The fallback: word similarity of the query to a question (`<%`).
CREATE INDEX faqs_question_trgm ON faqs USING gin (question gin_trgm_ops);
-- ListFaqs' keyset order, for everyone and for admins asking for drafts.
CREATE INDEX faqs_published_order ON faqs (sort_order, id) WHERE published;
CREATE INDEX faqs_order ON faqs (sort_order, id);

-- Views per entry, day (UTC) and shard. GetFaq upserts one row of 16 at
-- random (ON CONFLICT DO UPDATE views = views + 1), so thousands of
-- concurrent readers of one entry queue on 16 row locks held for a
-- statement each, not on one; none is lost, and the count is the exact sum.
-- ComputeFaqAnalytics compacts past days' shards into shard 0.
-- No foreign key on purpose: each insert would take a KEY SHARE lock on the
-- faqs row, and many concurrent lockers of one row is the hot spot this
-- table avoids (entries are never deleted).
CREATE TABLE faq_views (
    faq_id uuid     NOT NULL,
    day    date     NOT NULL,
    shard  smallint NOT NULL CHECK (shard >= 0),
    views  bigint   NOT NULL CHECK (views >= 0),
    PRIMARY KEY (faq_id, day, shard)
);
CREATE INDEX faq_views_by_day ON faq_views (day);

-- One vote per person per entry: changeable, withdrawable. `day` (UTC) is
-- when it was last cast or changed, for the analytics windows.
CREATE TABLE faq_votes (
    faq_id   uuid        NOT NULL REFERENCES faqs (id),
    user_id  uuid        NOT NULL,
    helpful  boolean     NOT NULL,
    day      date        NOT NULL,
    voted_at timestamptz NOT NULL,
    PRIMARY KEY (faq_id, user_id)
);
CREATE INDEX faq_votes_by_day ON faq_votes (day);

-- The last analytics run's figures per entry (admins see them on `Faq`).
CREATE TABLE faq_analytics (
    faq_id                uuid        PRIMARY KEY REFERENCES faqs (id),
    as_of                 date        NOT NULL,
    views_7_days          bigint      NOT NULL,
    views_30_days         bigint      NOT NULL,
    helpful_7_days        bigint      NOT NULL,
    helpful_30_days       bigint      NOT NULL,
    not_helpful_7_days    bigint      NOT NULL,
    not_helpful_30_days   bigint      NOT NULL,
    run_id                uuid        NOT NULL,
    computed_at           timestamptz NOT NULL
);
