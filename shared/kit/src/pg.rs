//! The PostgreSQL error codes (SQLSTATE) we act on, named once, so a reader
//! sees `pg::LOCK_NOT_AVAILABLE` rather than `"55P03"`.
//! <https://www.postgresql.org/docs/current/errcodes-appendix.html>

/// `serialization_failure`: a concurrent transaction won; retry.
pub const SERIALIZATION_FAILURE: &str = "40001";
/// `deadlock_detected`: one of two waiting transactions was cancelled.
pub const DEADLOCK_DETECTED: &str = "40P01";
/// `lock_not_available`: `lock_timeout` or `NOWAIT` gave up waiting.
pub const LOCK_NOT_AVAILABLE: &str = "55P03";

/// Class 08, connection exception.
const CONNECTION_EXCEPTION_CLASS: &str = "08";
/// Class 53, insufficient resources (too many connections, disk full).
const INSUFFICIENT_RESOURCES_CLASS: &str = "53";
/// `admin_shutdown`, `crash_shutdown`, `cannot_connect_now` (57P01..57P03).
const SHUTTING_DOWN_PREFIX: &str = "57P";

/// The SQLSTATE of a database error, if `err` is one.
pub fn sqlstate(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// Whether `err` is the database error `code`.
pub fn is(err: &sqlx::Error, code: &str) -> bool {
    sqlstate(err).as_deref() == Some(code)
}

/// Whether `code` says the database is unreachable, overloaded or
/// restarting: the caller may retry, nothing was written.
pub fn is_unavailable(code: &str) -> bool {
    code.starts_with(CONNECTION_EXCEPTION_CLASS)
        || code.starts_with(INSUFFICIENT_RESOURCES_CLASS)
        || code.starts_with(SHUTTING_DOWN_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_told_from_conflicts() {
        assert!(is_unavailable("08006"));
        assert!(is_unavailable("53300"));
        assert!(is_unavailable("57P01"));
        assert!(!is_unavailable(SERIALIZATION_FAILURE));
        assert!(!is_unavailable("57014")); // query_canceled: ours, not an outage
    }
}
