//! `support.v1.NotificationService`: protobuf in, storage and the live feed,
//! protobuf out. Every call acts on the caller's own feed and preferences
//! (a service token has none: PERMISSION_DENIED); ids of other people's
//! notifications match nothing. Staff read a ticket's delivery records.

pub mod convert;

use std::{collections::HashSet, pin::Pin};

use futures_util::Stream;
use helpdesk_kit::{
    auth::Caller,
    clock::SharedClock,
    error::{ApiError, ApiResult, Violations},
    page_token::{self, Cursor, PageSize},
    ticket_ref::TicketRef,
};
use helpdesk_proto::support::v1::{self as pb, notification_service_server::NotificationService};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    app::feed::Feed,
    domain::{Audience, preferences::Policy},
    storage::{
        deliveries,
        notifications::{self, FeedFilter, Selection},
        preferences,
    },
};

const FEED_PAGE: PageSize = PageSize {
    default: 20,
    max: 100,
};
const DELIVERIES_PAGE: PageSize = PageSize {
    default: 50,
    max: 500,
};
/// Most ids one MarkRead names.
const MAX_MARK: usize = 500;
/// Rows a stream reads per round.
const STREAM_BATCH: i64 = 100;

pub struct NotificationApi {
    pool: PgPool,
    feed: Feed,
    policy: Policy,
    clock: SharedClock,
    /// Cancelled when the server starts shutting down: open streams end
    /// (the client reconnects elsewhere with its cursor) instead of holding
    /// the drain until its grace period.
    closing: CancellationToken,
}

impl NotificationApi {
    pub fn new(
        pool: PgPool,
        feed: Feed,
        policy: Policy,
        clock: SharedClock,
        closing: CancellationToken,
    ) -> Self {
        Self {
            pool,
            feed,
            policy,
            clock,
            closing,
        }
    }
}

/// The caller's account: every feed call is about one person's own.
fn account(caller: &Caller) -> ApiResult<Uuid> {
    caller.account_id().ok_or_else(|| {
        ApiError::denied("a service has no notifications; call with the person's own token")
    })
}

/// The kinds a caller may receive, for preferences.
fn audiences(caller: &Caller) -> Vec<Audience> {
    if caller.is_staff() {
        // Staff can also open tickets of their own.
        vec![Audience::Staff, Audience::User]
    } else {
        vec![Audience::User]
    }
}

/// A ticket filter: its UUID, or the ticket behind a human id (`None` when
/// no notification names it: nothing to match).
async fn ticket_filter(pool: &PgPool, raw: &str) -> ApiResult<Option<Option<Uuid>>> {
    if raw.is_empty() {
        return Ok(Some(None));
    }
    match TicketRef::parse(raw).map_err(|why| ApiError::invalid("ticket_id", why))? {
        TicketRef::Id(id) => Ok(Some(Some(id))),
        TicketRef::Human(human) => Ok(notifications::ticket_by_human_id(pool, &human)
            .await?
            .map(Some)),
    }
}

type FeedStream =
    Pin<Box<dyn Stream<Item = Result<pb::StreamNotificationsResponse, Status>> + Send>>;

impl NotificationApi {
    async fn list(
        &self,
        me: Uuid,
        req: pb::ListNotificationsRequest,
    ) -> ApiResult<pb::ListNotificationsResponse> {
        let mut v = Violations::default();
        let limit = v.take("page_size", FEED_PAGE.resolve(req.page_size));
        let fingerprint = page_token::fingerprint(&[
            me.as_bytes(),
            &[u8::from(req.unread_only)],
            req.ticket_id.to_ascii_uppercase().as_bytes(),
        ]);
        let after = v
            .take(
                "page_token",
                page_token::decode(&req.page_token, fingerprint),
            )
            .flatten();
        v.into_result()?;
        let unread_count = notifications::unread_count(&self.pool, me).await?;
        let Some(ticket_id) = ticket_filter(&self.pool, &req.ticket_id).await? else {
            return Ok(pb::ListNotificationsResponse {
                unread_count,
                ..Default::default()
            });
        };
        let limit = limit.unwrap_or(FEED_PAGE.default);
        let filter = FeedFilter {
            unread_only: req.unread_only,
            ticket_id,
        };
        let rows =
            notifications::page(&self.pool, me, filter, after.map(|c| c.id), limit + 1).await?;
        let more = rows.len() as i64 > limit;
        let rows = &rows[..rows.len().min(limit as usize)];
        let next_page_token = match rows.last() {
            Some(last) if more => page_token::encode(
                Cursor {
                    at: last.create_time,
                    id: last.id,
                },
                fingerprint,
            ),
            _ => String::new(),
        };
        Ok(pb::ListNotificationsResponse {
            notifications: rows.iter().map(convert::notification).collect(),
            next_page_token,
            unread_count,
        })
    }

