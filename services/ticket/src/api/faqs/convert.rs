//! FAQ domain ↔ protobuf, and its events (events.proto), written to the
//! outbox in the caller's transaction like every ticket event.

use chrono::{DateTime, Utc};
use helpdesk_events::outbox;
use helpdesk_kit::{auth::Caller, clock::to_timestamp};
use helpdesk_proto::{Event, support::v1 as pb};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::faq::{Faq, FaqAnalytics, Vote};

pub fn faq(f: &Faq) -> pb::Faq {
    pb::Faq {
        id: f.id.to_string(),
        number: f.number,
        question: f.question.as_str().to_owned(),
        answer: f.answer.to_string(),
        category_id: f.category_id.to_string(),
        language_code: f.language.to_string(),
        published: f.published,
        sort_order: f.sort_order,
        view_count: f.view_count,
        helpful_count: f.helpful_count,
        not_helpful_count: f.not_helpful_count,
        create_time: Some(to_timestamp(f.created_at)),
        update_time: Some(to_timestamp(f.updated_at)),
        my_vote: match f.my_vote {
            None => pb::FaqVote::Unspecified,
            Some(Vote::Helpful) => pb::FaqVote::Helpful,
            Some(Vote::NotHelpful) => pb::FaqVote::NotHelpful,
        }
        .into(),
        analytics: f.analytics.as_ref().map(analytics),
    }
}

fn analytics(a: &FaqAnalytics) -> pb::FaqAnalytics {
    pb::FaqAnalytics {
        as_of_date: a.as_of.format("%Y-%m-%d").to_string(),
        views_last_7_days: a.views_7,
        views_last_30_days: a.views_30,
        helpful_last_7_days: a.helpful_7,
        helpful_last_30_days: a.helpful_30,
        not_helpful_last_7_days: a.not_helpful_7,
        not_helpful_last_30_days: a.not_helpful_30,
        compute_time: Some(to_timestamp(a.computed_at)),
    }
}

fn snapshot(f: &Faq) -> pb::FaqSnapshot {
    pb::FaqSnapshot {
        faq_id: f.id.to_string(),
        number: f.number,
        question: f.question.as_str().to_owned(),
        category_id: f.category_id.to_string(),
        language_code: f.language.to_string(),
        published: f.published,
        sort_order: f.sort_order,
        version: f.version,
    }
}

/// What happened to an entry.
pub enum Change {
    Created,
    Updated(Vec<&'static str>),
    Published,
    Unpublished,
}

/// Writes the event of `change` to the outbox, keyed by the entry.
pub async fn emit(
    conn: &mut PgConnection,
    caller: &Caller,
    now: DateTime<Utc>,
    f: &Faq,
    change: Change,
) -> sqlx::Result<()> {
    let event_id = Uuid::now_v7();
    let header = Some(pb::EventHeader {
        event_id: event_id.to_string(),
        occurred_at: Some(to_timestamp(now)),
        actor_id: caller.subject(),
        actor_role: caller.role().as_str().to_owned(),
    });
    let faq = Some(snapshot(f));
    async fn put<E: Event>(
        c: &mut PgConnection,
        id: Uuid,
        aggregate: Uuid,
        e: E,
    ) -> sqlx::Result<()> {
        outbox::enqueue(c, id, aggregate, &e).await
    }
    match change {
        Change::Created => put(conn, event_id, f.id, pb::FaqCreated { header, faq }).await,
        Change::Updated(fields) => {
            let changed_fields = fields.into_iter().map(str::to_owned).collect();
            put(
                conn,
                event_id,
                f.id,
                pb::FaqUpdated {
                    header,
                    faq,
                    changed_fields,
                },
            )
            .await
        }
        Change::Published => put(conn, event_id, f.id, pb::FaqPublished { header, faq }).await,
        Change::Unpublished => put(conn, event_id, f.id, pb::FaqUnpublished { header, faq }).await,
    }
}
