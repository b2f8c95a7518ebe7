//! `request_id` replay for mutating RPCs.
//!
//! Inside the RPC's own transaction, [`claim`] inserts the key. If it was new,
//! the handler does its work and [`complete`] stores the encoded response in
//! the same transaction; if it already existed, the stored response is
//! returned instead, with no second effect. A concurrent duplicate blocks on
//! the key's row until the first commits, then replays its answer. A failed
//! request rolls the key back, so a retry runs again. The same key with a
//! different request is INVALID_ARGUMENT.

use chrono::{DateTime, Utc};
use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// Parses an optional `request_id` field: empty means none.
pub fn parse_request_id(raw: &str) -> Result<Option<Uuid>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(raw)
        .map(Some)
        .map_err(|_| "must be a UUID".to_owned())
}

/// One idempotency key: who, which method, which request.
#[derive(Debug, Clone)]
pub struct Key {
    caller: String,
    method: &'static str,
    request_id: Uuid,
    request_hash: Vec<u8>,
}

impl Key {
    /// `request` is hashed so the same key with a different body is caught.
    pub fn new(
        caller: &str,
        method: &'static str,
        request_id: Uuid,
        request: &impl Message,
    ) -> Self {
        Self {
            caller: caller.to_owned(),
            method,
            request_id,
            request_hash: Sha256::digest(request.encode_to_vec()).to_vec(),
        }
    }
}

/// What [`claim`] found.
#[derive(Debug)]
pub enum Claim<R> {
    /// First time: do the work, then [`complete`].
    New,
    /// Seen before: return this response.
    Replay(R),
}

/// Claims `key` inside the caller's transaction.
pub async fn claim<R: Message + Default>(
    conn: &mut PgConnection,
    key: &Key,
) -> ApiResult<Claim<R>> {
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO idempotency_keys (caller, method, request_id, request_hash)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT DO NOTHING
           RETURNING true AS "inserted!""#,
        key.caller,
        key.method,
        key.request_id,
        key.request_hash,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_some() {
        return Ok(Claim::New);
    }
    let stored = sqlx::query!(
        "SELECT request_hash, response FROM idempotency_keys
         WHERE caller = $1 AND method = $2 AND request_id = $3",
        key.caller,
        key.method,
        key.request_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    if stored.request_hash != key.request_hash {
        return Err(ApiError::invalid(
            "request_id",
            "already used for a different request",
        ));
    }
    match stored.response {
        Some(bytes) => Ok(Claim::Replay(R::decode(bytes.as_slice())?)),
        // Unreachable in practice: the key and its response commit together.
        None => Err(ApiError::Aborted("request in progress, retry".into())),
    }
}

/// Looks up a finished request without claiming it, so a retry can be
/// answered before any dependency is called (e.g. while one is down).
pub async fn replayed<R: Message + Default>(pool: &PgPool, key: &Key) -> ApiResult<Option<R>> {
    let stored = sqlx::query!(
        "SELECT request_hash, response FROM idempotency_keys
         WHERE caller = $1 AND method = $2 AND request_id = $3",
        key.caller,
        key.method,
        key.request_id,
    )
    .fetch_optional(pool)
    .await?;
    match stored {
        Some(row) if row.request_hash != key.request_hash => Err(ApiError::invalid(
            "request_id",
            "already used for a different request",
        )),
        Some(row) => Ok(row.response.map(|b| R::decode(b.as_slice())).transpose()?),
        None => Ok(None),
    }
}

/// [`claim`] when a key was given: `Some(response)` means replay it.
pub async fn claim_opt<R: Message + Default>(
    conn: &mut PgConnection,
    key: Option<&Key>,
) -> ApiResult<Option<R>> {
    match key {
        Some(key) => match claim(conn, key).await? {
            Claim::New => Ok(None),
            Claim::Replay(response) => Ok(Some(response)),
        },
        None => Ok(None),
    }
}

/// [`complete`] when a key was given.
pub async fn complete_opt(
    conn: &mut PgConnection,
    key: Option<&Key>,
    response: &impl Message,
) -> ApiResult<()> {
    match key {
        Some(key) => complete(conn, key, response).await,
        None => Ok(()),
    }
}

/// Stores the response for `key`, in the same transaction as the work.
pub async fn complete(
    conn: &mut PgConnection,
    key: &Key,
    response: &impl Message,
) -> ApiResult<()> {
    sqlx::query!(
        "UPDATE idempotency_keys SET response = $4
         WHERE caller = $1 AND method = $2 AND request_id = $3",
        key.caller,
        key.method,
        key.request_id,
        response.encode_to_vec(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes keys created before `before`; returns how many.
pub async fn prune(pool: &PgPool, before: DateTime<Utc>) -> sqlx::Result<u64> {
    let done = sqlx::query!("DELETE FROM idempotency_keys WHERE created_at < $1", before)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
