//! Ticket numbers, taken from the sequence a block at a time: a create then
//! costs no round trip of its own for its number (its human id, response and
//! event are all built before its one statement).
//!
//! Numbers stay unique across replicas (each block comes from the one
//! sequence) but are no longer handed out in creation order across replicas,
//! and the unused rest of a block is skipped when the process stops. Neither
//! is visible: human ids are a permutation of the numbers (docs/ticket-ids.md),
//! and the sequence already skipped the numbers of failed creates.

use std::collections::VecDeque;

use sqlx::PgPool;
use tokio::sync::Mutex;

use super::tickets;

/// How many numbers one round trip reserves.
const BLOCK: i32 = 32;

/// Hands out ticket numbers; one per service, shared by its handlers.
#[derive(Debug, Default)]
pub struct Numbers {
    /// Reserved and not yet handed out, in sequence order. The async mutex
    /// is held across a refill, so callers that find it empty wait for one
    /// block instead of each reserving their own.
    reserved: Mutex<VecDeque<i64>>,
}

impl Numbers {
    /// The next number, reserving a block first when none is left.
    pub async fn next(&self, pool: &PgPool) -> sqlx::Result<i64> {
        let mut reserved = self.reserved.lock().await;
        if reserved.is_empty() {
            reserved.extend(tickets::next_numbers(pool, BLOCK).await?);
        }
        reserved.pop_front().ok_or_else(|| {
            sqlx::Error::Protocol("the ticket number sequence returned no row".into())
        })
    }
}
