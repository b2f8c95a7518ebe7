//! The `preferences` table: a person's own kind/channel choices.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::{Channel, Kind, preferences::Pair};

/// The choices of each of `accounts` about `kind` (one statement for a
/// whole fan-out).
pub async fn for_kind<'c>(
    db: impl PgExecutor<'c>,
    accounts: &[Uuid],
    kind: Kind,
) -> sqlx::Result<HashMap<Uuid, HashMap<Pair, bool>>> {
    let rows = sqlx::query!(
        "SELECT account_id, channel, enabled FROM preferences
         WHERE account_id = ANY($1) AND kind = $2",
        accounts,
        kind.as_str(),
    )
    .fetch_all(db)
    .await?;
    let mut out: HashMap<Uuid, HashMap<Pair, bool>> = HashMap::new();
    for row in rows {
        if let Ok(channel) = row.channel.parse::<Channel>() {
            out.entry(row.account_id)
                .or_default()
                .insert((kind, channel), row.enabled);
        }
    }
    Ok(out)
}

/// Every choice one person made.
pub async fn of<'c>(db: impl PgExecutor<'c>, account: Uuid) -> sqlx::Result<HashMap<Pair, bool>> {
    let rows = sqlx::query!(
        "SELECT kind, channel, enabled FROM preferences WHERE account_id = $1",
        account
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some(((r.kind.parse().ok()?, r.channel.parse().ok()?), r.enabled)))
        .collect())
}

/// Records choices (one statement).
pub async fn set(
    conn: &mut PgConnection,
    account: Uuid,
    choices: &[(Pair, bool)],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let kinds: Vec<&str> = choices.iter().map(|((k, _), _)| k.as_str()).collect();
    let channels: Vec<&str> = choices.iter().map(|((_, c), _)| c.as_str()).collect();
    let enabled: Vec<bool> = choices.iter().map(|(_, e)| *e).collect();
    sqlx::query!(
        "INSERT INTO preferences (account_id, kind, channel, enabled, update_time)
         SELECT $1, c.kind, c.channel, c.enabled, $5
         FROM UNNEST($2::text[], $3::text[], $4::bool[]) AS c(kind, channel, enabled)
         ON CONFLICT (account_id, kind, channel)
         DO UPDATE SET enabled = EXCLUDED.enabled, update_time = EXCLUDED.update_time",
        account,
        &kinds as &[&str],
        &channels as &[&str],
        &enabled,
        now,
    )
    .execute(conn)
    .await?;
    Ok(())
}
