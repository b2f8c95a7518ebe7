//! The scheduler's batch jobs, set-based: each page is ONE statement that
//! selects the next keyset page of matching tickets, locks it
//! (`FOR UPDATE SKIP LOCKED`: a ticket being edited right now is left for
//! the next run), changes it or records what was done, and returns the
//! tickets for their events. The predicates make a repeated page a no-op:
//! a closed ticket is no longer resolved, an escalated one was escalated
//! after the threshold, and alerts and rating asks are rows with unique keys
//! (`ON CONFLICT DO NOTHING`). Migration 20261206000001 has the tables.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::stored;
use crate::domain::{
    Priority, Status,
    jobs::{Breach, DayFigures, PageDone, PageRequest, SlaTarget, Touched},
};

/// A touched ticket as a page's statement returns it, with the page's sort
/// key (`at`, `id`) and whether (and what) the statement did to it.
struct Row {
    id: Uuid,
    human_id: String,
    user_id: Uuid,
    ride_id: Option<Uuid>,
    assignee_id: Option<Uuid>,
    category_id: String,
    subject: String,
    priority: String,
    status: String,
    created_at: DateTime<Utc>,
    version: i64,
    at: DateTime<Utc>,
    /// What was done: a previous priority, a breach, a reminder number;
    /// `None` when the ticket was selected but nothing was (left) to do.
    done: Option<String>,
    due_at: Option<DateTime<Utc>>,
}

impl Row {
    fn touched(&self) -> sqlx::Result<Touched> {
        Ok(Touched {
            id: self.id,
            human_id: self.human_id.clone(),
            user_id: self.user_id,
            ride_id: self.ride_id,
            assignee_id: self.assignee_id,
            category_id: self.category_id.clone(),
            subject: self.subject.clone(),
            priority: stored("priority", &self.priority, |s| Priority::parse(s).ok_or(()))?,
            status: stored("status", &self.status, |s| Status::parse(s).ok_or(()))?,
            created_at: self.created_at,
            version: self.version,
        })
    }
}

/// Turns a page's rows into what it did, via `what` (the rows where
/// nothing was done are only counted and passed), in the page's order.
fn page<T>(
    mut rows: Vec<Row>,
    what: impl Fn(&Row) -> sqlx::Result<Option<T>>,
) -> sqlx::Result<PageDone<T>> {
    rows.sort_by_key(|r| (r.at, r.id, r.due_at));
    let (mut acted, mut selected, mut last) = (Vec::new(), 0, None);
    for row in &rows {
        if last != Some((row.at, row.id)) {
            selected += 1;
            last = Some((row.at, row.id));
        }
        if let Some(done) = what(row)? {
            acted.push((row.touched()?, done));
        }
    }
    Ok(PageDone {
        acted,
        selected,
        last,
    })
}

fn after_at(p: &PageRequest) -> Option<DateTime<Utc>> {
    p.after.map(|(at, _)| at)
}

fn after_id(p: &PageRequest) -> Option<Uuid> {
    p.after.map(|(_, id)| id)
}

/// Records `token` as the run's claim. `false` when a greater token was
/// seen already: the caller is a stale holder and must change nothing. The
/// row stays locked until the transaction ends, so pages of one run
/// serialize.
pub async fn fence(
    conn: &mut PgConnection,
    run_id: Uuid,
    token: i64,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let current = sqlx::query_scalar!(
        "INSERT INTO job_run_fences (run_id, fence, seen_at) VALUES ($1, $2, $3)
         ON CONFLICT (run_id) DO UPDATE
             SET fence = GREATEST(job_run_fences.fence, excluded.fence), seen_at = excluded.seen_at
         RETURNING fence",
        run_id,
        token,
        now,
    )
    .fetch_one(conn)
    .await?;
    Ok(current == token)
}

