//! The FAQ tables: `faqs`, `faq_views` (sharded per-day counters),
//! `faq_votes` and `faq_analytics` (migrations/20261210000001_faq.sql).
//!
//! Exact counts without a hot row:
//! - a view is one upsert of one of [`VIEW_SHARDS`] rows of (entry, day),
//!   committed on its own; concurrent readers of one entry spread over the
//!   shards, and the count shown is the sum of the rows;
//! - a vote locks its entry's row (votes on one entry serialize, which is
//!   what makes the kept counts exact: the previous vote is read under the
//!   lock), upserts the person's vote and applies the difference to the
//!   counts, all in the caller's transaction.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::stored;
use crate::domain::{
    CategoryId, Text,
    faq::{Faq, FaqAnalytics, FaqKey, Language, NewFaq, Question, SearchQuery, Vote},
};

/// Rows one entry's views of one day spread over. 16 makes the wait on a
/// shard's row lock a sixteenth of one hot row's; more would only make the
/// sum longer.
pub const VIEW_SHARDS: i16 = 16;

/// The word similarity (0-1) from which a question is "like" the query in
/// the fallback: low enough for one swapped or missing letter in a short
/// word, high enough that unrelated questions stay out.
const SIMILARITY: &str = "0.4";

/// The two halves of a [`FaqKey`] as query parameters (one is NULL).
fn key(k: FaqKey) -> (Option<Uuid>, Option<i64>) {
    match k {
        FaqKey::Id(id) => (Some(id), None),
        FaqKey::Number(n) => (None, Some(n)),
    }
}

/// Who reads: their account (for `my_vote`) and whether they see drafts
/// and analytics (admins).
#[derive(Clone, Copy, Debug)]
pub struct Reader {
    pub account: Option<Uuid>,
    pub admin: bool,
}

struct Row {
    id: Uuid,
    number: i64,
    question: String,
    answer: String,
    category_id: String,
    language: String,
    published: bool,
    sort_order: i32,
    helpful_count: i64,
    not_helpful_count: i64,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    view_count: i64,
    my_vote: Option<bool>,
    a_as_of: Option<NaiveDate>,
    a_views_7: Option<i64>,
    a_views_30: Option<i64>,
    a_helpful_7: Option<i64>,
    a_helpful_30: Option<i64>,
    a_not_helpful_7: Option<i64>,
    a_not_helpful_30: Option<i64>,
    a_computed_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for Faq {
    type Error = sqlx::Error;
    fn try_from(r: Row) -> Result<Self, Self::Error> {
        let analytics = match (r.a_as_of, r.a_computed_at) {
            (Some(as_of), Some(computed_at)) => Some(FaqAnalytics {
                as_of,
                views_7: r.a_views_7.unwrap_or_default(),
                views_30: r.a_views_30.unwrap_or_default(),
                helpful_7: r.a_helpful_7.unwrap_or_default(),
                helpful_30: r.a_helpful_30.unwrap_or_default(),
                not_helpful_7: r.a_not_helpful_7.unwrap_or_default(),
                not_helpful_30: r.a_not_helpful_30.unwrap_or_default(),
                computed_at,
            }),
            _ => None,
        };
        Ok(Faq {
            id: r.id,
            number: r.number,
            question: stored("faq question", &r.question, Question::parse)?,
            answer: stored("faq answer", &r.answer, Text::parse)?,
            category_id: stored("faq category", &r.category_id, CategoryId::parse)?,
            language: stored("faq language", &r.language, |l| {
                Language::parse_optional(l).and_then(|l| l.ok_or_else(String::new))
            })?,
            published: r.published,
            sort_order: r.sort_order,
            view_count: r.view_count,
            helpful_count: r.helpful_count,
            not_helpful_count: r.not_helpful_count,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            my_vote: r
                .my_vote
                .map(|h| if h { Vote::Helpful } else { Vote::NotHelpful }),
            analytics,
        })
    }
}

/// (Every `f` column is marked non-null: sqlx cannot tell through the
/// LEFT JOIN that only `a`'s columns may be NULL.)
/// `SELECT` of whole entries (`f`) with their view count, the reader's vote
/// (`$1`, an account or NULL) and, when `$2` (admin), their analytics; the
/// tail (`FROM`, filters, order) uses `$3` on.
macro_rules! select_faqs {
    ($tail:tt, $($arg:expr),* $(,)?) => {
        sqlx::query_as!(
            Row,
            r#"SELECT f.id AS "id!", f.number AS "number!", f.question AS "question!",
                      f.answer AS "answer!", f.category_id AS "category_id!",
                      f.language AS "language!", f.published AS "published!",
                      f.sort_order AS "sort_order!", f.helpful_count AS "helpful_count!",
                      f.not_helpful_count AS "not_helpful_count!", f.version AS "version!",
                      f.created_at AS "created_at!", f.updated_at AS "updated_at!",
                      (SELECT coalesce(sum(v.views), 0) FROM faq_views v
                        WHERE v.faq_id = f.id)::bigint AS "view_count!",
                      (SELECT w.helpful FROM faq_votes w
                        WHERE w.faq_id = f.id AND w.user_id = $1) AS "my_vote?",
                      a.as_of AS "a_as_of?", a.views_7_days AS "a_views_7?",
                      a.views_30_days AS "a_views_30?", a.helpful_7_days AS "a_helpful_7?",
                      a.helpful_30_days AS "a_helpful_30?",
                      a.not_helpful_7_days AS "a_not_helpful_7?",
                      a.not_helpful_30_days AS "a_not_helpful_30?",
                      a.computed_at AS "a_computed_at?"
               FROM faqs f LEFT JOIN faq_analytics a ON a.faq_id = f.id AND $2::boolean "#
                + $tail,
            $($arg),*
        )
    };
}

/// The entry `k` names, if `reader` may see it (admins see drafts).
pub async fn get<'c>(
    db: impl PgExecutor<'c>,
    k: FaqKey,
    reader: Reader,
) -> sqlx::Result<Option<Faq>> {
    let (id, number) = key(k);
    select_faqs!(
        "WHERE (f.id = $3 OR f.number = $4) AND (f.published OR $2)",
        reader.account,
        reader.admin,
        id,
        number,
    )
    .fetch_optional(db)
    .await?
    .map(Faq::try_from)
    .transpose()
}

