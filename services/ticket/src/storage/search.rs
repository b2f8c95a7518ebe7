//! SearchTickets' queries (docs/search.md; plans in docs/indexes.md).
//!
//! A ticket matches when its subject and description match the query, or
//! one message the caller may see does (internal notes only when
//! `Search::notes`). Each text row has a stored tsvector with a GIN index
//! (migration `20261210000003_search.sql`).
//!
//! A page is found in one query (ids and sort keys only), then its rows
//! and snippets in another, so `ts_headline`, the costly part of a
//! snippet, runs for the rows served and nothing else. The query text is
//! written out as `websearch_to_tsquery('english', $1)` in every clause,
//! not bound once in a CTE: with a literal configuration the call is
//! immutable, so the planner folds it into a constant and estimates each
//! clause from the column statistics (a rare word goes through the GIN
//! index, a user's search through that user's few tickets).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::tickets::Row;
use crate::domain::{
    AccountId, CategoryId, ListFilter, Priority, Ticket,
    search::{Fragments, LexemeStats, Search, SearchText, fragments},
};

/// What `ts_headline` wraps a match in: private-use characters, split off
/// again by [`fragments`], so no markup ever mixes with ticket text.
const START: char = '\u{E000}';
const STOP: char = '\u{E001}';

/// What the database makes of a query before anything is searched.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// It holds at least one word (not only stop words or punctuation).
    pub words: bool,
    /// It can use the index: some word must be present (not only `-word`).
    pub indexable: bool,
    /// The part of the query the index answers (`querytree`), as text:
    /// what [`crate::domain::search::tree_words`] reads the words from.
    pub tree: String,
}

pub async fn parse<'c>(db: impl PgExecutor<'c>, text: &SearchText) -> sqlx::Result<Parsed> {
    let row = sqlx::query!(
        r#"SELECT numnode(q) > 0 AS "words!", querytree(q) <> 'T' AS "indexable!",
                  querytree(q) AS "tree!"
           FROM websearch_to_tsquery('english', $1) AS q"#,
        text.as_str(),
    )
    .fetch_one(db)
    .await?;
    Ok(Parsed {
        words: row.words,
        indexable: row.indexable,
        tree: row.tree,
    })
}

/// The lexeme statistics of `tickets.search` and `ticket_messages.search`
/// (empty before the first ANALYZE).
pub async fn lexeme_stats<'c>(db: impl PgExecutor<'c>) -> sqlx::Result<(LexemeStats, LexemeStats)> {
    let rows = sqlx::query!(
        r#"SELECT s.tablename AS "table!", c.reltuples::float8 AS "rows!",
                  s.most_common_elems::text::text[] AS "elems!",
                  s.most_common_elem_freqs::float8[] AS "freqs!"
           FROM pg_stats s
           JOIN pg_class c ON c.relname = s.tablename
                          AND c.relnamespace = to_regnamespace(s.schemaname)
           WHERE s.schemaname = current_schema()
             AND s.tablename IN ('tickets', 'ticket_messages')
             AND s.attname = 'search'
             AND s.most_common_elems IS NOT NULL"#
    )
    .fetch_all(db)
    .await?;
    let (mut tickets, mut messages) = (LexemeStats::default(), LexemeStats::default());
    for r in rows {
        let stats = LexemeStats {
            rows: r.rows.max(0.0),
            freqs: r.elems.into_iter().zip(r.freqs).collect(),
        };
        if r.table == "tickets" {
            tickets = stats;
        } else {
            messages = stats;
        }
    }
    Ok((tickets, messages))
}

/// The filter's query parameters, in the order every search query takes them.
struct Filter<'a> {
    user_id: Option<Uuid>,
    one_status: Option<&'a str>,
    several_statuses: Option<Vec<&'a str>>,
    priority: Option<&'a str>,
    category_id: Option<&'a str>,
    assignee_id: Option<Uuid>,
    ride_id: Option<Uuid>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
}

/// One status is compared with `=`, several with `= ANY`, as ListTickets
/// does (storage::tickets::list).
fn filter(f: &ListFilter) -> Filter<'_> {
    let names: Vec<&str> = f.statuses.iter().map(|s| s.as_str()).collect();
    let (one_status, several_statuses) = match names.as_slice() {
        [] => (None, None),
        [one] => (Some(*one), None),
        _ => (None, Some(names)),
    };
    Filter {
        user_id: f.user_id.map(AccountId::as_uuid),
        one_status,
        several_statuses,
        priority: f.priority.map(Priority::as_str),
        category_id: f.category_id.as_ref().map(CategoryId::as_str),
        assignee_id: f.assignee_id.map(AccountId::as_uuid),
        ride_id: f.ride_id,
        created_after: f.created_after,
        created_before: f.created_before,
    }
}

