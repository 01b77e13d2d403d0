//! Content-derived versions: one packing rule for every derived record type.
//!
//! A version is a non-negative `i64` (ClickHouse `UInt64`) built from ordered components, most
//! significant first — e.g. a job's status rank, then its latest timestamp — followed by as many
//! bits of a SHA-256 over the record's content as are left. Each component is clamped to its
//! width, so a larger component value never spills into a more significant one. Equal versions
//! therefore mean equal content (up to the hash width), and "highest version wins" picks the
//! same record whatever order the inputs arrived in.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// `components` are `(value, bits)`, most significant first; their bits must total under 63.
pub fn pack<T: Serialize>(components: &[(u64, u32)], content: &T) -> i64 {
    let used: u32 = components.iter().map(|(_, bits)| bits).sum();
    debug_assert!(used < 63, "version components use {used} of 63 bits");
    let hash_bits = 63 - used.min(62);
    let mut version: u64 = 0;
    for &(value, bits) in components {
        let max = (1u64 << bits) - 1;
        version = (version << bits) | value.min(max);
    }
    // serde_json of a struct is deterministic: fixed field order, shortest round-trip floats.
    let digest = Sha256::digest(serde_json::to_vec(content).unwrap_or_default());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let hash = u64::from_be_bytes(first) >> (64 - hash_bits);
    ((version << hash_bits) | hash) as i64
}

/// Unix seconds of an epoch-millis instant, for a 32-bit version component.
pub fn seconds(millis: Option<i64>) -> u64 {
    (millis.unwrap_or(0) / 1000).clamp(0, u32::MAX as i64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_more_significant_component_always_wins(a in 0u64..8, b in 0u64..8, x in any::<u64>(), y in any::<u64>(), s in ".*", t in ".*") {
            prop_assume!(a != b);
            let va = pack(&[(a, 3), (x, 32)], &s);
            let vb = pack(&[(b, 3), (y, 32)], &t);
            prop_assert_eq!(va > vb, a > b);
            prop_assert!(va >= 0 && vb >= 0);
        }

        #[test]
        fn equal_components_are_ordered_by_content_deterministically(x in any::<u32>(), s in ".*") {
            prop_assert_eq!(pack(&[(x as u64, 32)], &s), pack(&[(x as u64, 32)], &s));
        }
    }
}
