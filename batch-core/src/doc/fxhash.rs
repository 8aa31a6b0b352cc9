//! A small, fast, non-cryptographic hasher for the parser's and planner's
//! maps (ids, sections, barriers), after rustc's `FxHasher`.
//!
//! std's default SipHash costs more than the rest of id assignment on a
//! 10,000-task file. Keys here come from the user's own task file; rustc
//! hashes untrusted source code the same way.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The multiplier of rustc's FxHasher (64-bit).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// The multiplier of the final fold (the fractional digits of pi, odd).
const FOLD: u64 = 0x24_3f_6a_88_85_a3_08_d3;

/// rustc's Fx hash: one rotate, xor and multiply per word.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("chunks of 8")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    /// The state folded by a full 64×64→128-bit multiply: Fx's last step is
    /// a multiply, whose low bits depend only on the input's low bits, and
    /// hashbrown picks the bucket from the low bits, so ids alike but for a
    /// digit or two (`item-1394`, `item-1319`) fell into one bucket and
    /// made long probe chains. The fold spreads every input bit over the
    /// whole result (the finish rustc-hash 2 and foldhash give Fx).
    #[inline]
    fn finish(&self) -> u64 {
        let full = u128::from(self.hash) * u128::from(FOLD);
        (full as u64) ^ ((full >> 64) as u64)
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// A `HashSet` with [`FxHasher`].
pub(crate) type FxHashSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// An empty map with room for `n` entries.
pub(crate) fn map_with_capacity<K, V>(n: usize) -> FxHashMap<K, V> {
    FxHashMap::with_capacity_and_hasher(n, BuildHasherDefault::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_different_keys_differ() {
        let h = |s: &str| {
            let mut x = FxHasher::default();
            x.write(s.as_bytes());
            x.finish()
        };
        assert_eq!(h("wave-1/m0/implement"), h("wave-1/m0/implement"));
        assert_ne!(h("a/b-2"), h("a/b-3"));
        assert_ne!(h("abcdefgh1"), h("abcdefgh2"));
        let mut m: FxHashMap<String, usize> = map_with_capacity(4);
        m.insert("x".into(), 1);
        m.insert("x-2".into(), 2);
        assert_eq!(m.get("x"), Some(&1));
        assert_eq!(m.get("x-2"), Some(&2));
    }

    /// What hashbrown sees: the bucket comes from the low bits, the tag
    /// from the top 7. Ids alike but for digits must spread over both.
    #[test]
    fn ids_alike_but_for_digits_spread_over_buckets_and_tags() {
        let h = |s: &str| {
            use std::hash::BuildHasher;
            BuildHasherDefault::<FxHasher>::default().hash_one(s)
        };
        let families: [fn(usize) -> String; 3] = [
            |i| format!("item-{i}"),
            |i| format!("wave-1/m0/implement-item-{i}-of-m0-in-src-m0"),
            |i| format!("T{i:04}"),
        ];
        for family in families {
            let n = 1 << 14;
            let mut buckets = std::collections::HashSet::new();
            let mut tags = std::collections::HashSet::new();
            for i in 0..n {
                let v = h(&family(i));
                buckets.insert(v & (n as u64 - 1));
                tags.insert(v >> 57);
            }
            // Random keys fill about 63% of n buckets; allow some slack.
            assert!(
                buckets.len() > n * 55 / 100,
                "{} buckets of {n}: {}",
                family(1),
                buckets.len()
            );
            assert_eq!(tags.len(), 128, "{}", family(1));
        }
    }
}