/// One page by relevance: (ticket id, rank), best first, after `after`.
///
/// A ticket's rank is the sum of its texts' `ts_rank` (subject A, description
/// B, messages C), scaled to an integer: integer sums do not depend on the
/// order rows are added in, so a ticket's rank is the same on every page
/// and (rank, id) is a sound keyset. Every match is ranked: callers use this
/// order when the match count is small, or when asked to.
pub async fn relevance_page<'c>(
    db: impl PgExecutor<'c>,
    search: &Search,
    after: Option<(i64, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, i64)>> {
    let f = filter(&search.filter);
    let rows = sqlx::query!(
        r#"SELECT id AS "id!", rank AS "rank!" FROM (
               SELECT id, sum(r)::bigint AS rank FROM (
                   SELECT t.id, (ts_rank(t.search, websearch_to_tsquery('english', $1)) * 1000000)::bigint AS r
                   FROM tickets t
                   WHERE t.search @@ websearch_to_tsquery('english', $1)
                     AND ($3::uuid IS NULL OR t.user_id = $3)
                     AND ($4::text IS NULL OR t.status = $4)
                     AND ($5::text[] IS NULL OR t.status = ANY($5))
                     AND ($6::text IS NULL OR t.priority = $6)
                     AND ($7::text IS NULL OR t.category_id = $7)
                     AND ($8::uuid IS NULL OR t.assignee_id = $8)
                     AND ($9::uuid IS NULL OR t.ride_id = $9)
                     AND ($10::timestamptz IS NULL OR t.created_at >= $10)
                     AND ($11::timestamptz IS NULL OR t.created_at < $11)
                 UNION ALL
                   SELECT t.id, (ts_rank(m.search, websearch_to_tsquery('english', $1)) * 1000000)::bigint
                   FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id
                   WHERE m.search @@ websearch_to_tsquery('english', $1)
                     AND ($2 OR NOT m.internal)
                     AND ($3::uuid IS NULL OR t.user_id = $3)
                     AND ($4::text IS NULL OR t.status = $4)
                     AND ($5::text[] IS NULL OR t.status = ANY($5))
                     AND ($6::text IS NULL OR t.priority = $6)
                     AND ($7::text IS NULL OR t.category_id = $7)
                     AND ($8::uuid IS NULL OR t.assignee_id = $8)
                     AND ($9::uuid IS NULL OR t.ride_id = $9)
                     AND ($10::timestamptz IS NULL OR t.created_at >= $10)
                     AND ($11::timestamptz IS NULL OR t.created_at < $11)
               ) hits
               GROUP BY id
           ) ranked
           WHERE ($12::bigint IS NULL OR (rank, id) < ($12, $13::uuid))
           ORDER BY rank DESC, id DESC
           LIMIT $14"#,
        search.text.as_str(),
        search.notes,
        f.user_id,
        f.one_status,
        f.several_statuses.as_deref() as Option<&[&str]>,
        f.priority,
        f.category_id,
        f.assignee_id,
        f.ride_id,
        f.created_after,
        f.created_before,
        after.map(|a| a.0),
        after.map(|a| a.1),
        limit,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.rank)).collect())
}