/// Entries by id, in no particular order (search pages read their rows so).
/// With `generation` (a kept search page's, api/faqs/cache.rs), only while
/// the search generation is still that: nothing when an edit has raised it
/// since.
pub async fn get_many<'c>(
    db: impl PgExecutor<'c>,
    ids: &[Uuid],
    reader: Reader,
    generation: Option<i64>,
) -> sqlx::Result<Vec<Faq>> {
    select_faqs!(
        "WHERE f.id = ANY($3) AND (f.published OR $2)
           AND ($4::bigint IS NULL OR (SELECT generation FROM faq_search_generation) = $4)",
        reader.account,
        reader.admin,
        ids,
        generation,
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Faq::try_from)
    .collect()
}

/// Counts one view of the entry `k` names on `day`, if it is visible
/// (published, or `drafts`); its id, or `None` when there is no such entry.
/// Run on its own (autocommit) so the shard's row lock is held for this one
/// statement only.
pub async fn count_view<'c>(
    db: impl PgExecutor<'c>,
    k: FaqKey,
    drafts: bool,
    day: NaiveDate,
) -> sqlx::Result<Option<Uuid>> {
    let (id, number) = key(k);
    sqlx::query_scalar!(
        "INSERT INTO faq_views (faq_id, day, shard, views)
         SELECT f.id, $4, floor(random() * $5)::smallint, 1 FROM faqs f
          WHERE (f.id = $1 OR f.number = $2) AND (f.published OR $3)
         ON CONFLICT (faq_id, day, shard) DO UPDATE SET views = faq_views.views + 1
         RETURNING faq_id",
        id,
        number,
        drafts,
        day,
        f64::from(VIEW_SHARDS),
    )
    .fetch_optional(db)
    .await
}

/// ListFaqs' filters and keyset position.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub category: Option<CategoryId>,
    pub language: Option<Language>,
    pub drafts: bool,
    /// After this (sort order, id).
    pub after: Option<(i32, Uuid)>,
    pub limit: i64,
}