    async fn mark(&self, me: Uuid, selection: Selection) -> ApiResult<pb::UnreadCount> {
        let mut tx = self.pool.begin().await?;
        notifications::mark_read(&mut tx, me, &selection, self.clock.now()).await?;
        let unread_count = notifications::unread_count(&mut *tx, me).await?;
        tx.commit().await?;
        Ok(pb::UnreadCount { unread_count })
    }

    async fn mark_read_request(
        &self,
        me: Uuid,
        req: pb::MarkReadRequest,
    ) -> ApiResult<pb::UnreadCount> {
        let mut v = Violations::default();
        match (req.ids.is_empty(), req.ticket_id.is_empty()) {
            (true, true) => v.add("ids", "name notifications, or set ticket_id"),
            (false, false) => v.add("ticket_id", "must be empty when ids are given"),
            _ => {}
        }
        if req.ids.len() > MAX_MARK {
            v.add("ids", format!("at most {MAX_MARK} per call"));
        }
        let mut ids = Vec::with_capacity(req.ids.len());
        for (i, raw) in req.ids.iter().enumerate() {
            if let Some(id) = v.take(
                &format!("ids[{i}]"),
                Uuid::parse_str(raw).map_err(|_| "is not a notification id".to_owned()),
            ) {
                ids.push(id);
            }
        }
        let ticket = if req.ticket_id.is_empty() || !req.ids.is_empty() {
            None
        } else {
            v.take("ticket_id", TicketRef::parse(&req.ticket_id))
        };
        v.into_result()?;
        let selection = match ticket {
            None => Selection::Ids(ids),
            Some(TicketRef::Id(id)) => Selection::Ticket(id),
            Some(TicketRef::Human(human)) => {
                match notifications::ticket_by_human_id(&self.pool, &human).await? {
                    Some(id) => Selection::Ticket(id),
                    None => Selection::Ids(Vec::new()),
                }
            }
        };
        self.mark(me, selection).await
    }

    fn preferences_of(
        &self,
        caller: &Caller,
        own: &std::collections::HashMap<crate::domain::preferences::Pair, bool>,
    ) -> pb::Preferences {
        pb::Preferences {
            channels: self
                .policy
                .settings(&audiences(caller), own)
                .into_iter()
                .map(|s| pb::ChannelSetting {
                    kind: convert::kind_to_pb(s.kind) as i32,
                    channel: convert::channel_to_pb(s.channel) as i32,
                    enabled: s.enabled,
                    mandatory: s.mandatory,
                })
                .collect(),
        }
    }

    async fn update_preferences(
        &self,
        caller: &Caller,
        req: pb::UpdatePreferencesRequest,
    ) -> ApiResult<pb::Preferences> {
        let me = account(caller)?;
        let mut v = Violations::default();
        if let Some(mask) = &req.update_mask {
            for (i, path) in mask.paths.iter().enumerate() {
                if path != "channels" {
                    v.add(
                        format!("update_mask.paths[{i}]"),
                        "only `channels` can be updated",
                    );
                }
            }
        }
        let allowed = audiences(caller);
        let mut choices = Vec::new();
        let mut seen = HashSet::new();
        let entries = req.preferences.map(|p| p.channels).unwrap_or_default();
        if entries.is_empty() {
            v.add("preferences.channels", "name at least one kind and channel");
        }
        for (i, entry) in entries.iter().enumerate() {
            let field = |name: &str| format!("preferences.channels[{i}].{name}");
            let kind = pb::NotificationKind::try_from(entry.kind)
                .ok()
                .and_then(convert::kind_from_pb);
            let kind = match kind {
                Some(kind) if allowed.contains(&kind.audience()) => Some(kind),
                Some(_) => {
                    v.add(field("kind"), "is not a kind you receive");
                    None
                }
                None => {
                    v.add(field("kind"), "must be a notification kind");
                    None
                }
            };
            let channel = match pb::Channel::try_from(entry.channel) {
                Ok(pb::Channel::InApp) => {
                    v.add(field("channel"), "in-app notifications are always kept");
                    None
                }
                Ok(c) => convert::channel_from_pb(c).or_else(|| {
                    v.add(field("channel"), "must be CHANNEL_EMAIL or CHANNEL_PUSH");
                    None
                }),
                Err(_) => {
                    v.add(field("channel"), "must be CHANNEL_EMAIL or CHANNEL_PUSH");
                    None
                }
            };
            if let (Some(kind), Some(channel)) = (kind, channel) {
                if !entry.enabled && self.policy.mandatory.contains(&(kind, channel)) {
                    v.add(
                        field("enabled"),
                        format!("{kind} by {channel} is mandatory and cannot be turned off"),
                    );
                } else if !seen.insert((kind, channel)) {
                    v.add(field("kind"), "is listed twice for this channel");
                } else {
                    choices.push(((kind, channel), entry.enabled));
                }
            }
        }
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        preferences::set(&mut tx, me, &choices, self.clock.now()).await?;
        let own = preferences::of(&mut *tx, me).await?;
        tx.commit().await?;
        Ok(self.preferences_of(caller, &own))
    }

