//! `BatchAssignTickets`: many AssignTicket requests in one transaction, for
//! our own services (the assignment service's mover sends each batch of
//! decided moves in one call). Every item is checked and answered as
//! AssignTicket would answer it alone, with the same idempotency key; what
//! changes is the cost: a handful of set-based statements and one commit
//! for the whole batch instead of five statements and a commit per item.
//!
//! Items fail independently (AIP-233 partial success): an item's failure
//! is its own result, and its idempotency key is released as the rollback
//! of its own transaction would have. The call fails as a whole only when
//! nothing was written.

use std::collections::HashMap;

use futures_util::future::join_all;
use helpdesk_kit::{
    auth::Caller,
    error::{ApiError, ApiResult},
    idempotency::{self, Key, Stored},
};
use helpdesk_proto::{
    google::rpc::Status as ItemError,
    support::v1::{self as pb, batch_assign_tickets_result::Result as ItemResult},
};
use prost::Message;
use uuid::Uuid;

use super::{TicketApi, rule};
use crate::{
    api::{convert, events::Context, requests::Parsed},
    domain::{AccountId, Ticket, TicketKey, commands::TicketEdit},
    storage::tickets,
};

/// The error an item would have failed with alone, as a `google.rpc.Status`
/// (with its details, e.g. the `BadRequest` naming `assignee_id`).
fn item_error(error: ApiError) -> ItemError {
    let status = tonic::Status::from(error);
    if !status.details().is_empty()
        && let Ok(rich) = ItemError::decode(status.details())
    {
        return rich;
    }
    ItemError {
        code: status.code() as i32,
        message: status.message().to_owned(),
        details: Vec::new(),
    }
}

/// The assignee of an AssignTicket command.
fn assignee(edit: &TicketEdit) -> Option<AccountId> {
    edit.change.assignee.flatten()
}

impl TicketApi {
    pub(super) async fn batch_assign(
        &self,
        caller: &Caller,
        items: Vec<Parsed<TicketEdit>>,
    ) -> ApiResult<pb::BatchAssignTicketsResponse> {
        let mut results: Vec<Option<Result<pb::Ticket, ItemError>>> = vec![None; items.len()];

        // Each assignee checked once, all at once, before a connection is taken.
        let mut assignees: Vec<AccountId> =
            items.iter().filter_map(|i| assignee(&i.command)).collect();
        assignees.sort_by_key(|a| a.as_uuid());
        assignees.dedup();
        let checks = join_all(
            assignees
                .iter()
                .map(|a| self.check_assignee(Some(Some(*a)), "assignee_id")),
        )
        .await;
        let refused: HashMap<AccountId, ItemError> = assignees
            .into_iter()
            .zip(checks)
            .filter_map(|(a, check)| check.err().map(|e| (a, item_error(e))))
            .collect();
        let refusal = |i: usize| assignee(&items[i].command).and_then(|a| refused.get(&a));

        let mut tx = self.pool.begin().await?;
        // Keys of the items that passed their check are claimed; those that
        // existed, and those of refused items, are read: a retry of a request
        // that succeeded is answered from its record, as AssignTicket would.
        let to_claim: Vec<usize> = (0..items.len())
            .filter(|&i| refusal(i).is_none() && items[i].idempotency.is_some())
            .collect();
        let claimed: Vec<usize> = idempotency::claim_all(&mut tx, &keys(&items, &to_claim))
            .await?
            .into_iter()
            .map(|n| to_claim[n])
            .collect();
        let to_read: Vec<usize> = (0..items.len())
            .filter(|i| items[*i].idempotency.is_some() && !claimed.contains(i))
            .collect();
        let stored =
            idempotency::stored_all::<pb::Ticket>(&mut tx, &keys(&items, &to_read)).await?;
        for (&i, stored) in to_read.iter().zip(stored) {
            results[i] = Some(match (stored, refusal(i)) {
                (Some(Stored::Done(ticket)), _) => Ok(ticket),
                (Some(Stored::OtherRequest), _) => Err(item_error(ApiError::invalid(
                    "request_id",
                    "already used for a different request",
                ))),
                (_, Some(refused)) => Err(refused.clone()),
                // Claimed by a transaction that has not finished, or
                // released just now by one that failed: try again.
                (Some(Stored::InProgress) | None, None) => Err(item_error(ApiError::Aborted(
                    "request in progress, retry".into(),
                ))),
            });
        }
        for (i, result) in results.iter_mut().enumerate() {
            if result.is_none()
                && let Some(refused) = refusal(i)
            {
                *result = Some(Err(refused.clone()));
            }
        }

        // The rest are applied in request order on the locked tickets.
        let todo: Vec<usize> = (0..items.len()).filter(|&i| results[i].is_none()).collect();
        let wanted: Vec<&TicketKey> = todo.iter().map(|&i| &items[i].command.key).collect();
        let mut locked: HashMap<Uuid, Ticket> = tickets::lock_all(&mut tx, &wanted)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect();
        // After the lock: writes to one ticket get times in the order they ran.
        let now = self.clock.now();
        let context = Context { caller, now };
        let (mut changed, mut events) = (Vec::<Uuid>::new(), Vec::new());
        let (mut completed, mut released) = (Vec::new(), Vec::<&Key>::new());
        for i in todo {
            let Parsed {
                command: edit,
                idempotency: key,
            } = &items[i];
            let ticket = match &edit.key {
                TicketKey::Id(id) => locked.get_mut(id),
                TicketKey::Number(n) => locked.values_mut().find(|t| t.human_id == *n),
            };
            let result = match ticket {
                None => Err(ApiError::not_found("ticket")),
                Some(ticket) => match ticket.apply(&edit.change, now) {
                    Err(error) => Err(rule(error)),
                    Ok(happened) => {
                        if !happened.is_empty() {
                            // What `tickets::save` does in SQL, before the
                            // events' snapshots are taken.
                            ticket.version += 1;
                            if !changed.contains(&ticket.id) {
                                changed.push(ticket.id);
                            }
                            events.extend(context.changed_rows(ticket, &happened));
                        }
                        Ok(convert::ticket(ticket))
                    }
                },
            };
            match (&result, key) {
                (Ok(ticket), Some(key)) => completed.push((key, ticket.encode_to_vec())),
                (Err(_), Some(key)) => released.push(key),
                (_, None) => {}
            }
            results[i] = Some(result.map_err(item_error));
        }
        let changed: Vec<&Ticket> = changed.iter().map(|id| &locked[id]).collect();
        tickets::save_assignments(&mut tx, &changed).await?;
        helpdesk_events::outbox::enqueue_all(&mut tx, &events).await?;
        idempotency::complete_all(&mut tx, &completed).await?;
        idempotency::release_all(&mut tx, &released).await?;
        self.outbox.commit(tx).await?;

        Ok(pb::BatchAssignTicketsResponse {
            results: results
                .into_iter()
                .map(|r| pb::BatchAssignTicketsResult {
                    result: Some(match r {
                        Some(Ok(ticket)) => ItemResult::Ticket(ticket),
                        Some(Err(error)) => ItemResult::Error(error),
                        // Every item was answered above.
                        None => ItemResult::Error(item_error(ApiError::internal(anyhow::anyhow!(
                            "batch item left unanswered"
                        )))),
                    }),
                })
                .collect(),
        })
    }
}

/// The idempotency keys of the items at `indexes` (each has one).
fn keys<'a>(items: &'a [Parsed<TicketEdit>], indexes: &[usize]) -> Vec<&'a Key> {
    indexes
        .iter()
        .filter_map(|&i| items[i].idempotency.as_ref())
        .collect()
}