/// A page of entries by sort order, then id.
pub async fn list<'c>(
    db: impl PgExecutor<'c>,
    q: &ListQuery,
    reader: Reader,
) -> sqlx::Result<Vec<Faq>> {
    select_faqs!(
        "WHERE (f.published OR $3)
           AND ($4::text IS NULL OR f.category_id = $4)
           AND ($5::text IS NULL OR f.language = $5)
           AND ($6::integer IS NULL OR (f.sort_order, f.id) > ($6, $7))
         ORDER BY f.sort_order, f.id
         LIMIT $8",
        reader.account,
        reader.admin,
        q.drafts,
        q.category.as_ref().map(CategoryId::as_str),
        q.language.as_ref().map(Language::as_str),
        q.after.map(|(s, _)| s),
        q.after.map(|(_, id)| id),
        q.limit,
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Faq::try_from)
    .collect()
}

/// SearchFaqs' inputs.
#[derive(Clone, Debug)]
pub struct SearchQueryParams {
    pub query: SearchQuery,
    pub language: Language,
    pub category: Option<CategoryId>,
    pub drafts: bool,
    /// Served by the similarity fallback (full text found nothing).
    pub fuzzy: bool,
    /// After this (score, id) in (score descending, id) order.
    pub after: Option<(f32, Uuid)>,
    pub limit: i64,
}

impl SearchQueryParams {
    /// The first page of `query` over published entries in `language`.
    pub fn first_page(query: SearchQuery, language: Language, limit: i64) -> Self {
        Self {
            query,
            language,
            category: None,
            drafts: false,
            fuzzy: false,
            after: None,
            limit,
        }
    }
}

/// One search hit: the entry's id, score and highlighted snippets.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub id: Uuid,
    pub score: f32,
    pub question_snippet: String,
    pub answer_snippet: String,
}

/// The FAQ's search generation: raised by every change to what a search
/// can return (migration `20261217000001`; api/faqs/cache.rs).
pub async fn search_generation<'c>(db: impl PgExecutor<'c>) -> sqlx::Result<i64> {
    sqlx::query_scalar!("SELECT generation FROM faq_search_generation")
        .fetch_one(db)
        .await
}

/// Full text: the query parsed as web search in the language's
/// configuration, matched through the GIN index, ranked by `ts_rank` (the
/// question weighs more), best first; `ts_headline` (costly: it re-parses
/// the text) runs on the page's rows only, in its single-excerpt mode (the
/// multi-fragment mode costs five times as much per row).
pub async fn search_text<'c>(
    db: impl PgExecutor<'c>,
    p: &SearchQueryParams,
) -> sqlx::Result<Vec<Hit>> {
    sqlx::query_as!(
        Hit,
        r#"WITH q AS (SELECT faq_ts_config($2) AS cfg,
                             websearch_to_tsquery(faq_ts_config($2), $1) AS q),
           ranked AS (
             SELECT f.id, ts_rank(f.search, q.q) AS score
               FROM faqs f, q
              WHERE f.search @@ q.q AND f.language = $2
                AND (f.published OR $3)
                AND ($4::text IS NULL OR f.category_id = $4)),
           page AS (
             SELECT id, score FROM ranked
              WHERE $5::real IS NULL OR (score, $6::uuid) < ($5, id)
              ORDER BY score DESC, id
              LIMIT $7)
           SELECT page.id AS "id!", page.score AS "score!",
                  ts_headline(q.cfg, f.question, q.q, 'HighlightAll=true') AS "question_snippet!",
                  ts_headline(q.cfg, f.answer, q.q, 'MaxWords=30, MinWords=10')
                      AS "answer_snippet!"
             FROM page JOIN faqs f ON f.id = page.id, q
            ORDER BY page.score DESC, page.id"#,
        p.query.as_str(),
        p.language.as_str(),
        p.drafts,
        p.category.as_ref().map(CategoryId::as_str),
        p.after.map(|(s, _)| s),
        p.after.map(|(_, id)| id),
        p.limit,
    )
    .fetch_all(db)
    .await
}

