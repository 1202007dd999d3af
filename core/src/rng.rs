//! A tiny seeded generator (SplitMix64) for jitter and message ids: the
//! machine takes no randomness from the platform, so tests are reproducible.

#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, max]` (multiply-shift range reduction).
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        let x = self.next_u64();
        match max.checked_add(1) {
            None => x,
            Some(n) => ((u128::from(x) * u128::from(n)) >> 64) as u64,
        }
    }

    /// 16 random bytes formatted as a version-4 UUID.
    pub(crate) fn uuid_v4(&mut self) -> String {
        let hi = (self.next_u64() & !0xf000) | 0x4000; // version 4
        let lo = (self.next_u64() & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_splitmix64() {
        // The reference outputs of SplitMix64 seeded with 0.
        let mut rng = SplitMix64::new(0);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            first,
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f
            ]
        );
    }

    #[test]
    fn every_uuid_has_the_version_and_variant_bits() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..256 {
            let id = rng.uuid_v4();
            assert_eq!(&id[14..15], "4", "{id}");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        }
    }

    #[test]
    fn uuids_look_like_v4() {
        let mut rng = SplitMix64::new(1);
        let id = rng.uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(rng.uuid_v4(), id);
    }

    #[test]
    fn uuids_are_lowercase_hex_in_the_usual_groups() {
        for seed in [0, 1, 42, u64::MAX] {
            let id = SplitMix64::new(seed).uuid_v4();
            let groups: Vec<usize> = id.split('-').map(str::len).collect();
            assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
            assert!(
                id.bytes()
                    .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
        }
    }

    #[test]
    fn up_to_stays_in_range() {
        let mut rng = SplitMix64::new(7);
        for max in [0, 1, 2, 499, 30_000, u64::MAX] {
            for _ in 0..100 {
                assert!(rng.up_to(max) <= max);
            }
        }
    }
}
