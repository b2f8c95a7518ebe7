//! The `categories` table.

use sqlx::PgExecutor;

use super::stored;
use crate::domain::{Category, CategoryDescription, CategoryId, CategoryName};

struct Row {
    id: String,
    name: String,
    description: String,
    active: bool,
    sort_order: i32,
}

impl TryFrom<Row> for Category {
    type Error = sqlx::Error;
    fn try_from(r: Row) -> Result<Self, Self::Error> {
        Ok(Category {
            id: stored("category id", &r.id, CategoryId::parse)?,
            name: stored("category name", &r.name, CategoryName::parse)?,
            description: stored(
                "category description",
                &r.description,
                CategoryDescription::parse_optional,
            )?,
            active: r.active,
            sort_order: r.sort_order,
        })
    }
}

/// A category's description column: empty when it has none.
fn description(c: &Category) -> &str {
    c.description
        .as_ref()
        .map_or("", CategoryDescription::as_str)
}

/// Categories by sort order; inactive ones only when asked.
pub async fn list<'c>(
    db: impl PgExecutor<'c>,
    include_inactive: bool,
) -> sqlx::Result<Vec<Category>> {
    sqlx::query_as!(
        Row,
        "SELECT id, name, description, active, sort_order FROM categories
         WHERE active OR $1 ORDER BY sort_order, id",
        include_inactive,
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Category::try_from)
    .collect()
}

pub async fn get<'c>(db: impl PgExecutor<'c>, id: &CategoryId) -> sqlx::Result<Option<Category>> {
    sqlx::query_as!(
        Row,
        "SELECT id, name, description, active, sort_order FROM categories WHERE id = $1",
        id.as_str(),
    )
    .fetch_optional(db)
    .await?
    .map(Category::try_from)
    .transpose()
}

/// Reads a category and locks its row until the transaction ends, so two
/// admins' partial updates apply one after the other instead of overwriting.
pub async fn lock(
    conn: &mut sqlx::PgConnection,
    id: &CategoryId,
) -> sqlx::Result<Option<Category>> {
    sqlx::query_as!(
        Row,
        "SELECT id, name, description, active, sort_order FROM categories WHERE id = $1 FOR UPDATE",
        id.as_str(),
    )
    .fetch_optional(conn)
    .await?
    .map(Category::try_from)
    .transpose()
}

/// Inserts; `false` when the id is taken.
pub async fn insert<'c>(db: impl PgExecutor<'c>, c: &Category) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "INSERT INTO categories (id, name, description, active, sort_order)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        c.id.as_str(),
        c.name.as_str(),
        description(c),
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
        c.id.as_str(),
        c.name.as_str(),
        description(c),
        c.active,
        c.sort_order,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
