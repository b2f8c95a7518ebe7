//! `SearchTickets`: full text over subject, description and messages, with
//! every ListTickets filter, ranked or newest first, keyset-paged, with
//! highlighted snippets (docs/search.md).
//!
//! Who sees what is decided here, as for ListTickets: a user's search is
//! confined to their own tickets and never reads an internal note (neither
//! to match nor to quote); staff and our own services search everything.
//! The page token carries the order chosen on the first page and the sort
//! key of the last row, bound by a fingerprint to the caller, the query and
//! the filters.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::DateTime;
use helpdesk_kit::{
    auth::Caller,
    clock::in_timestamp_range,
    error::{ApiError, ApiResult, Violations},
    page_token::{self, PageSize},
};
use helpdesk_proto::support::v1::{self as pb, ticket_search_result::Fragment};
use uuid::Uuid;

use super::TicketApi;
use crate::{
    api::{
        access::{self, sees_internal},
        convert,
        requests::{FilterFields, list_filter},
    },
    domain::search::{
        Fragments, LexemeStats, Search, SearchCursor, SearchOrder, SearchText, choose_order,
        tree_words, walk,
    },
    storage::search::{self, Found},
};

const SEARCH_PAGE: PageSize = PageSize {
    default: 20,
    max: 100,
};

/// A parsed SearchTickets request.
struct Request {
    search: Search,
    order: Option<SearchOrder>,
    limit: i64,
    cursor: Option<SearchCursor>,
    fingerprint: u64,
}

fn order_from_pb(raw: i32) -> Result<Option<SearchOrder>, String> {
    match pb::SearchOrder::try_from(raw) {
        Ok(pb::SearchOrder::Unspecified) => Ok(None),
        Ok(pb::SearchOrder::Relevance) => Ok(Some(SearchOrder::Relevance)),
        Ok(pb::SearchOrder::Newest) => Ok(Some(SearchOrder::Newest)),
        Err(_) => Err(format!("unknown order {raw}")),
    }
}

fn order_to_pb(order: SearchOrder) -> pb::SearchOrder {
    match order {
        SearchOrder::Relevance => pb::SearchOrder::Relevance,
        SearchOrder::Newest => pb::SearchOrder::Newest,
    }
}

fn parse(caller: &Caller, req: &pb::SearchTicketsRequest) -> ApiResult<Request> {
    let mut v = Violations::default();
    let text = v.take("query", SearchText::parse(&req.query));
    let filter = list_filter(
        &mut v,
        FilterFields {
            user_id: &req.user_id,
            statuses: &req.statuses,
            priority: req.priority,
            category_id: &req.category_id,
            assignee_id: &req.assignee_id,
            ride_id: &req.ride_id,
            created_after: req.created_after.as_ref(),
            created_before: req.created_before.as_ref(),
            open: req.open,
        },
    );
    let order = v.take("order", order_from_pb(req.order));
    let limit = v.take("page_size", SEARCH_PAGE.resolve(req.page_size));
    // Every field but the page's own binds the token.
    let bound = pb::SearchTicketsRequest {
        page_size: 0,
        page_token: String::new(),
        ..req.clone()
    };
    let fingerprint = page_token::fingerprint(&[
        b"SearchTickets",
        caller.subject().as_bytes(),
        &prost::Message::encode_to_vec(&bound),
    ]);
    let cursor = v.take("page_token", decode(&req.page_token, fingerprint));
    let notes = sees_internal(caller);
    let parsed = (|| {
        Some(Request {
            search: Search {
                text: text?,
                filter: filter?,
                notes,
            },
            order: order?,
            limit: limit?,
            cursor: cursor?,
            fingerprint,
        })
    })();
    match parsed {
        Some(request) if v.is_empty() => Ok(request),
        _ => Err(ApiError::InvalidArgument(v)),
    }
}

const VERSION: u8 = 1;
const LEN: usize = 1 + 1 + 8 + 16 + 8;
const RELEVANCE: u8 = 1;
const NEWEST: u8 = 2;

