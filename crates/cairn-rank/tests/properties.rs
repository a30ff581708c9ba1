//! Invariants of prediction and of NDCG.

use std::sync::OnceLock;

use cairn_rank::{ndcg_at, Ranker, RankerConfig, RankingData};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N_FEATURES: usize = 4;

fn model() -> &'static Ranker {
    static MODEL: OnceLock<Ranker> = OnceLock::new();
    MODEL.get_or_init(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let mut data = RankingData::new(N_FEATURES);
        for _ in 0..80 {
            let rows: Vec<f32> = (0..25 * N_FEATURES).map(|_| rng.random()).collect();
            let labels: Vec<f32> = rows
                .chunks(N_FEATURES)
                .map(|r| f32::from(r[0] + r[1] * r[2] > 1.0 && rng.random::<f32>() < 0.7))
                .collect();
            data.push_group(&rows, &labels).unwrap();
        }
        let config = RankerConfig {
            trees: 30,
            max_leaves: 8,
            min_data_in_leaf: 5,
            ..RankerConfig::default()
        };
        Ranker::fit(&data, None, &config).unwrap()
    })
}

/// Feature values in the trained range, with some missing.
fn feature_value() -> impl Strategy<Value = f32> {
    prop_oneof![9 => 0.0f32..1.0, 1 => Just(f32::NAN)]
}

fn group() -> impl Strategy<Value = (Vec<f32>, Vec<usize>)> {
    (1usize..40).prop_flat_map(|n| {
        (
            proptest::collection::vec(feature_value(), n * N_FEATURES),
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
        )
    })
}

fn scored_labels() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    (1usize..30).prop_flat_map(|n| {
        (
            proptest::collection::vec(-5.0f32..5.0, n),
            proptest::collection::vec((0u8..4).prop_map(f32::from), n),
        )
    })
}

proptest! {
    #[test]
    fn predictions_follow_rows_when_a_group_is_permuted((rows, permutation) in group()) {
        let ranker = model();
        let n = permutation.len();
        let mut scores = vec![0.0; n];
        ranker.predict_many(&rows, &mut scores);
        let permuted_rows: Vec<f32> = permutation
            .iter()
            .flat_map(|&i| rows[i * N_FEATURES..(i + 1) * N_FEATURES].iter().copied())
            .collect();
        let mut permuted_scores = vec![0.0; n];
        ranker.predict_many(&permuted_rows, &mut permuted_scores);
        for (slot, &i) in permutation.iter().enumerate() {
            prop_assert_eq!(permuted_scores[slot].to_bits(), scores[i].to_bits());
            prop_assert_eq!(
                scores[i].to_bits(),
                ranker.predict(&rows[i * N_FEATURES..(i + 1) * N_FEATURES]).to_bits()
            );
        }
    }

    #[test]
    fn ndcg_is_a_fraction_and_one_for_the_ideal_order((scores, labels) in scored_labels(), k in 1usize..15) {
        let v = ndcg_at(&scores, &labels, k);
        prop_assert!((0.0..=1.0).contains(&v), "{}", v);
        if labels.iter().any(|&l| l > 0.0) {
            let ideal_scores: Vec<f32> = labels.clone();
            prop_assert!((ndcg_at(&ideal_scores, &labels, k) - 1.0).abs() < 1e-12);
        } else {
            prop_assert_eq!(v, 0.0);
        }
    }

    #[test]
    fn ndcg_ignores_the_order_rows_arrive_in(
        (scores, labels, permutation) in scored_labels().prop_flat_map(|(s, l)| {
            let n = s.len();
            (Just(s), Just(l), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        }),
        k in 1usize..15,
    ) {
        let permuted_scores: Vec<f32> = permutation.iter().map(|&i| scores[i]).collect();
        let permuted_labels: Vec<f32> = permutation.iter().map(|&i| labels[i]).collect();
        prop_assert_eq!(
            ndcg_at(&scores, &labels, k).to_bits(),
            ndcg_at(&permuted_scores, &permuted_labels, k).to_bits()
        );
    }
}