    async fn list_deliveries(
        &self,
        req: pb::ListDeliveriesRequest,
    ) -> ApiResult<pb::ListDeliveriesResponse> {
        let mut v = Violations::default();
        let ticket = v.take("ticket_id", TicketRef::parse(&req.ticket_id));
        let limit = v.take("page_size", DELIVERIES_PAGE.resolve(req.page_size));
        let fingerprint = page_token::fingerprint(&[req.ticket_id.to_ascii_uppercase().as_bytes()]);
        let after = v
            .take(
                "page_token",
                page_token::decode(&req.page_token, fingerprint),
            )
            .flatten();
        v.into_result()?;
        let ticket_id = match ticket {
            Some(TicketRef::Id(id)) => Some(id),
            Some(TicketRef::Human(human)) => {
                notifications::ticket_by_human_id(&self.pool, &human).await?
            }
            None => None,
        };
        let Some(ticket_id) = ticket_id else {
            return Ok(pb::ListDeliveriesResponse::default());
        };
        let limit = limit.unwrap_or(DELIVERIES_PAGE.default);
        let rows =
            deliveries::by_ticket(&self.pool, ticket_id, after.map(|c| c.id), limit + 1).await?;
        let mut deliveries = Vec::with_capacity(rows.len() * 3);
        let mut notifications_seen = 0i64;
        let mut last = None;
        for (i, row) in rows.iter().enumerate() {
            let first_of_notification =
                i == 0 || rows[i - 1].notification_id != row.notification_id;
            if first_of_notification {
                notifications_seen += 1;
                if notifications_seen > limit {
                    break;
                }
                last = Some(row);
                deliveries.push(convert::delivery(row, true));
            }
            if row.channel.is_some() {
                deliveries.push(convert::delivery(row, false));
            }
        }
        let next_page_token = match last {
            Some(last) if notifications_seen > limit => page_token::encode(
                Cursor {
                    at: last.notified_at,
                    id: last.notification_id,
                },
                fingerprint,
            ),
            _ => String::new(),
        };
        Ok(pb::ListDeliveriesResponse {
            deliveries,
            next_page_token,
        })
    }

