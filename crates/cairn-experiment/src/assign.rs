//! Deterministic assignment of users to variants, and namespaces for mutually exclusive experiments.
//!
//! The hash is fixed by specification, not by the platform or the process: the first 8 bytes, read
//! big-endian, of SHA-256 over `len(salt) as u64 little-endian ‖ salt ‖ unit` (UTF-8). The length
//! prefix keeps `("ab", "c")` and `("a", "bc")` apart. In Python:
//!
//! ```text
//! import hashlib, struct
//! h = lambda salt, unit: int.from_bytes(hashlib.sha256(struct.pack('<Q', len(salt.encode())) + salt.encode() + unit.encode()).digest()[:8], 'big')
//! ```
//!
//! * A variant is chosen by the hash of `(experiment salt, user)`: the 64-bit range is cut into
//!   consecutive slices proportional to the integer weights (integer arithmetic only).
//! * A namespace is a second, independent hash of `("namespace/" + name, user)` mapped to one of
//!   [`NAMESPACE_BUCKETS`] buckets, `(h · 10000) >> 64`. Each experiment of a namespace owns a bucket
//!   range `[start, end)`; ranges of one namespace may not overlap, so a user is in at most one of
//!   its experiments, and, the two hashes being independent, the split inside the range keeps its
//!   weights.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ExperimentError;

/// Number of namespace buckets: a range is given in hundredths of a percent of the users.
pub const NAMESPACE_BUCKETS: u32 = 10_000;

/// The fixed 64-bit hash of `(salt, unit)` (see the module documentation for its definition).
pub fn hash64(salt: &str, unit: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update((salt.len() as u64).to_le_bytes());
    hasher.update(salt.as_bytes());
    hasher.update(unit.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The namespace bucket of a unit, in `0..NAMESPACE_BUCKETS`.
pub fn namespace_bucket(namespace: &str, unit: &str) -> u32 {
    let h = hash64(&format!("namespace/{namespace}"), unit);
    ((h as u128 * NAMESPACE_BUCKETS as u128) >> 64) as u32
}

/// One arm of an experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantSpec {
    /// Name, unique within the experiment (the first variant is the control by convention).
    pub name: String,
    /// Relative share of the experiment's users (any positive integers: 1/1, 45/55, 1/1/2).
    pub weight: u32,
}

/// Where an experiment sits in a namespace: the bucket range `[start, end)` it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceSlot {
    /// The namespace's name; experiments of one namespace are mutually exclusive.
    pub namespace: String,
    /// First bucket (inclusive).
    pub start: u32,
    /// Last bucket (exclusive), at most [`NAMESPACE_BUCKETS`].
    pub end: u32,
}

/// An experiment's assignment rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentSpec {
    /// The experiment's key, unique among the experiments of an [`Assigner`].
    pub key: String,
    /// Salt of the variant hash. Changing it reshuffles every user, so a new experiment gets a new
    /// salt and a running one keeps its own.
    pub salt: String,
    /// The arms, in order; weights must be positive.
    pub variants: Vec<VariantSpec>,
    /// The namespace range the experiment owns, or `None` for every user.
    pub namespace: Option<NamespaceSlot>,
}

impl ExperimentSpec {
    /// Checks the spec on its own: at least one variant, unique names, positive weights, a
    /// non-empty bucket range inside `0..NAMESPACE_BUCKETS`.
    pub fn validate(&self) -> Result<(), ExperimentError> {
        if self.key.is_empty() {
            return Err(ExperimentError::Invalid("experiment key is empty".into()));
        }
        if self.variants.is_empty() {
            return Err(ExperimentError::Invalid(format!(
                "experiment {} has no variant",
                self.key
            )));
        }
        let mut names = BTreeSet::new();
        for v in &self.variants {
            if v.weight == 0 {
                return Err(ExperimentError::Invalid(format!(
                    "experiment {}: variant {} has weight 0",
                    self.key, v.name
                )));
            }
            if !names.insert(v.name.as_str()) {
                return Err(ExperimentError::Invalid(format!(
                    "experiment {}: variant name {} appears twice",
                    self.key, v.name
                )));
            }
        }
        if let Some(slot) = &self.namespace {
            if slot.start >= slot.end || slot.end > NAMESPACE_BUCKETS {
                return Err(ExperimentError::Invalid(format!(
                    "experiment {}: namespace range [{}, {}) must be non-empty and inside [0, {})",
                    self.key, slot.start, slot.end, NAMESPACE_BUCKETS
                )));
            }
        }
        Ok(())
    }

