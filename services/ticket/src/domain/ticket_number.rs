//! Human ticket ids: `TKT-` + k letters + k digits (docs/ticket-ids.md).
//!
//! A database sequence hands out n = 0, 1, 2, ...; this module maps n to an
//! id. Tier k = 3 holds 26³·10³ = 17,576,000 ids (`TKT-QHB407`), tier 4 the
//! next 4,569,760,000 (`TKT-QHBX4071`), and so on. Inside a tier, n goes
//! through an affine permutation (a·v + b mod capacity, a coprime to the
//! capacity), so consecutive tickets do not get consecutive ids, yet two
//! numbers never share an id and generation never loops or retries.

use std::fmt;

/// A human ticket id, always held in uppercase.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TicketNumber(String);

impl TicketNumber {
    /// The id of the ticket with sequence number `n`.
    pub fn from_sequence(n: u64) -> Self {
        Self(format(n))
    }

    /// A human id in any letter case: it is read out on the phone, and an
    /// agent typing it should not have to care (docs/ticket-ids.md).
    pub fn parse(raw: &str) -> Option<Self> {
        let upper = raw.to_ascii_uppercase();
        looks_like(&upper).then_some(Self(upper))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Letters and digits per half in the first tier.
const FIRST_TIER: u32 = 3;
/// Multiplier of the permutation: odd and not a multiple of 5 or 13, hence
/// coprime to every capacity 26^k·10^k = 2^(2k)·5^k·13^k.
const A: u64 = 7_919_777;
const B: u64 = 1_234_567;

fn capacity(k: u32) -> u64 {
    26u64.pow(k) * 10u64.pow(k)
}

/// The id for sequence number `n`.
fn format(n: u64) -> String {
    let mut k = FIRST_TIER;
    let mut v = n;
    while v >= capacity(k) {
        v -= capacity(k);
        k += 1;
    }
    let cap = capacity(k);
    // u128: a·v overflows u64 in tiers beyond 4.
    let p = ((u128::from(A) * u128::from(v) + u128::from(B)) % u128::from(cap)) as u64;
    let digits_mod = 10u64.pow(k);
    let (mut letters_value, digits) = (p / digits_mod, p % digits_mod);
    let mut letters = vec!['A'; k as usize];
    for slot in letters.iter_mut().rev() {
        *slot = char::from(b'A' + (letters_value % 26) as u8);
        letters_value /= 26;
    }
    let letters: String = letters.into_iter().collect();
    format!("TKT-{letters}{digits:0width$}", width = k as usize)
}

/// Whether `s` has the shape of a human ticket id (uppercase).
fn looks_like(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("TKT-") else {
        return false;
    };
    let letters = rest.bytes().take_while(u8::is_ascii_uppercase).count();
    let digits = &rest[letters..];
    letters >= FIRST_TIER as usize
        && digits.len() == letters
        && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn first_ids_have_the_original_shape() {
        let id = format(0);
        assert!(looks_like(&id), "{id}");
        assert_eq!(id.len(), "TKT-ABC123".len());
    }

    #[test]
    fn the_tier_grows_when_the_first_is_full() {
        let last3 = format(capacity(3) - 1);
        let first4 = format(capacity(3));
        assert_eq!(last3.len(), 10);
        assert_eq!(first4.len(), 12);
        assert!(looks_like(&first4));
        // Room for more than a billion tickets before tier 5.
        assert!(capacity(3) + capacity(4) > 1_000_000_000);
        assert_eq!(format(capacity(3) + capacity(4)).len(), 14);
    }

    #[test]
    fn a_small_tier_permutation_is_a_bijection() {
        // The same construction on tier 1 (260 ids) must hit every id once.
        let cap = capacity(1);
        let images: HashSet<u64> = (0..cap).map(|v| (A * v + B) % cap).collect();
        assert_eq!(images.len() as u64, cap);
    }

    #[test]
    fn consecutive_numbers_never_collide() {
        let ids: HashSet<String> = (0..200_000).map(format).collect();
        assert_eq!(ids.len(), 200_000);
        let around_boundary: HashSet<String> = (capacity(3) - 1000..capacity(3) + 1000)
            .map(format)
            .collect();
        assert_eq!(around_boundary.len(), 2000);
    }

    #[test]
    fn parsing_ignores_letter_case() {
        let id = TicketNumber::from_sequence(42);
        let lower = id.as_str().to_lowercase();
        assert_eq!(TicketNumber::parse(&lower), Some(id.clone()));
        assert_eq!(TicketNumber::parse(id.as_str()), Some(id));
        assert_eq!(TicketNumber::parse("tkt-ab12"), None);
    }

    #[test]
    fn shape_check_rejects_other_strings() {
        for bad in [
            "TKT-AB123",
            "TKT-ABC12",
            "tkt-abc123",
            "TKT-ABC1234",
            "ABC123",
            "",
        ] {
            assert!(!looks_like(bad), "{bad}");
        }
    }
}