    async fn open_stream(
        &self,
        me: Uuid,
        req: pb::StreamNotificationsRequest,
    ) -> ApiResult<FeedStream> {
        let cursor =
            convert::parse_cursor(&req.cursor).map_err(|why| ApiError::invalid("cursor", why))?;
        // Subscribe before reading: whatever commits after the reads below
        // wakes this stream.
        let subscription = self.feed.subscribe(me);
        let (unread, newest) = notifications::badge(&self.pool, me).await?;
        let start = cursor.unwrap_or(newest);
        let (tx, rx) = mpsc::channel(64);
        let first = pb::StreamNotificationsResponse {
            notification: None,
            unread_count: unread,
            cursor: convert::cursor(start),
        };
        tx.send(Ok(first))
            .await
            .map_err(|_| ApiError::Unavailable("stream closed".into()))?;
        let pool = self.pool.clone();
        let closing = self.closing.clone();
        tokio::spawn(async move {
            let mut at = start;
            let mut badge = Badge {
                unread,
                counted_through: newest,
                sent: unread,
            };
            loop {
                let recount = subscription.take_recount();
                match follow(&pool, &tx, me, &mut at, &mut badge, recount).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(err) => {
                        tracing::warn!(error = %err, "feed stream read failed");
                        let _ = tx
                            .send(Err(Status::unavailable(
                                "feed unavailable; reconnect with your cursor",
                            )))
                            .await;
                        return;
                    }
                }
                tokio::select! {
                    _ = subscription.changed() => {}
                    _ = tx.closed() => return,
                    _ = closing.cancelled() => {
                        let _ = tx
                            .send(Err(Status::unavailable("server shutting down; reconnect with your cursor")))
                            .await;
                        return;
                    }
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }
}

/// A stream's unread count: the count as of `counted_through` (a `seq`),
/// plus the unread notifications it has sent since; `sent` is the count
/// the client last saw.
struct Badge {
    unread: i64,
    counted_through: i64,
    sent: i64,
}

/// Sends what the feed has after `at` and any change of the unread count
/// (counted again when `recount`); `Ok(false)` when the client went away.
async fn follow(
    pool: &PgPool,
    tx: &mpsc::Sender<Result<pb::StreamNotificationsResponse, Status>>,
    me: Uuid,
    at: &mut i64,
    badge: &mut Badge,
    recount: bool,
) -> sqlx::Result<bool> {
    if recount {
        (badge.unread, badge.counted_through) = notifications::badge(pool, me).await?;
    }
    loop {
        let rows = notifications::after(pool, me, *at, STREAM_BATCH).await?;
        for row in &rows {
            // Rows newer than the count are added to it as they are sent;
            // older ones (a replay after a reconnect) are in it already.
            if row.seq > badge.counted_through {
                badge.counted_through = row.seq;
                if row.read_time.is_none() {
                    badge.unread += 1;
                }
            }
            let message = pb::StreamNotificationsResponse {
                notification: Some(convert::notification(row)),
                unread_count: badge.unread,
                cursor: convert::cursor(row.seq),
            };
            if tx.send(Ok(message)).await.is_err() {
                return Ok(false);
            }
            badge.sent = badge.unread;
            *at = row.seq;
        }
        if (rows.len() as i64) == STREAM_BATCH {
            continue;
        }
        if badge.unread != badge.sent {
            let update = pb::StreamNotificationsResponse {
                notification: None,
                unread_count: badge.unread,
                cursor: convert::cursor(*at),
            };
            if tx.send(Ok(update)).await.is_err() {
                return Ok(false);
            }
            badge.sent = badge.unread;
        }
        return Ok(true);
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let me = account(&Caller::from_request(&request)?)?;
        Ok(Response::new(self.list(me, request.into_inner()).await?))
    }

    async fn get_unread_count(
        &self,
        request: Request<pb::GetUnreadCountRequest>,
    ) -> Result<Response<pb::UnreadCount>, Status> {
        let me = account(&Caller::from_request(&request)?)?;
        let unread_count = notifications::unread_count(&self.pool, me)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::UnreadCount { unread_count }))
    }

    async fn mark_read(
        &self,
        request: Request<pb::MarkReadRequest>,
    ) -> Result<Response<pb::UnreadCount>, Status> {
        let me = account(&Caller::from_request(&request)?)?;
        Ok(Response::new(
            self.mark_read_request(me, request.into_inner()).await?,
        ))
    }

    async fn mark_all_read(
        &self,
        request: Request<pb::MarkAllReadRequest>,
    ) -> Result<Response<pb::UnreadCount>, Status> {
        let me = account(&Caller::from_request(&request)?)?;
        Ok(Response::new(self.mark(me, Selection::All).await?))
    }

    type StreamNotificationsStream = FeedStream;

    async fn stream_notifications(
        &self,
        request: Request<pb::StreamNotificationsRequest>,
    ) -> Result<Response<FeedStream>, Status> {
        let me = account(&Caller::from_request(&request)?)?;
        Ok(Response::new(
            self.open_stream(me, request.into_inner()).await?,
        ))
    }

    async fn get_preferences(
        &self,
        request: Request<pb::GetPreferencesRequest>,
    ) -> Result<Response<pb::Preferences>, Status> {
        let caller = Caller::from_request(&request)?;
        let me = account(&caller)?;
        let own = preferences::of(&self.pool, me)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(self.preferences_of(&caller, &own)))
    }

    async fn update_preferences(
        &self,
        request: Request<pb::UpdatePreferencesRequest>,
    ) -> Result<Response<pb::Preferences>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.update_preferences(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let caller = Caller::from_request(&request)?;
        if !(caller.is_staff() || caller.is_trusted_service()) {
            return Err(ApiError::denied("only staff read delivery records").into());
        }
        Ok(Response::new(
            self.list_deliveries(request.into_inner()).await?,
        ))
    }
}