/// One page newest first: (ticket id, created_at), after `after`.
///
/// The newest tickets whose own text matches, and the newest whose visible
/// messages match, each in list order, then merged: the top of the union
/// is the top of the two tops. Each half is read one of two ways, chosen
/// by the caller from the estimates ([`Parsed`]), never left to the
/// planner (whose guess for a word outside its statistics is 0.5% of the
/// table, enough to make it walk a million tickets for a word no message
/// holds):
///
/// - `walk_*`: down a ListTickets index, keeping the matching tickets. A
///   page of a word in many texts costs a few dozen rows, whatever the
///   number of matches.
/// - otherwise: every match from the GIN index (fenced by `OFFSET 0`, so
///   it cannot be turned into a walk), then the newest of them. Costs what
///   the matches cost; used only when they are few.
///
/// The branches not chosen fold away when the statement is planned (its
/// parameters are known then: the pool forces custom plans, `kit::db`).
#[allow(clippy::too_many_arguments)]
pub async fn newest_page<'c>(
    db: impl PgExecutor<'c>,
    search: &Search,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
    walk_tickets: bool,
    walk_messages: bool,
) -> sqlx::Result<Vec<(Uuid, DateTime<Utc>)>> {
    let f = filter(&search.filter);
    let rows = sqlx::query!(
        r#"SELECT id AS "id!", created_at AS "created_at!" FROM (
             (SELECT t.id, t.created_at FROM tickets t
              WHERE $15 AND t.search @@ websearch_to_tsquery('english', $1)
                AND ($3::uuid IS NULL OR t.user_id = $3)
                AND ($4::text IS NULL OR t.status = $4)
                AND ($5::text[] IS NULL OR t.status = ANY($5))
                AND ($6::text IS NULL OR t.priority = $6)
                AND ($7::text IS NULL OR t.category_id = $7)
                AND ($8::uuid IS NULL OR t.assignee_id = $8)
                AND ($9::uuid IS NULL OR t.ride_id = $9)
                AND ($10::timestamptz IS NULL OR t.created_at >= $10)
                AND ($11::timestamptz IS NULL OR t.created_at < $11)
                AND ($12::timestamptz IS NULL OR (t.created_at, t.id) < ($12, $13::uuid))
              ORDER BY t.created_at DESC, t.id DESC
              LIMIT $14)
           UNION
             (SELECT t.id, t.created_at FROM tickets t
              WHERE NOT $15
                AND t.id IN (SELECT id FROM tickets
                             WHERE search @@ websearch_to_tsquery('english', $1) OFFSET 0)
                AND ($3::uuid IS NULL OR t.user_id = $3)
                AND ($4::text IS NULL OR t.status = $4)
                AND ($5::text[] IS NULL OR t.status = ANY($5))
                AND ($6::text IS NULL OR t.priority = $6)
                AND ($7::text IS NULL OR t.category_id = $7)
                AND ($8::uuid IS NULL OR t.assignee_id = $8)
                AND ($9::uuid IS NULL OR t.ride_id = $9)
                AND ($10::timestamptz IS NULL OR t.created_at >= $10)
                AND ($11::timestamptz IS NULL OR t.created_at < $11)
                AND ($12::timestamptz IS NULL OR (t.created_at, t.id) < ($12, $13::uuid))
              ORDER BY t.created_at DESC, t.id DESC
              LIMIT $14)
           UNION
             (SELECT t.id, t.created_at FROM tickets t
              WHERE $16
                AND EXISTS (SELECT 1 FROM ticket_messages m
                            WHERE m.ticket_id = t.id
                              AND m.search @@ websearch_to_tsquery('english', $1)
                              AND ($2 OR NOT m.internal))
                AND ($3::uuid IS NULL OR t.user_id = $3)
                AND ($4::text IS NULL OR t.status = $4)
                AND ($5::text[] IS NULL OR t.status = ANY($5))
                AND ($6::text IS NULL OR t.priority = $6)
                AND ($7::text IS NULL OR t.category_id = $7)
                AND ($8::uuid IS NULL OR t.assignee_id = $8)
                AND ($9::uuid IS NULL OR t.ride_id = $9)
                AND ($10::timestamptz IS NULL OR t.created_at >= $10)
                AND ($11::timestamptz IS NULL OR t.created_at < $11)
                AND ($12::timestamptz IS NULL OR (t.created_at, t.id) < ($12, $13::uuid))
              ORDER BY t.created_at DESC, t.id DESC
              LIMIT $14)
           UNION
             (SELECT t.id, t.created_at FROM tickets t
              WHERE NOT $16
                AND t.id IN (SELECT ticket_id FROM ticket_messages
                             WHERE search @@ websearch_to_tsquery('english', $1)
                               AND ($2 OR NOT internal) OFFSET 0)
                AND ($3::uuid IS NULL OR t.user_id = $3)
                AND ($4::text IS NULL OR t.status = $4)
                AND ($5::text[] IS NULL OR t.status = ANY($5))
                AND ($6::text IS NULL OR t.priority = $6)
                AND ($7::text IS NULL OR t.category_id = $7)
                AND ($8::uuid IS NULL OR t.assignee_id = $8)
                AND ($9::uuid IS NULL OR t.ride_id = $9)
                AND ($10::timestamptz IS NULL OR t.created_at >= $10)
                AND ($11::timestamptz IS NULL OR t.created_at < $11)
                AND ($12::timestamptz IS NULL OR (t.created_at, t.id) < ($12, $13::uuid))
              ORDER BY t.created_at DESC, t.id DESC
              LIMIT $14)
           ) found
           ORDER BY created_at DESC, id DESC
           LIMIT $14"#,
        search.text.as_str(),
        search.notes,
        f.user_id,
        f.one_status,
        f.several_statuses.as_deref() as Option<&[&str]>,
        f.priority,
        f.category_id,
        f.assignee_id,
        f.ride_id,
        f.created_after,
        f.created_before,
        after.map(|a| a.0),
        after.map(|a| a.1),
        limit,
        walk_tickets,
        walk_messages,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.created_at)).collect())
}

