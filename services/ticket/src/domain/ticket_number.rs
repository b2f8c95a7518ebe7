//! Human ticket ids: `TKT-` + k letters + k digits (docs/ticket-ids.md).
//!
//! A database sequence hands out n = 0, 1, 2, ...; this module maps n to an
//! id. Tier k = 3 holds 26³·10³ = 17,576,000 ids (`TKT-QHB407`), tier 4 the
//! next 4,569,760,000 (`TKT-QHBX4071`), and so on. Inside a tier, n goes
//! through an affine permutation (a·v + b mod capacity, a coprime to the
//! capacity), so consecutive tickets do not get consecutive ids, yet two
//! numbers never share an id and generation never loops or retries.

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
pub fn format(n: u64) -> String {
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
    let mut letters = vec![b'A'; k as usize];
    for slot in letters.iter_mut().rev() {
        *slot = b'A' + (letters_value % 26) as u8;
        letters_value /= 26;
    }
    format!(
        "TKT-{}{:0width$}",
        String::from_utf8(letters).expect("ASCII letters"),
        digits,
        width = k as usize
    )
}

/// Whether `s` has the shape of a human ticket id.
pub fn looks_like(s: &str) -> bool {
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
