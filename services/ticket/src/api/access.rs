//! Who may do what (docs/architecture.md), in one place: users act on their
//! own tickets only, and another user's ticket is NOT_FOUND, never
//! PERMISSION_DENIED (its existence is not revealed); staff and admins act on
//! all; our own services create, read, edit and assign; other teams'
//! services create and read but never see internal notes.

use helpdesk_kit::{
    auth::Caller,
    error::{ApiError, ApiResult},
};

use crate::domain::Ticket;

/// Whether `caller` may see `ticket` at all.
pub fn visible(caller: &Caller, ticket: &Ticket) -> bool {
    caller.is_staff() || caller.is_service() || caller.account_id() == Some(ticket.user_id)
}

/// Staff, admins and our own services see internal notes; users and other
/// teams' services never do.
pub fn sees_internal(caller: &Caller) -> bool {
    caller.is_staff() || caller.is_trusted_service()
}

/// Edits and assignments: staff, admins and our own services.
pub fn staff_or_service(caller: &Caller, what: &str) -> ApiResult<()> {
    if caller.is_staff() || caller.is_trusted_service() {
        Ok(())
    } else {
        Err(ApiError::denied(format!("only staff may {what}")))
    }
}

/// Category management.
pub fn admin_only(caller: &Caller) -> ApiResult<()> {
    if caller.role == helpdesk_kit::auth::Role::Admin {
        Ok(())
    } else {
        Err(ApiError::denied("only admins may manage categories"))
    }
}
