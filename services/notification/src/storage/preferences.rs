//! The `preferences` table: a person's own kind/channel choices.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::{Channel, Kind, preferences::Pair};

/// The choices each recipient made about the kind they are getting (one
/// statement for a whole fan-out).
pub async fn for_recipients<'c>(
    db: impl PgExecutor<'c>,
    recipients: &[(Uuid, Kind)],
) -> sqlx::Result<HashMap<Uuid, HashMap<Pair, bool>>> {
    let accounts: Vec<Uuid> = recipients.iter().map(|(id, _)| *id).collect();
    let kinds: Vec<&str> = recipients.iter().map(|(_, k)| k.as_str()).collect();
    let rows = sqlx::query!(
        "SELECT p.account_id, p.kind, p.channel, p.enabled
         FROM UNNEST($1::uuid[], $2::text[]) AS r(account_id, kind)
         JOIN preferences p ON p.account_id = r.account_id AND p.kind = r.kind",
        &accounts,
        &kinds as &[&str],
    )
    .fetch_all(db)
    .await?;
    let mut out: HashMap<Uuid, HashMap<Pair, bool>> = HashMap::new();
    for row in rows {
        if let (Ok(kind), Ok(channel)) = (row.kind.parse::<Kind>(), row.channel.parse::<Channel>())
        {
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