/// The fallback when full text finds nothing: questions holding a stretch
/// similar to the query (`<%`, pg_trgm's word similarity, through the
/// trigram index), most similar first. Snippets are the question and the
/// answer's start: there is no exact match to highlight.
pub async fn search_similar(pool: &sqlx::PgPool, p: &SearchQueryParams) -> sqlx::Result<Vec<Hit>> {
    // pg_trgm's default (0.6) misses a swapped pair of letters in a short
    // word ("refnud" is 0.43 like "refund"); the threshold is a setting, so
    // it is set for this transaction only.
    let mut tx = pool.begin().await?;
    sqlx::query_scalar!(
        "SELECT set_config('pg_trgm.word_similarity_threshold', $1, true)",
        SIMILARITY
    )
    .fetch_one(&mut *tx)
    .await?;
    let hits = sqlx::query_as!(
        Hit,
        r#"WITH ranked AS (
             SELECT f.id, word_similarity($1, f.question) AS score
               FROM faqs f
              WHERE $1 <% f.question AND f.language = $2
                AND (f.published OR $3)
                AND ($4::text IS NULL OR f.category_id = $4)),
           page AS (
             SELECT id, score FROM ranked
              WHERE $5::real IS NULL OR (score, $6::uuid) < ($5, id)
              ORDER BY score DESC, id
              LIMIT $7)
           SELECT page.id AS "id!", page.score AS "score!",
                  f.question AS "question_snippet!",
                  left(f.answer, 200) AS "answer_snippet!"
             FROM page JOIN faqs f ON f.id = page.id
            ORDER BY page.score DESC, page.id"#,
        p.query.as_str(),
        p.language.as_str(),
        p.drafts,
        p.category.as_ref().map(CategoryId::as_str),
        p.after.map(|(s, _)| s),
        p.after.map(|(_, id)| id),
        p.limit,
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(hits)
}

/// Inserts a new draft; its number, or `None` when the category does not
/// exist.
pub async fn insert<'c>(
    db: impl PgExecutor<'c>,
    id: Uuid,
    new: &NewFaq,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "INSERT INTO faqs (id, question, answer, category_id, language, sort_order,
                           created_at, updated_at)
         SELECT $1, $2, $3, c.id, $5, $6, $7, $7 FROM categories c WHERE c.id = $4
         RETURNING number",
        id,
        new.question.as_str(),
        new.answer.as_str(),
        new.category_id.as_str(),
        new.language.as_str(),
        new.sort_order,
        now,
    )
    .fetch_optional(db)
    .await
}

/// Reads an entry (drafts too) and locks its row until the transaction
/// ends: admin edits apply one after the other, and votes on it serialize.
pub async fn lock(conn: &mut PgConnection, k: FaqKey, reader: Reader) -> sqlx::Result<Option<Faq>> {
    let (id, number) = key(k);
    select_faqs!(
        "WHERE (f.id = $3 OR f.number = $4) FOR NO KEY UPDATE OF f",
        reader.account,
        reader.admin,
        id,
        number,
    )
    .fetch_optional(conn)
    .await?
    .map(Faq::try_from)
    .transpose()
}

/// Writes an admin's edit back; `false` when the category does not exist.
pub async fn save(conn: &mut PgConnection, f: &Faq) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE faqs SET question = $2, answer = $3, category_id = c.id, language = $5,
                sort_order = $6, published = $7, version = $8, updated_at = $9
           FROM categories c
          WHERE faqs.id = $1 AND c.id = $4",
        f.id,
        f.question.as_str(),
        f.answer.as_str(),
        f.category_id.as_str(),
        f.language.as_str(),
        f.sort_order,
        f.published,
        f.version,
        f.updated_at,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Casts (or changes) `user`'s vote on the locked entry `faq_id` and moves