/// Closes a page of tickets resolved before `before` (resolved → closed,
/// `closed_at` = `now`), oldest resolution first.
pub async fn close_resolved(
    conn: &mut PgConnection,
    p: &PageRequest,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> sqlx::Result<PageDone<()>> {
    let rows = sqlx::query_as!(
        Row,
        r#"WITH page AS (
               SELECT id FROM tickets
               WHERE status = 'resolved' AND resolved_at < $1
                 AND (resolved_at, id) > (COALESCE($2, '-infinity'::timestamptz),
                                          COALESCE($3, '00000000-0000-0000-0000-000000000000'::uuid))
               ORDER BY resolved_at, id
               LIMIT $4
               FOR UPDATE SKIP LOCKED
           )
           UPDATE tickets t
           SET status = 'closed', closed_at = $5, updated_at = $5, version = t.version + 1
           FROM page WHERE t.id = page.id
           RETURNING t.id AS "id!", t.human_id AS "human_id!", t.user_id AS "user_id!", t.ride_id, t.assignee_id, t.category_id AS "category_id!",
                     t.subject AS "subject!", t.priority AS "priority!", t.status AS "status!", t.created_at AS "created_at!", t.version AS "version!",
                     t.resolved_at AS "at!", 'closed' AS "done?", NULL::timestamptz AS "due_at?""#,
        before,
        after_at(p),
        after_id(p),
        p.limit,
        now,
    )
    .fetch_all(conn)
    .await?;
    page(rows, |_| Ok(Some(())))
}

/// Escalates a page of tickets not resolved or closed, below urgent,
/// created and last escalated before `before`, and not escalated by this
/// run: priority one level up. Returns each ticket's previous priority.
pub async fn escalate_open(
    conn: &mut PgConnection,
    p: &PageRequest,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> sqlx::Result<PageDone<Priority>> {
    let rows = sqlx::query_as!(
        Row,
        r#"WITH page AS (
               SELECT id, priority AS previous FROM tickets
               WHERE status IN ('open', 'in_progress', 'waiting_user')
                 AND priority <> 'urgent'
                 AND created_at < $1
                 AND (escalated_at IS NULL OR escalated_at < $1)
                 AND escalation_run IS DISTINCT FROM $6
                 AND (created_at, id) > (COALESCE($2, '-infinity'::timestamptz),
                                         COALESCE($3, '00000000-0000-0000-0000-000000000000'::uuid))
               ORDER BY created_at, id
               LIMIT $4
               FOR UPDATE SKIP LOCKED
           )
           UPDATE tickets t
           SET priority = CASE t.priority WHEN 'low' THEN 'medium' WHEN 'medium' THEN 'high'
                                          ELSE 'urgent' END,
               escalated_at = $5, escalation_run = $6, updated_at = $5, version = t.version + 1
           FROM page WHERE t.id = page.id
           RETURNING t.id AS "id!", t.human_id AS "human_id!", t.user_id AS "user_id!", t.ride_id, t.assignee_id, t.category_id AS "category_id!",
                     t.subject AS "subject!", t.priority AS "priority!", t.status AS "status!", t.created_at AS "created_at!", t.version AS "version!",
                     t.created_at AS "at!", page.previous AS "done?", NULL::timestamptz AS "due_at?""#,
        before,
        after_at(p),
        after_id(p),
        p.limit,
        now,
        p.run_id,
    )
    .fetch_all(conn)
    .await?;
    page(rows, |r| {
        r.done
            .as_deref()
            .map(|s| stored("priority", s, |s| Priority::parse(s).ok_or(())))
            .transpose()
    })
}

