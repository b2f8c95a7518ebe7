//! The `categories` table.

use sqlx::PgExecutor;

use crate::domain::Category;

/// Categories by sort order; inactive ones only when asked.
pub async fn list<'c>(
    db: impl PgExecutor<'c>,
    include_inactive: bool,
) -> sqlx::Result<Vec<Category>> {
    sqlx::query_as!(
        Category,
        "SELECT id, name, description, active, sort_order FROM categories
         WHERE active OR $1 ORDER BY sort_order, id",
        include_inactive,
    )
    .fetch_all(db)
    .await
}

pub async fn get<'c>(db: impl PgExecutor<'c>, id: &str) -> sqlx::Result<Option<Category>> {
    sqlx::query_as!(
        Category,
        "SELECT id, name, description, active, sort_order FROM categories WHERE id = $1",
        id,
    )
    .fetch_optional(db)
    .await
}

/// Reads a category and locks its row until the transaction ends, so two
/// admins' partial updates apply one after the other instead of overwriting.
pub async fn lock(conn: &mut sqlx::PgConnection, id: &str) -> sqlx::Result<Option<Category>> {
    sqlx::query_as!(
        Category,
        "SELECT id, name, description, active, sort_order FROM categories WHERE id = $1 FOR UPDATE",
        id,
    )
    .fetch_optional(conn)
    .await
}

/// Inserts; `false` when the id is taken.
pub async fn insert<'c>(db: impl PgExecutor<'c>, c: &Category) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "INSERT INTO categories (id, name, description, active, sort_order)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        c.id,
        c.name,
        c.description,
        c.active,
        c.sort_order,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes every field back; `false` when it does not exist.
pub async fn update<'c>(db: impl PgExecutor<'c>, c: &Category) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE categories SET name = $2, description = $3, active = $4, sort_order = $5,
                updated_at = now()
         WHERE id = $1",
        c.id,
        c.name,
        c.description,
        c.active,
        c.sort_order,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