/// The token of the page after `cursor`: version, order, sort key, id and
/// fingerprint, base64url.
fn encode(cursor: SearchCursor, fingerprint: u64) -> String {
    let (order, key, id) = match cursor {
        SearchCursor::Relevance { rank, id } => (RELEVANCE, rank, id),
        SearchCursor::Newest { at, id } => (NEWEST, at.timestamp_micros(), id),
    };
    let mut bytes = Vec::with_capacity(LEN);
    bytes.push(VERSION);
    bytes.push(order);
    bytes.extend_from_slice(&key.to_be_bytes());
    bytes.extend_from_slice(id.as_bytes());
    bytes.extend_from_slice(&fingerprint.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode(token: &str, fingerprint: u64) -> Result<Option<SearchCursor>, String> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || "is not a page token from this search".to_owned();
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    if bytes.len() != LEN || bytes[0] != VERSION {
        return Err(invalid());
    }
    let key = i64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes"));
    let id = Uuid::from_slice(&bytes[10..26]).map_err(|_| invalid())?;
    let stored = u64::from_be_bytes(bytes[26..34].try_into().expect("8 bytes"));
    if stored != fingerprint {
        return Err("was issued for a different query or filters".to_owned());
    }
    match bytes[1] {
        RELEVANCE => Ok(Some(SearchCursor::Relevance { rank: key, id })),
        // Tokens carry no MAC: an edited time must still be one the database stores.
        NEWEST => DateTime::from_timestamp_micros(key)
            .filter(|t| in_timestamp_range(*t))
            .map(|at| Some(SearchCursor::Newest { at, id }))
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

fn fragments_to_pb(fragments: Fragments) -> Vec<Fragment> {
    fragments
        .into_iter()
        .map(|(text, highlighted)| Fragment { text, highlighted })
        .collect()
}

/// How long lexeme statistics are used before they are read again. They
/// change when ANALYZE runs (autovacuum, after a tenth of a table changed),
/// so minutes are fresh enough; reading them costs a few milliseconds.
const STATS_FOR: Duration = Duration::from_secs(300);

/// The lexeme statistics of both tables, read at most every
/// [`STATS_FOR`]; the first search after that re-reads them.
#[derive(Default)]
pub(super) struct StatsCache(Mutex<Option<(Instant, Arc<BothStats>)>>);

/// The statistics of `tickets` and of `ticket_messages`.
type BothStats = (LexemeStats, LexemeStats);

impl StatsCache {
    async fn get(&self, pool: &sqlx::PgPool) -> ApiResult<Arc<BothStats>> {
        if let Some((at, stats)) = self.0.lock().expect("not poisoned").as_ref()
            && at.elapsed() < STATS_FOR
        {
            return Ok(stats.clone());
        }
        let stats = Arc::new(search::lexeme_stats(pool).await?);
        *self.0.lock().expect("not poisoned") = Some((Instant::now(), stats.clone()));
        Ok(stats)
    }
}

impl TicketApi {
    pub(super) async fn search(
        &self,
        caller: &Caller,
        req: pb::SearchTicketsRequest,
    ) -> ApiResult<pb::SearchTicketsResponse> {
        let Request {
            mut search,
            order,
            limit,
            cursor,
            fingerprint,
        } = parse(caller, &req)?;
        if access::is_user(caller) {
            let own = access::own_account(caller)?;
            if search.filter.user_id.is_some_and(|named| named != own) {
                return Err(ApiError::denied("users search their own tickets only"));
            }
            search.filter.user_id = Some(own);
        }
        let stats = self.search_stats.get(&self.pool).await?;
        // One connection, no transaction: a page and its rows need not be
        // one snapshot (a ticket changed in between is shown as it is now),
        // and BEGIN and COMMIT would be two more round trips.
        let mut conn = self.pool.acquire().await?;
        let parsed = search::parse(&mut *conn, &search.text).await?;
        let (words, any_of) = tree_words(&parsed.tree);
        let (in_tickets, in_messages) = (
            stats.0.estimate(&words, any_of),
            stats.1.estimate(&words, any_of),
        );
        let order = match cursor {
            // Later pages keep the first page's order.
            Some(cursor) => cursor.order(),
            None => {
                if !parsed.words {
                    return Err(ApiError::invalid(
                        "query",
                        "has no words to search for (only stop words or punctuation)",
                    ));
                }
                if !parsed.indexable {
                    return Err(ApiError::invalid(
                        "query",
                        "must name a word to find, not only words to exclude",
                    ));
                }
                // One user's few tickets are always ranked in full.
                let matched = search
                    .filter
                    .user_id
                    .is_none()
                    .then_some(in_tickets + in_messages);
                choose_order(order, matched)
            }
        };
        let (ids, next) = match order {
            SearchOrder::Relevance => {
                let after = match cursor {
                    Some(SearchCursor::Relevance { rank, id }) => Some((rank, id)),
                    _ => None,
                };
                let mut rows =
                    search::relevance_page(&mut *conn, &search, after, limit + 1).await?;
                let next =
                    cut(&mut rows, limit).map(|&(id, rank)| SearchCursor::Relevance { rank, id });
                (rows, next)
            }
            SearchOrder::Newest => {
                let after = match cursor {
                    Some(SearchCursor::Newest { at, id }) => Some((at, id)),
                    _ => None,
                };
                let rows = search::newest_page(
                    &mut *conn,
                    &search,
                    after,
                    limit + 1,
                    walk(in_tickets),
                    walk(in_messages),
                )
                .await?;
                let mut rows: Vec<(Uuid, i64)> = rows
                    .into_iter()
                    .map(|(id, at)| (id, at.timestamp_micros()))
                    .collect();
                let next = cut(&mut rows, limit).and_then(|&(id, micros)| {
                    DateTime::from_timestamp_micros(micros)
                        .map(|at| SearchCursor::Newest { at, id })
                });
                // Newest first carries no relevance.
                rows.iter_mut().for_each(|row| row.1 = 0);
                (rows, next)
            }
        };
        let page: Vec<Uuid> = ids.iter().map(|(id, _)| *id).collect();
        let found = search::found(&mut *conn, &search.text, search.notes, &page).await?;
        drop(conn);
        let results = found
            .into_iter()
            .zip(ids)
            .map(|(f, (_, rank))| result(f, rank))
            .collect();
        Ok(pb::SearchTicketsResponse {
            results,
            next_page_token: next.map(|c| encode(c, fingerprint)).unwrap_or_default(),
            order: order_to_pb(order).into(),
        })
    }
}

/// Cuts the one extra row off `rows`; the last row served when there is a
/// next page.
fn cut<T>(rows: &mut Vec<T>, limit: i64) -> Option<&T> {
    if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last()
    } else {
        None
    }
}

fn result(found: Found, rank: i64) -> pb::TicketSearchResult {
    pb::TicketSearchResult {
        ticket: Some(convert::ticket(&found.ticket)),
        subject: fragments_to_pb(found.subject),
        snippet: fragments_to_pb(found.snippet),
        message_id: convert::or_empty(found.message_id),
        // Ranks are ts_rank sums scaled by 1e6 (storage::search).
        relevance: (rank as f64 / 1_000_000.0) as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_other_searches() {
        let id = Uuid::now_v7();
        for cursor in [
            SearchCursor::Relevance { rank: 123_456, id },
            SearchCursor::Newest {
                at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
                id,
            },
        ] {
            let token = encode(cursor, 7);
            assert_eq!(decode(&token, 7), Ok(Some(cursor)));
            assert!(decode(&token, 8).is_err());
        }
        assert!(decode("garbage", 7).is_err());
        assert_eq!(decode("", 7), Ok(None));
    }
}