    /// The variant index of `unit`, or `None` when the unit falls outside the experiment's
    /// namespace range. Assumes a validated spec (an empty variant list gives `None`).
    pub fn variant_for(&self, unit: &str) -> Option<usize> {
        if let Some(slot) = &self.namespace {
            let b = namespace_bucket(&slot.namespace, unit);
            if b < slot.start || b >= slot.end {
                return None;
            }
        }
        pick_by_weight(
            hash64(&self.salt, unit),
            self.variants.iter().map(|v| v.weight),
        )
    }
}

/// The slice of the 64-bit range that `h` falls in, slices proportional to `weights`.
/// Integer arithmetic only: slice i ends at ⌊(w₀+…+wᵢ)·2⁶⁴ / W⌋.
pub fn pick_by_weight(h: u64, weights: impl IntoIterator<Item = u32>) -> Option<usize> {
    let weights: Vec<u64> = weights.into_iter().map(u64::from).collect();
    let total: u128 = weights.iter().map(|&w| w as u128).sum();
    if total == 0 {
        return None;
    }
    let point = h as u128;
    let mut cumulative: u128 = 0;
    for (i, &w) in weights.iter().enumerate() {
        cumulative += w as u128;
        let end = (cumulative << 64) / total;
        if point < end {
            return Some(i);
        }
    }
    // Unreachable for total > 0 (the last end is 2⁶⁴), kept total for safety.
    weights.iter().rposition(|&w| w > 0)
}

/// A user's arm in one experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The experiment's key.
    pub experiment: String,
    /// Index of the variant in the experiment's list.
    pub variant: usize,
    /// The variant's name.
    pub variant_name: String,
}

/// A validated set of running experiments: no two of a namespace overlap.
#[derive(Debug, Clone, Default)]
pub struct Assigner {
    experiments: Vec<ExperimentSpec>,
}

impl Assigner {
    /// Validates each spec, that keys are unique, and that the ranges of one namespace are disjoint.
    pub fn new(experiments: Vec<ExperimentSpec>) -> Result<Self, ExperimentError> {
        let mut keys = BTreeSet::new();
        let mut ranges: BTreeMap<&str, Vec<(u32, u32, &str)>> = BTreeMap::new();
        for e in &experiments {
            e.validate()?;
            if !keys.insert(e.key.as_str()) {
                return Err(ExperimentError::Invalid(format!(
                    "experiment key {} appears twice",
                    e.key
                )));
            }
            if let Some(slot) = &e.namespace {
                ranges.entry(slot.namespace.as_str()).or_default().push((
                    slot.start,
                    slot.end,
                    e.key.as_str(),
                ));
            }
        }
        for (namespace, list) in &mut ranges {
            list.sort();
            for pair in list.windows(2) {
                let (_, end, first) = pair[0];
                let (start, _, second) = pair[1];
                if start < end {
                    return Err(ExperimentError::NamespaceOverlap {
                        namespace: namespace.to_string(),
                        first: first.to_string(),
                        second: second.to_string(),
                    });
                }
            }
        }
        Ok(Self { experiments })
    }

    /// The experiments, in the order given.
    pub fn experiments(&self) -> &[ExperimentSpec] {
        &self.experiments
    }