/// Records and returns the SLA breaches of a page of tickets not resolved
/// or closed, as of `as_of`: the first-response target when no staff reply
/// came, the resolution target in any case. A breach already recorded is
/// not returned again (its ticket is passed, not acted on).
pub async fn alert_overdue(
    conn: &mut PgConnection,
    p: &PageRequest,
    targets: &[SlaTarget],
    as_of: DateTime<Utc>,
    now: DateTime<Utc>,
) -> sqlx::Result<PageDone<(Breach, DateTime<Utc>)>> {
    let priorities: Vec<&str> = targets.iter().map(|t| t.priority.as_str()).collect();
    let first: Vec<i64> = targets
        .iter()
        .map(|t| t.first_response.num_seconds())
        .collect();
    let resolution: Vec<i64> = targets.iter().map(|t| t.resolution.num_seconds()).collect();
    let rows = sqlx::query_as!(
        Row,
        r#"WITH targets AS (
               SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
                   AS g (priority, first_secs, resolution_secs)
           ), page AS (
               SELECT t.id, t.created_at, t.first_response_at,
                      t.created_at + make_interval(secs => g.first_secs) AS first_due,
                      t.created_at + make_interval(secs => g.resolution_secs) AS resolution_due
               FROM tickets t JOIN targets g ON g.priority = t.priority
               WHERE t.status IN ('open', 'in_progress', 'waiting_user')
                 AND (t.created_at, t.id) > (COALESCE($4, '-infinity'::timestamptz),
                                             COALESCE($5, '00000000-0000-0000-0000-000000000000'::uuid))
                 AND ((t.first_response_at IS NULL
                       AND t.created_at + make_interval(secs => g.first_secs) < $6
                       AND NOT EXISTS (SELECT 1 FROM ticket_sla_alerts a
                                       WHERE a.ticket_id = t.id AND a.breach = 'first_response'))
                   OR (t.created_at + make_interval(secs => g.resolution_secs) < $6
                       AND NOT EXISTS (SELECT 1 FROM ticket_sla_alerts a
                                       WHERE a.ticket_id = t.id AND a.breach = 'resolution')))
               ORDER BY t.created_at, t.id
               LIMIT $7
               FOR UPDATE OF t SKIP LOCKED
           ), breaches AS (
               SELECT page.id, b.breach, b.due_at
               FROM page CROSS JOIN LATERAL (VALUES ('first_response', page.first_due),
                                                    ('resolution', page.resolution_due))
                    AS b (breach, due_at)
               WHERE b.due_at < $6
                 AND (b.breach = 'resolution' OR page.first_response_at IS NULL)
           ), alerted AS (
               INSERT INTO ticket_sla_alerts (ticket_id, breach, due_at, run_id, alerted_at)
               SELECT id, breach, due_at, $8, $9 FROM breaches
               ON CONFLICT (ticket_id, breach) DO NOTHING
               RETURNING ticket_id, breach, due_at
           )
           SELECT t.id AS "id!", t.human_id AS "human_id!", t.user_id AS "user_id!", t.ride_id, t.assignee_id, t.category_id AS "category_id!",
                  t.subject AS "subject!", t.priority AS "priority!", t.status AS "status!", t.created_at AS "created_at!", t.version AS "version!",
                  page.created_at AS "at!", alerted.breach AS "done?", alerted.due_at AS "due_at?"
           FROM page JOIN tickets t ON t.id = page.id
           LEFT JOIN alerted ON alerted.ticket_id = page.id
           ORDER BY page.created_at, page.id, alerted.due_at"#,
        &priorities as &[&str],
        &first,
        &resolution,
        after_at(p),
        after_id(p),
        as_of,
        p.limit,
        p.run_id,
        now,
    )
    .fetch_all(conn)
    .await?;
    page(rows, |r| match (r.done.as_deref(), r.due_at) {
        (Some(breach), Some(due)) => Ok(Some((
            stored("breach", breach, |s| Breach::parse(s).ok_or(()))?,
            due,
        ))),
        _ => Ok(None),
    })
}

