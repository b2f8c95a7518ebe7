//! A ticket category. Categories are never deleted (tickets refer to them);
//! deactivating one hides it from new tickets.

use super::{CategoryDescription, CategoryId, CategoryName, commands::CategoryEdit};

/// A ticket category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Category {
    pub id: CategoryId,
    pub name: CategoryName,
    pub description: Option<CategoryDescription>,
    pub active: bool,
    pub sort_order: i32,
}

impl Category {
    /// Applies an admin's partial update.
    pub fn apply(&mut self, edit: CategoryEdit) {
        if let Some(name) = edit.name {
            self.name = name;
        }
        if let Some(description) = edit.description {
            self.description = description;
        }
        if let Some(active) = edit.active {
            self.active = active;
        }
        if let Some(sort_order) = edit.sort_order {
            self.sort_order = sort_order;
        }
    }
}