    /// Every experiment `unit` is in, with its variant.
    pub fn assign(&self, unit: &str) -> Vec<Assignment> {
        self.experiments
            .iter()
            .filter_map(|e| {
                e.variant_for(unit).map(|variant| Assignment {
                    experiment: e.key.clone(),
                    variant,
                    variant_name: e.variants[variant].name.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::chi2_sf;
    use proptest::prelude::*;

    fn spec(key: &str, weights: &[u32], namespace: Option<(&str, u32, u32)>) -> ExperimentSpec {
        ExperimentSpec {
            key: key.into(),
            salt: format!("{key}-salt"),
            variants: weights
                .iter()
                .enumerate()
                .map(|(i, &weight)| VariantSpec {
                    name: format!("v{i}"),
                    weight,
                })
                .collect(),
            namespace: namespace.map(|(n, start, end)| NamespaceSlot {
                namespace: n.into(),
                start,
                end,
            }),
        }
    }

    // Golden values, from an independent implementation of the same definition:
    // python3 -c "import hashlib,struct; h=lambda s,u:int.from_bytes(hashlib.sha256(struct.pack('<Q',len(s.encode()))+s.encode()+u.encode()).digest()[:8],'big'); [print(s,u,h(s,u),(h(s,u)*10000)>>64) for s,u in [('exp-1','user-1'),('exp-1','user-2'),('','alice'),('homepage-ranker-2026','u42'),('namespace/ranking','u42'),('é','ü')]]"
    const GOLDEN: [(&str, &str, u64, u32); 6] = [
        ("exp-1", "user-1", 13_582_188_504_666_546_071, 7362),
        ("exp-1", "user-2", 7_732_583_647_838_734_707, 4191),
        ("", "alice", 15_478_499_304_256_562_948, 8390),
        (
            "homepage-ranker-2026",
            "u42",
            12_881_405_791_011_316_995,
            6983,
        ),
        ("namespace/ranking", "u42", 8_148_779_676_583_748_803, 4417),
        ("é", "ü", 16_102_573_041_182_328_339, 8729),
    ];

    #[test]
    fn hash_matches_golden_values_from_python() {
        for (salt, unit, h, bucket) in GOLDEN {
            assert_eq!(hash64(salt, unit), h, "hash64({salt:?}, {unit:?})");
            assert_eq!(
                ((h as u128 * NAMESPACE_BUCKETS as u128) >> 64) as u32,
                bucket
            );
        }
        // namespace_bucket hashes "namespace/" + name.
        assert_eq!(namespace_bucket("ranking", "u42"), GOLDEN[4].3);
    }

    #[test]
    fn the_length_prefix_separates_salt_from_unit() {
        assert_ne!(hash64("ab", "c"), hash64("a", "bc"));
    }

    #[test]
    fn assignment_is_stable_across_calls_and_instances() {
        let e = spec("stable", &[1, 1, 1], None);
        let first: Vec<_> = (0..1000).map(|i| e.variant_for(&format!("u{i}"))).collect();
        let again = e.clone();
        let second: Vec<_> = (0..1000)
            .map(|i| again.variant_for(&format!("u{i}")))
            .collect();
        assert_eq!(first, second);
        // A new salt reshuffles users.
        let mut other = e.clone();
        other.salt = "another".into();
        let moved = (0..1000)
            .filter(|&i| other.variant_for(&format!("u{i}")) != first[i])
            .count();
        assert!(moved > 500, "{moved} of 1000 moved");
    }

    /// Pearson χ² of observed counts against expected shares; returns the p-value.
    fn chi2_p(counts: &[u64], weights: &[u32]) -> f64 {
        let n: u64 = counts.iter().sum();
        let w: u32 = weights.iter().sum();
        let stat: f64 = counts
            .iter()
            .zip(weights)
            .map(|(&c, &wi)| {
                let e = n as f64 * wi as f64 / w as f64;
                (c as f64 - e).powi(2) / e
            })
            .sum();
        chi2_sf(stat, (counts.len() - 1) as f64)
    }

    #[test]
    fn split_is_uniform_on_100k_ids() {
        for weights in [vec![1, 1], vec![45, 55], vec![1, 1, 2], vec![1; 10]] {
            let e = spec("uniform", &weights, None);
            let mut counts = vec![0u64; weights.len()];
            for i in 0..100_000 {
                counts[e.variant_for(&format!("user-{i}")).unwrap()] += 1;
            }
            let p = chi2_p(&counts, &weights);
            assert!(p > 0.001, "weights {weights:?} counts {counts:?} p {p}");
        }
        // Namespace buckets are uniform over 100 groups of 100 buckets.
        let mut groups = vec![0u64; 100];
        for i in 0..100_000 {
            groups[(namespace_bucket("ns", &format!("user-{i}")) / 100) as usize] += 1;
        }
        let p = chi2_p(&groups, &[1; 100]);
        assert!(p > 0.001, "namespace buckets p {p}");
    }

    #[test]
    fn experiments_of_a_namespace_are_exclusive() {
        let assigner = Assigner::new(vec![
            spec("a", &[1, 1], Some(("ranking", 0, 3_000))),
            spec("b", &[1, 1], Some(("ranking", 3_000, 6_000))),
            spec("c", &[1, 1, 1], Some(("ranking", 6_000, 10_000))),
            spec("other-layer", &[1, 1], Some(("ui", 0, 5_000))),
            spec("everyone", &[1, 1], None),
        ])
        .unwrap();
        let mut in_ranking = [0u64; 3];
        let mut other_layer = 0u64;
        let mut within_a = [0u64; 2];
        for i in 0..100_000 {
            let assignments = assigner.assign(&format!("user-{i}"));
            let ranking: Vec<_> = assignments
                .iter()
                .filter(|a| ["a", "b", "c"].contains(&a.experiment.as_str()))
                .collect();
            // Exactly one: the three ranges cover the namespace and do not overlap.
            assert_eq!(ranking.len(), 1, "user-{i}: {assignments:?}");
            let idx = ["a", "b", "c"]
                .iter()
                .position(|k| *k == ranking[0].experiment)
                .unwrap();
            in_ranking[idx] += 1;
            if ranking[0].experiment == "a" {
                within_a[ranking[0].variant] += 1;
            }
            other_layer += assignments
                .iter()
                .filter(|a| a.experiment == "other-layer")
                .count() as u64;
            assert!(assignments.iter().any(|a| a.experiment == "everyone"));
        }
        assert!(chi2_p(&in_ranking, &[3, 3, 4]) > 0.001, "{in_ranking:?}");
        // The variant split inside a namespace range keeps its weights (independent hashes).
        assert!(chi2_p(&within_a, &[1, 1]) > 0.001, "{within_a:?}");
        // Another namespace is an independent layer: about half of everyone.
        let share = other_layer as f64 / 100_000.0;
        assert!((share - 0.5).abs() < 0.01, "{share}");
    }

    #[test]
    fn overlapping_ranges_are_refused() {
        let err = Assigner::new(vec![
            spec("a", &[1, 1], Some(("ranking", 0, 5_000))),
            spec("b", &[1, 1], Some(("ranking", 4_999, 6_000))),
        ])
        .unwrap_err();
        assert!(
            matches!(err, ExperimentError::NamespaceOverlap { .. }),
            "{err}"
        );
        // Touching ranges are fine, and the same range in another namespace too.
        Assigner::new(vec![
            spec("a", &[1, 1], Some(("ranking", 0, 5_000))),
            spec("b", &[1, 1], Some(("ranking", 5_000, 6_000))),
            spec("c", &[1, 1], Some(("ui", 0, 5_000))),
        ])
        .unwrap();
    }

    #[test]
    fn invalid_specs_are_refused() {
        for bad in [
            spec("", &[1], None),
            spec("no-variants", &[], None),
            spec("zero", &[1, 0], None),
            spec("empty-range", &[1], Some(("n", 10, 10))),
            spec("past-end", &[1], Some(("n", 0, NAMESPACE_BUCKETS + 1))),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let mut dup = spec("dup", &[1, 1], None);
        dup.variants[1].name = "v0".into();
        assert!(dup.validate().is_err());
        assert!(Assigner::new(vec![spec("k", &[1], None), spec("k", &[1], None)]).is_err());
    }

    #[test]
    fn pick_by_weight_edges() {
        assert_eq!(pick_by_weight(0, [1, 1]), Some(0));
        assert_eq!(pick_by_weight(u64::MAX, [1, 1]), Some(1));
        assert_eq!(pick_by_weight(1u64 << 63, [1, 1]), Some(1));
        assert_eq!(pick_by_weight((1u64 << 63) - 1, [1, 1]), Some(0));
        assert_eq!(pick_by_weight(123, []), None);
        assert_eq!(
            pick_by_weight(u64::MAX, [u32::MAX, u32::MAX, u32::MAX]),
            Some(2)
        );
    }

    proptest! {
        #[test]
        fn every_unit_gets_a_valid_variant(
            unit in ".{0,40}",
            weights in proptest::collection::vec(1u32..1000, 1..8),
        ) {
            let e = spec("prop", &weights, None);
            let v = e.variant_for(&unit).unwrap();
            prop_assert!(v < weights.len());
            prop_assert_eq!(e.variant_for(&unit), Some(v));
        }

        #[test]
        fn namespace_bucket_in_range(unit in ".{0,40}", ns in "[a-z]{0,10}") {
            prop_assert!(namespace_bucket(&ns, &unit) < NAMESPACE_BUCKETS);
        }
    }
}
