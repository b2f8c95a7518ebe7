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

use crate::{
    db::bounded_chunks,
    error::{ApiError, ApiResult},
};

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

/// A finished request's `idempotency_keys` row as the parameters of one
/// statement that claims the key *and* does the work: its data-modifying
/// parts write only when the key's insert (`ON CONFLICT DO NOTHING`)
/// returned a row. One round trip instead of claim, work and [`complete`].
/// Every field is NULL (and no row is written) when the request had no key.
/// A key already there means a replay: roll back and answer [`replayed`].
#[derive(Debug, Default)]
pub struct Finished<'a> {
    /// Who made the request.
    pub caller: Option<&'a str>,
    /// Which method.
    pub method: Option<&'static str>,
    /// The caller's request id; test it for NULL to tell "no key".
    pub request_id: Option<Uuid>,
    /// The request's hash, to catch the key reused for another request.
    pub request_hash: Option<&'a [u8]>,
    /// The encoded response a retry will get.
    pub response: Option<Vec<u8>>,
}

impl<'a> Finished<'a> {
    /// The row for `key` answered with `response`, or all NULL without a key.
    pub fn new(key: Option<&'a Key>, response: &impl Message) -> Self {
        match key {
            Some(key) => Self {
                caller: Some(&key.caller),
                method: Some(key.method),
                request_id: Some(key.request_id),
                request_hash: Some(&key.request_hash),
                response: Some(response.encode_to_vec()),
            },
            None => Self::default(),
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

// Batches: the same records for many requests, a statement for all of
// them instead of one per request (e.g. `BatchAssignTickets`, whose items
// use the keys their single calls would). Same rules: a key is claimed in
// the work's transaction, completed with its response there, and released
// (deleted, as a rollback would) when its item fails.

/// What an existing key holds, as [`stored_all`] reads it.
#[derive(Debug)]
pub enum Stored<R> {
    /// The first request finished with this response: replay it.
    Done(R),
    /// The key was used for a different request (INVALID_ARGUMENT).
    OtherRequest,
    /// Claimed but not finished (unreachable in practice, as in [`claim`]).
    InProgress,
}

/// Claims every key, one statement per few kilobytes of keys, in key order
/// (so two batches never wait for each other in a cycle). Returns the
/// indexes into `keys` of those newly claimed; the others existed: see
/// [`stored_all`]. A key claimed by a transaction still open blocks this
/// until that one ends, as in [`claim`].
pub async fn claim_all(conn: &mut PgConnection, keys: &[&Key]) -> sqlx::Result<Vec<usize>> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |k: &Key| (k.caller.clone(), k.method, k.request_id);
        key(keys[a]).cmp(&key(keys[b]))
    });
    let sorted: Vec<&Key> = order.iter().map(|&i| keys[i]).collect();
    let mut claimed = Vec::new();
    let mut offset = 0;
    for chunk in bounded_chunks(&sorted, |k| k.caller.len() + k.method.len() + 60) {
        let new = claim_chunk(conn, chunk).await?;
        claimed.extend(new.into_iter().map(|i| order[offset + i]));
        offset += chunk.len();
    }
    claimed.sort_unstable();
    Ok(claimed)
}

async fn claim_chunk(conn: &mut PgConnection, keys: &[&Key]) -> sqlx::Result<Vec<usize>> {
    let Columns {
        callers,
        methods,
        ids,
        hashes,
    } = columns(keys);
    let claimed = sqlx::query!(
        r#"INSERT INTO idempotency_keys (caller, method, request_id, request_hash)
           SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::bytea[])
           ORDER BY 1, 2, 3
           ON CONFLICT DO NOTHING
           RETURNING caller, method, request_id"#,
        &callers as &[&str],
        &methods as &[&str],
        &ids,
        &hashes as &[&[u8]],
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(keys
        .iter()
        .enumerate()
        .filter(|(_, k)| {
            claimed.iter().any(|c| {
                c.request_id == k.request_id && c.method == k.method && c.caller == k.caller
            })
        })
        .map(|(i, _)| i)
        .collect())
}

