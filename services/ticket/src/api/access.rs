//! Who may do what (docs/architecture.md), in one place: users act on their
//! own tickets only, and another user's ticket is NOT_FOUND, never
//! PERMISSION_DENIED (its existence is not revealed); staff and admins act on
//! all; our own services create, read, edit and assign; other teams'
//! services create and read but never see internal notes.

use helpdesk_kit::{
    auth::Caller,
    error::{ApiError, ApiResult},
};

use crate::domain::{AccountId, Ticket, ticket::AuthorRole};

/// An end user of the platform (rider or driver), acting for themselves.
pub fn is_user(caller: &Caller) -> bool {
    matches!(caller, Caller::User(_))
}

/// The account of a user, staff member or admin.
pub fn own_account(caller: &Caller) -> ApiResult<AccountId> {
    caller
        .account_id()
        .map(AccountId::from)
        .ok_or_else(|| ApiError::denied("no account"))
}

/// Whether `caller` may see `ticket` at all.
pub fn visible(caller: &Caller, ticket: &Ticket) -> bool {
    caller.is_staff()
        || caller.is_service()
        || caller.account_id().map(AccountId::from) == Some(ticket.user_id)
}

/// [`visible`] as a query filter: the owner a ticket must have for `caller`
/// to see it, or `None` when they see every ticket.
pub fn owner_filter(caller: &Caller) -> Option<AccountId> {
    if caller.is_staff() || caller.is_service() {
        None
    } else {
        caller.account_id().map(AccountId::from)
    }
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

/// Who writes a message: people only (services have no voice in a
/// conversation), and internal notes are staff's.
pub fn author(caller: &Caller, internal: bool) -> ApiResult<(AccountId, AuthorRole)> {
    if caller.is_service() {
        return Err(ApiError::denied("services may not post messages"));
    }
    let role = if caller.is_staff() {
        AuthorRole::Staff
    } else if internal {
        return Err(ApiError::denied("only staff may post internal notes"));
    } else {
        AuthorRole::User
    };
    Ok((own_account(caller)?, role))
}

/// Category management.
pub fn admin_only(caller: &Caller) -> ApiResult<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::denied("only admins may manage categories"))
    }
}
