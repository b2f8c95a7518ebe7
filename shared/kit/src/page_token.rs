//! Opaque keyset page tokens (AIP-158). A token carries the sort key of the
//! last row served plus a fingerprint of the request's filters, so page N
//! costs what page 1 costs (no OFFSET) and a token cannot be replayed
//! against different filters. The token only steers the keyset: ownership
//! filters are always applied by the server, so a forged token reveals nothing.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const VERSION: u8 = 1;
const LEN: usize = 1 + 8 + 16 + 8;

/// Where the next page starts: after (`at`, `id`) in the list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The sort time of the last row served.
    pub at: DateTime<Utc>,
    /// Its id: the tie-breaker among equal times.
    pub id: Uuid,
}

/// A list's page-size policy (AIP-158): 0 means the default, anything above
/// the maximum is coerced down to it, and only a negative size is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize {
    /// Served when the caller sends 0 (unset).
    pub default: i64,
    /// The most rows one page holds.
    pub max: i64,
}

impl PageSize {
    /// The number of rows to serve for a requested `page_size`.
    pub fn resolve(self, requested: i32) -> Result<i64, String> {
        match i64::from(requested) {
            n if n < 0 => Err("must not be negative".into()),
            0 => Ok(self.default),
            n => Ok(n.min(self.max)),
        }
    }
}

/// A stable fingerprint of a request's filters.
pub fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The opaque token for the page after `cursor`, bound to `fingerprint`.
pub fn encode(cursor: Cursor, fingerprint: u64) -> String {
    let mut bytes = Vec::with_capacity(LEN);
    bytes.push(VERSION);
    bytes.extend_from_slice(&cursor.at.timestamp_micros().to_be_bytes());
    bytes.extend_from_slice(cursor.id.as_bytes());
    bytes.extend_from_slice(&fingerprint.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a token; `Ok(None)` for the empty token (first page).
pub fn decode(token: &str, fingerprint: u64) -> Result<Option<Cursor>, String> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || "is not a page token from this list".to_owned();
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    if bytes.len() != LEN || bytes[0] != VERSION {
        return Err(invalid());
    }
    let micros = i64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"));
    let id = Uuid::from_slice(&bytes[9..25]).map_err(|_| invalid())?;
    let stored = u64::from_be_bytes(bytes[25..33].try_into().expect("8 bytes"));
    if stored != fingerprint {
        return Err("was issued for different filters".to_owned());
    }
    // Tokens carry no MAC: an edited time must still be one the database stores.
    let at = DateTime::from_timestamp_micros(micros)
        .filter(|t| crate::clock::in_timestamp_range(*t))
        .ok_or_else(invalid)?;
    Ok(Some(Cursor { at, id }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_sizes_default_coerce_and_refuse_only_negatives() {
        let policy = super::PageSize {
            default: 20,
            max: 100,
        };
        assert_eq!(policy.resolve(0), Ok(20));
        assert_eq!(policy.resolve(7), Ok(7));
        assert_eq!(policy.resolve(100), Ok(100));
        assert_eq!(policy.resolve(5000), Ok(100));
        assert!(policy.resolve(-1).is_err());
    }

    use super::*;

    #[test]
    fn round_trips_and_rejects_other_filters_and_garbage() {
        let cursor = Cursor {
            at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        let token = encode(cursor, 7);
        assert_eq!(decode(&token, 7), Ok(Some(cursor)));
        assert!(decode(&token, 8).is_err());
        assert!(decode("not-a-token", 7).is_err());
        assert_eq!(decode("", 7), Ok(None));
    }
}