/// Asks for a rating (reminder 0) on a page of resolved or closed tickets,
/// resolved before `before` and, when given, not before `since`, unrated,
/// never asked. The lower bound also starts the index walk, so a
/// run does not pass over every ticket ever asked.
pub async fn request_ratings(
    conn: &mut PgConnection,
    p: &PageRequest,
    before: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> sqlx::Result<PageDone<i32>> {
    let rows = sqlx::query_as!(
        Row,
        r#"WITH page AS (
               SELECT t.id, t.resolved_at FROM tickets t
               WHERE t.rating IS NULL AND t.resolved_at IS NOT NULL AND t.resolved_at < $1
                 AND t.status IN ('resolved', 'closed')
                 AND t.resolved_at >= COALESCE($7, '-infinity'::timestamptz)
                 AND (t.resolved_at, t.id) > (COALESCE($2, '-infinity'::timestamptz),
                                              COALESCE($3, '00000000-0000-0000-0000-000000000000'::uuid))
                 AND NOT EXISTS (SELECT 1 FROM ticket_rating_requests r WHERE r.ticket_id = t.id)
               ORDER BY t.resolved_at, t.id
               LIMIT $4
               FOR UPDATE OF t SKIP LOCKED
           ), asked AS (
               INSERT INTO ticket_rating_requests (ticket_id, reminder, run_id, asked_at)
               SELECT id, 0, $5, $6 FROM page
               ON CONFLICT (ticket_id, reminder) DO NOTHING
               RETURNING ticket_id, reminder
           )
           SELECT t.id AS "id!", t.human_id AS "human_id!", t.user_id AS "user_id!", t.ride_id, t.assignee_id, t.category_id AS "category_id!",
                  t.subject AS "subject!", t.priority AS "priority!", t.status AS "status!", t.created_at AS "created_at!", t.version AS "version!",
                  page.resolved_at AS "at!", asked.reminder::text AS "done?",
                  NULL::timestamptz AS "due_at?"
           FROM page JOIN tickets t ON t.id = page.id
           LEFT JOIN asked ON asked.ticket_id = page.id"#,
        before,
        after_at(p),
        after_id(p),
        p.limit,
        p.run_id,
        now,
        since,
    )
    .fetch_all(conn)
    .await?;
    page(rows, reminder)
}

/// Sends the next reminder on a page of tickets whose last ask (request or
/// reminder) was before `before`, still resolved or closed and unrated, with
/// fewer than `max` reminders so far.
pub async fn remind_unrated(
    conn: &mut PgConnection,
    p: &PageRequest,
    before: DateTime<Utc>,
    max: i32,
    now: DateTime<Utc>,
) -> sqlx::Result<PageDone<i32>> {
    let rows = sqlx::query_as!(
        Row,
        r#"WITH page AS (
               SELECT r.ticket_id AS id, r.reminder, r.asked_at FROM ticket_rating_requests r
               JOIN tickets t ON t.id = r.ticket_id
               WHERE r.asked_at < $1 AND r.reminder < $2
                 AND t.rating IS NULL AND t.status IN ('resolved', 'closed')
                 AND (r.asked_at, r.ticket_id) > (COALESCE($3, '-infinity'::timestamptz),
                                                  COALESCE($4, '00000000-0000-0000-0000-000000000000'::uuid))
                 AND NOT EXISTS (SELECT 1 FROM ticket_rating_requests n
                                 WHERE n.ticket_id = r.ticket_id AND n.reminder > r.reminder)
               ORDER BY r.asked_at, r.ticket_id
               LIMIT $5
               FOR UPDATE OF t SKIP LOCKED
           ), asked AS (
               INSERT INTO ticket_rating_requests (ticket_id, reminder, run_id, asked_at)
               SELECT id, reminder + 1, $6, $7 FROM page
               ON CONFLICT (ticket_id, reminder) DO NOTHING
               RETURNING ticket_id, reminder
           )
           SELECT t.id AS "id!", t.human_id AS "human_id!", t.user_id AS "user_id!", t.ride_id, t.assignee_id, t.category_id AS "category_id!",
                  t.subject AS "subject!", t.priority AS "priority!", t.status AS "status!", t.created_at AS "created_at!", t.version AS "version!",
                  page.asked_at AS "at!", asked.reminder::text AS "done?",
                  NULL::timestamptz AS "due_at?"
           FROM page JOIN tickets t ON t.id = page.id
           LEFT JOIN asked ON asked.ticket_id = page.id"#,
        before,
        max,
        after_at(p),
        after_id(p),
        p.limit,
        p.run_id,
        now,
    )
    .fetch_all(conn)
    .await?;
    page(rows, reminder)
}

fn reminder(r: &Row) -> sqlx::Result<Option<i32>> {
    r.done
        .as_deref()
        .map(|s| stored("reminder", s, str::parse::<i32>))
        .transpose()
}