/// What the existing `keys` hold, in one query: one entry per key, `None`
/// for a key that does not exist.
pub async fn stored_all<R: Message + Default>(
    conn: &mut PgConnection,
    keys: &[&Key],
) -> ApiResult<Vec<Option<Stored<R>>>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let Columns {
        callers,
        methods,
        ids,
        ..
    } = columns(keys);
    let rows = sqlx::query!(
        r#"SELECT k.caller, k.method, k.request_id, k.request_hash, k.response
           FROM idempotency_keys k
           JOIN unnest($1::text[], $2::text[], $3::uuid[]) AS w(caller, method, request_id)
             ON (k.caller, k.method, k.request_id) = (w.caller, w.method, w.request_id)"#,
        &callers as &[&str],
        &methods as &[&str],
        &ids,
    )
    .fetch_all(&mut *conn)
    .await?;
    keys.iter()
        .map(|k| {
            let Some(row) = rows.iter().find(|r| {
                r.request_id == k.request_id && r.method == k.method && r.caller == k.caller
            }) else {
                return Ok(None);
            };
            Ok(Some(if row.request_hash != k.request_hash {
                Stored::OtherRequest
            } else {
                match &row.response {
                    Some(bytes) => Stored::Done(R::decode(bytes.as_slice())?),
                    None => Stored::InProgress,
                }
            }))
        })
        .collect()
}

/// Stores each claimed key's response ([`complete`] for many), one
/// statement per few kilobytes of responses.
pub async fn complete_all(conn: &mut PgConnection, done: &[(&Key, Vec<u8>)]) -> sqlx::Result<()> {
    for chunk in bounded_chunks(done, |(k, r)| {
        k.caller.len() + k.method.len() + r.len() + 30
    }) {
        complete_chunk(conn, chunk).await?;
    }
    Ok(())
}

async fn complete_chunk(conn: &mut PgConnection, done: &[(&Key, Vec<u8>)]) -> sqlx::Result<()> {
    let keys: Vec<&Key> = done.iter().map(|(k, _)| *k).collect();
    let Columns {
        callers,
        methods,
        ids,
        ..
    } = columns(&keys);
    let responses: Vec<&[u8]> = done.iter().map(|(_, r)| r.as_slice()).collect();
    sqlx::query!(
        "UPDATE idempotency_keys k SET response = d.response
         FROM unnest($1::text[], $2::text[], $3::uuid[], $4::bytea[])
              AS d(caller, method, request_id, response)
         WHERE (k.caller, k.method, k.request_id) = (d.caller, d.method, d.request_id)",
        &callers as &[&str],
        &methods as &[&str],
        &ids,
        &responses as &[&[u8]],
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes claimed keys whose requests failed, as a rollback of their own
/// transaction would have: a retry of those runs again.
pub async fn release_all(conn: &mut PgConnection, keys: &[&Key]) -> sqlx::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let Columns {
        callers,
        methods,
        ids,
        ..
    } = columns(keys);
    sqlx::query!(
        "DELETE FROM idempotency_keys k
         USING unnest($1::text[], $2::text[], $3::uuid[]) AS d(caller, method, request_id)
         WHERE (k.caller, k.method, k.request_id) = (d.caller, d.method, d.request_id)",
        &callers as &[&str],
        &methods as &[&str],
        &ids,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Keys as the columns of an `unnest`.
struct Columns<'k> {
    callers: Vec<&'k str>,
    methods: Vec<&'k str>,
    ids: Vec<Uuid>,
    hashes: Vec<&'k [u8]>,
}

fn columns<'k>(keys: &[&'k Key]) -> Columns<'k> {
    Columns {
        callers: keys.iter().map(|k| k.caller.as_str()).collect(),
        methods: keys.iter().map(|k| k.method).collect(),
        ids: keys.iter().map(|k| k.request_id).collect(),
        hashes: keys.iter().map(|k| k.request_hash.as_slice()).collect(),
    }
}

/// Deletes keys created before `before`; returns how many.
pub async fn prune(pool: &PgPool, before: DateTime<Utc>) -> sqlx::Result<u64> {
    let done = sqlx::query!("DELETE FROM idempotency_keys WHERE created_at < $1", before)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
