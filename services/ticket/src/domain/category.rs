//! A ticket category. Categories are never deleted (tickets refer to them);
//! deactivating one hides it from new tickets.

/// A ticket category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Category {
    pub id: String,
    pub name: String,
    pub description: String,
    pub active: bool,
    pub sort_order: i32,
}
