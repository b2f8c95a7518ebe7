//! Validated request values ("parse, don't validate"): each parser returns the
//! value or the reason it is invalid, phrased for a field violation.

use uuid::Uuid;

pub const SUBJECT_MAX: usize = 200;
pub const TEXT_MAX: usize = 10_000;
pub const CATEGORY_NAME_MAX: usize = 100;
pub const CATEGORY_DESCRIPTION_MAX: usize = 1_000;

/// Free text: trimmed, non-empty, at most `max` characters, no NUL bytes
/// (PostgreSQL text cannot hold them).
pub fn text(raw: &str, max: usize) -> Result<String, String> {
    if raw.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("is required".into());
    }
    let chars = trimmed.chars().count();
    if chars > max {
        return Err(format!("must be at most {max} characters (got {chars})"));
    }
    Ok(trimmed.to_owned())
}

/// Optional free text: empty is allowed.
pub fn optional_text(raw: &str, max: usize) -> Result<Option<String>, String> {
    if raw.trim().is_empty() && !raw.contains('\0') {
        return Ok(None);
    }
    text(raw, max).map(Some)
}

/// A required UUID.
pub fn uuid(raw: &str) -> Result<Uuid, String> {
    if raw.is_empty() {
        return Err("is required".into());
    }
    Uuid::parse_str(raw).map_err(|_| "must be a UUID".into())
}

/// An optional UUID: empty means none.
pub fn optional_uuid(raw: &str) -> Result<Option<Uuid>, String> {
    if raw.is_empty() {
        Ok(None)
    } else {
        uuid(raw).map(Some)
    }
}

/// A category id: a lowercase slug.
pub fn category_id(raw: &str) -> Result<String, String> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err("must be 1-64 characters of a-z, 0-9 and _".into())
    }
}

/// A rating of 1-5 stars.
pub fn rating(raw: i32) -> Result<i16, String> {
    if (1..=5).contains(&raw) {
        Ok(raw as i16)
    } else {
        Err("must be between 1 and 5".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits_count_characters_not_bytes() {
        assert!(text(&"é".repeat(200), 200).is_ok());
        assert!(text(&"é".repeat(201), 200).is_err());
        assert!(text("  ", 200).is_err());
        assert!(text("a\0b", 200).is_err());
        assert_eq!(text("  hi ", 200).unwrap(), "hi");
    }

    #[test]
    fn category_ids_are_slugs() {
        assert!(category_id("ride_issue").is_ok());
        for bad in ["", "Ride", "a-b", "a b", &"x".repeat(65)] {
            assert!(category_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ratings_have_a_range() {
        assert!(rating(0).is_err());
        assert!(rating(6).is_err());
        assert_eq!(rating(5), Ok(5));
    }
}