/// The figures of `[from, until)`. Each figure is one aggregate over the
/// tickets (or messages) whose own timestamp falls in the day.
pub async fn day_figures(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> sqlx::Result<DayFigures> {
    let totals = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM tickets WHERE created_at >= $1 AND created_at < $2) AS "created!",
             (SELECT count(*) FROM tickets WHERE resolved_at >= $1 AND resolved_at < $2) AS "resolved!",
             (SELECT count(*) FROM tickets WHERE closed_at >= $1 AND closed_at < $2) AS "closed!",
             fr.median AS first_median, fr.p90 AS first_p90,
             rs.median AS resolution_median, rs.p90 AS resolution_p90,
             rt.average AS average_rating, rt.n AS "rating_count!"
           FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS median,
                        percentile_cont(0.9) WITHIN GROUP (ORDER BY s) AS p90
                 FROM (SELECT extract(epoch FROM first_response_at - created_at)::float8 AS s
                       FROM tickets WHERE first_response_at >= $1 AND first_response_at < $2) x) fr,
                (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS median,
                        percentile_cont(0.9) WITHIN GROUP (ORDER BY s) AS p90
                 FROM (SELECT extract(epoch FROM resolved_at - created_at)::float8 AS s
                       FROM tickets WHERE resolved_at >= $1 AND resolved_at < $2) x) rs,
                (SELECT avg(rating)::float8 AS average, count(rating) AS n
                 FROM tickets WHERE rated_at >= $1 AND rated_at < $2) rt"#,
        from,
        until,
    )
    .fetch_one(&mut *conn)
    .await?;
    let by = sqlx::query!(
        r#"SELECT 'category' AS "dimension!", category_id AS "key!", count(*) AS "n!"
           FROM tickets WHERE created_at >= $1 AND created_at < $2 GROUP BY category_id
           UNION ALL
           SELECT 'priority', priority, count(*)
           FROM tickets WHERE created_at >= $1 AND created_at < $2 GROUP BY priority
           ORDER BY 1, 2"#,
        from,
        until,
    )
    .fetch_all(&mut *conn)
    .await?;
    let agents = sqlx::query!(
        r#"SELECT agent AS "agent!", sum(assigned)::bigint AS "assigned!",
                  sum(resolved)::bigint AS "resolved!", sum(replies)::bigint AS "replies!"
           FROM (SELECT assignee_id AS agent, 1 AS assigned, 0 AS resolved, 0 AS replies
                 FROM tickets
                 WHERE created_at >= $1 AND created_at < $2 AND assignee_id IS NOT NULL
                 UNION ALL
                 SELECT assignee_id, 0, 1, 0 FROM tickets
                 WHERE resolved_at >= $1 AND resolved_at < $2 AND assignee_id IS NOT NULL
                 UNION ALL
                 SELECT author_id, 0, 0, 1 FROM ticket_messages
                 WHERE created_at >= $1 AND created_at < $2
                   AND author_role = 'staff' AND NOT internal) x
           GROUP BY agent ORDER BY agent"#,
        from,
        until,
    )
    .fetch_all(&mut *conn)
    .await?;
    let seconds = |s: Option<f64>| s.map_or(0, |s| s.round() as i64);
    let (mut created_by_category, mut created_by_priority) = (Vec::new(), Vec::new());
    for row in by {
        let list = if row.dimension == "category" {
            &mut created_by_category
        } else {
            &mut created_by_priority
        };
        list.push((row.key, row.n));
    }
    Ok(DayFigures {
        created: totals.created,
        resolved: totals.resolved,
        closed: totals.closed,
        created_by_category,
        created_by_priority,
        first_response_median_seconds: seconds(totals.first_median),
        first_response_p90_seconds: seconds(totals.first_p90),
        resolution_median_seconds: seconds(totals.resolution_median),
        resolution_p90_seconds: seconds(totals.resolution_p90),
        average_rating: totals.average_rating.unwrap_or(0.0),
        rating_count: totals.rating_count,
        agents: agents
            .into_iter()
            .map(|a| (a.agent, a.assigned, a.resolved, a.replies))
            .collect(),
    })
}