/// the counts by the difference; the same vote again changes nothing.
/// The caller holds the entry's row lock ([`lock`]), so the previous vote
/// read here is the one the counts include.
pub async fn vote(
    conn: &mut PgConnection,
    faq_id: Uuid,
    user: Uuid,
    vote: Vote,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH prev AS (SELECT helpful FROM faq_votes WHERE faq_id = $1 AND user_id = $2),
              put AS (
                INSERT INTO faq_votes (faq_id, user_id, helpful, day, voted_at)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (faq_id, user_id) DO UPDATE
                   SET helpful = excluded.helpful, day = excluded.day, voted_at = excluded.voted_at
                 WHERE faq_votes.helpful <> excluded.helpful
                RETURNING helpful)
         UPDATE faqs
            SET helpful_count = helpful_count + $3::boolean::int
                                - coalesce((SELECT helpful::int FROM prev), 0),
                not_helpful_count = not_helpful_count + (NOT $3::boolean)::int
                                - coalesce((SELECT (NOT helpful)::int FROM prev), 0)
          WHERE id = $1 AND EXISTS (SELECT 1 FROM put)",
        faq_id,
        user,
        vote == Vote::Helpful,
        now.date_naive(),
        now,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Withdraws `user`'s vote on the locked entry `faq_id`, if any.
pub async fn clear_vote(conn: &mut PgConnection, faq_id: Uuid, user: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH gone AS (DELETE FROM faq_votes WHERE faq_id = $1 AND user_id = $2 RETURNING helpful)
         UPDATE faqs
            SET helpful_count = helpful_count - (SELECT count(*) FILTER (WHERE helpful) FROM gone),
                not_helpful_count = not_helpful_count
                                    - (SELECT count(*) FILTER (WHERE NOT helpful) FROM gone)
          WHERE id = $1 AND EXISTS (SELECT 1 FROM gone)",
        faq_id,
        user,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes every entry's 7- and 30-day figures over the whole days before
/// `as_of` (one statement); an older `as_of` never replaces a newer one.
/// The number of entries written.
pub async fn compute_analytics(
    conn: &mut PgConnection,
    as_of: NaiveDate,
    run_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "INSERT INTO faq_analytics (faq_id, as_of, views_7_days, views_30_days,
                                    helpful_7_days, helpful_30_days,
                                    not_helpful_7_days, not_helpful_30_days, run_id, computed_at)
         SELECT f.id, $1, coalesce(v.d7, 0), coalesce(v.d30, 0), coalesce(w.h7, 0),
                coalesce(w.h30, 0), coalesce(w.n7, 0), coalesce(w.n30, 0), $2, $3
           FROM faqs f
           LEFT JOIN (SELECT faq_id, sum(views) FILTER (WHERE day >= $1::date - 7)::bigint AS d7,
                             sum(views)::bigint AS d30
                        FROM faq_views WHERE day >= $1::date - 30 AND day < $1
                       GROUP BY faq_id) v ON v.faq_id = f.id
           LEFT JOIN (SELECT faq_id,
                             count(*) FILTER (WHERE helpful AND day >= $1::date - 7) AS h7,
                             count(*) FILTER (WHERE helpful) AS h30,
                             count(*) FILTER (WHERE NOT helpful AND day >= $1::date - 7) AS n7,
                             count(*) FILTER (WHERE NOT helpful) AS n30
                        FROM faq_votes WHERE day >= $1::date - 30 AND day < $1
                       GROUP BY faq_id) w ON w.faq_id = f.id
         ON CONFLICT (faq_id) DO UPDATE
            SET as_of = excluded.as_of, views_7_days = excluded.views_7_days,
                views_30_days = excluded.views_30_days,
                helpful_7_days = excluded.helpful_7_days,
                helpful_30_days = excluded.helpful_30_days,
                not_helpful_7_days = excluded.not_helpful_7_days,
                not_helpful_30_days = excluded.not_helpful_30_days,
                run_id = excluded.run_id, computed_at = excluded.computed_at
          WHERE faq_analytics.as_of <= excluded.as_of",
        as_of,
        run_id,
        now,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Folds the view shards of days before `before` into shard 0: one row per
/// entry and day from then on, so the sum a read does stays short. One
/// statement: a concurrent read sees the day's views before or after, the
/// same total either way.
pub async fn compact_views(conn: &mut PgConnection, before: NaiveDate) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "WITH gone AS (DELETE FROM faq_views WHERE day < $1 AND shard <> 0
                       RETURNING faq_id, day, views)
         INSERT INTO faq_views (faq_id, day, shard, views)
         SELECT faq_id, day, 0, sum(views)::bigint FROM gone GROUP BY faq_id, day
         ON CONFLICT (faq_id, day, shard) DO UPDATE SET views = faq_views.views + excluded.views",
        before,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