/// A ticket found, with its highlighted subject and snippet.
pub struct Found {
    pub ticket: Ticket,
    pub subject: Fragments,
    pub snippet: Fragments,
    /// The message the snippet is quoted from; `None` for the description.
    pub message_id: Option<Uuid>,
}

struct FoundRow {
    id: Uuid,
    human_id: String,
    user_id: Uuid,
    ride_id: Option<Uuid>,
    category_id: String,
    subject: String,
    description: String,
    priority: String,
    status: String,
    assignee_id: Option<Uuid>,
    rating: Option<i16>,
    rating_feedback: Option<String>,
    first_response_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    rated_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    subject_marked: String,
    snippet_marked: String,
    message_id: Option<Uuid>,
}

/// The tickets `ids` (one page), in that order, with snippets: the
/// description when it matches, else the best match among the messages
/// the caller may see (so a user is never quoted a note), else the
/// description's start.
pub async fn found<'c>(
    db: impl PgExecutor<'c>,
    text: &SearchText,
    notes: bool,
    ids: &[Uuid],
) -> sqlx::Result<Vec<Found>> {
    let marks = format!("StartSel={START}, StopSel={STOP}, MaxWords=35, MinWords=15");
    let subject_marks = format!("StartSel={START}, StopSel={STOP}, HighlightAll=true");
    let rows = sqlx::query_as!(
        FoundRow,
        r#"SELECT t.id, t.human_id, t.user_id, t.ride_id, t.category_id, t.subject, t.description,
                  t.priority, t.status, t.assignee_id, t.rating, t.rating_feedback,
                  t.first_response_at, t.resolved_at, t.closed_at, t.rated_at, t.created_at,
                  t.updated_at, t.version,
                  ts_headline('english', t.subject, websearch_to_tsquery('english', $1), $4)
                      AS "subject_marked!",
                  CASE WHEN best.id IS NULL
                       THEN ts_headline('english', t.description, websearch_to_tsquery('english', $1), $3)
                       ELSE best.snippet END AS "snippet_marked!",
                  best.id AS "message_id?"
           FROM unnest($5::uuid[]) WITH ORDINALITY AS page(id, n)
           JOIN tickets t ON t.id = page.id
           LEFT JOIN LATERAL (
               SELECT m.id, ts_headline('english', m.body, websearch_to_tsquery('english', $1), $3) AS snippet
               FROM ticket_messages m
               WHERE m.ticket_id = t.id
                 AND m.search @@ websearch_to_tsquery('english', $1)
                 AND ($2 OR NOT m.internal)
               ORDER BY ts_rank(m.search, websearch_to_tsquery('english', $1)) DESC, m.id DESC
               LIMIT 1
           ) best ON NOT (to_tsvector('english', t.description) @@ websearch_to_tsquery('english', $1))
           ORDER BY page.n"#,
        text.as_str(),
        notes,
        marks,
        subject_marks,
        ids,
    )
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|r| {
            let ticket = Ticket::try_from(Row {
                id: r.id,
                human_id: r.human_id,
                user_id: r.user_id,
                ride_id: r.ride_id,
                category_id: r.category_id,
                subject: r.subject,
                description: r.description,
                priority: r.priority,
                status: r.status,
                assignee_id: r.assignee_id,
                rating: r.rating,
                rating_feedback: r.rating_feedback,
                first_response_at: r.first_response_at,
                resolved_at: r.resolved_at,
                closed_at: r.closed_at,
                rated_at: r.rated_at,
                created_at: r.created_at,
                updated_at: r.updated_at,
                version: r.version,
            })?;
            Ok(Found {
                ticket,
                subject: fragments(&r.subject_marked, START, STOP),
                snippet: fragments(&r.snippet_marked, START, STOP),
                message_id: r.message_id,
            })
        })
        .collect()
}
