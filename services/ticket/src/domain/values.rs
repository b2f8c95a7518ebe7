//! Domain values that have rules ("parse, don't validate"). Each type can
//! only be built by parsing, so code holding one needs no further check.
//! A parse error is phrased for a field violation ("must be a UUID").

use std::fmt;

use uuid::Uuid;

const SUBJECT_MAX: usize = 200;
const TEXT_MAX: usize = 10_000;
const CATEGORY_NAME_MAX: usize = 100;
const CATEGORY_DESCRIPTION_MAX: usize = 1_000;

/// Free text: trimmed, non-empty, at most `max` characters, no NUL bytes
/// (PostgreSQL text cannot hold them).
fn text(raw: &str, max: usize) -> Result<String, String> {
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

/// Optional free text: blank means none.
fn optional_text(raw: &str, max: usize) -> Result<Option<String>, String> {
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

/// Text types: a trimmed, bounded, non-empty string.
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, String> {
                text(raw, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// A ticket's subject: 1-200 characters.
    Subject,
    SUBJECT_MAX
);
text_type!(
    /// A ticket's description, a message body or rating feedback: 1-10,000 characters.
    Text,
    TEXT_MAX
);
text_type!(
    /// A category's display name: 1-100 characters.
    CategoryName,
    CATEGORY_NAME_MAX
);
text_type!(
    /// A category's description: up to 1,000 characters (may be absent).
    CategoryDescription,
    CATEGORY_DESCRIPTION_MAX
);

impl Text {
    /// Blank means none (rating feedback is optional).
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, String> {
        optional_text(raw, TEXT_MAX).map(|t| t.map(Self))
    }
}

impl CategoryDescription {
    /// Blank means none.
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, String> {
        optional_text(raw, CATEGORY_DESCRIPTION_MAX).map(|t| t.map(Self))
    }
}

/// A category id: a lowercase slug, `[a-z0-9_]{1,64}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CategoryId(String);

impl CategoryId {
    /// Tickets filed without a category land here.
    pub fn other() -> Self {
        Self("other".into())
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be 1-64 characters of a-z, 0-9 and _".into())
        }
    }

    /// Empty means none (a list filter not set).
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, String> {
        if raw.is_empty() {
            Ok(None)
        } else {
            Self::parse(raw).map(Some)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CategoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An account of the accounts service: a user, a driver or a staff member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccountId(Uuid);

impl AccountId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        uuid(raw).map(Self)
    }

    /// Empty means none.
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, String> {
        optional_uuid(raw).map(|id| id.map(Self))
    }

    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for AccountId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A rating of 1-5 stars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rating(u8);

impl Rating {
    pub fn parse(raw: i32) -> Result<Self, String> {
        match u8::try_from(raw) {
            Ok(stars @ 1..=5) => Ok(Self(stars)),
            _ => Err("must be between 1 and 5".into()),
        }
    }

    pub fn stars(self) -> u8 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits_count_characters_not_bytes() {
        assert!(Subject::parse(&"é".repeat(200)).is_ok());
        assert!(Subject::parse(&"é".repeat(201)).is_err());
        assert!(Subject::parse("  ").is_err());
        assert!(Subject::parse("a\0b").is_err());
        assert_eq!(Subject::parse("  hi ").unwrap().as_str(), "hi");
        assert_eq!(Text::parse_optional("  "), Ok(None));
        assert!(Text::parse_optional("\0").is_err());
    }

    #[test]
    fn category_ids_are_slugs() {
        assert!(CategoryId::parse("ride_issue").is_ok());
        for bad in ["", "Ride", "a-b", "a b", &"x".repeat(65)] {
            assert!(CategoryId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ratings_have_a_range() {
        for bad in [0, 6, -1, 256, i32::MAX, i32::MIN] {
            assert!(Rating::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Rating::parse(5).map(Rating::stars), Ok(5));
    }
}
