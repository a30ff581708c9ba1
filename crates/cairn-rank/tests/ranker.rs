//! End-to-end behaviour of `Ranker::fit` on small seeded synthetic data.

use cairn_rank::{mean_ndcg, RankError, Ranker, RankerConfig, RankingData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N_FEATURES: usize = 6;

/// Groups of uniform features; `label_of(row, rng)` decides each row's label from its features.
fn synthetic(
    groups: usize,
    rows_per_group: usize,
    seed: u64,
    label_of: impl Fn(&[f32], &mut ChaCha8Rng) -> f32,
) -> RankingData {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data = RankingData::new(N_FEATURES);
    for _ in 0..groups {
        let rows: Vec<f32> = (0..rows_per_group * N_FEATURES)
            .map(|_| rng.random::<f32>())
            .collect();
        let labels: Vec<f32> = rows
            .chunks(N_FEATURES)
            .map(|row| label_of(row, &mut rng))
            .collect();
        data.push_group(&rows, &labels).unwrap();
    }
    data
}

/// Relevant mostly in the xor region of f0 and f1: neither feature helps on its own.
fn xor_label(row: &[f32], rng: &mut ChaCha8Rng) -> f32 {
    let p = if (row[0] > 0.5) ^ (row[1] > 0.5) {
        0.3
    } else {
        0.03
    };
    f32::from(rng.random::<f32>() < p)
}

/// Graded relevance from the product f0·f1, with a little label noise.
fn product_label(row: &[f32], rng: &mut ChaCha8Rng) -> f32 {
    let r = row[0] * row[1] + 0.05 * (rng.random::<f32>() - 0.5);
    match r {
        r if r > 0.7 => 3.0,
        r if r > 0.5 => 2.0,
        r if r > 0.35 => 1.0,
        _ => 0.0,
    }
}

fn predict_all(ranker: &Ranker, data: &RankingData) -> Vec<f32> {
    let mut out = vec![0.0; data.n_rows()];
    ranker.predict_many(&data.features, &mut out);
    out
}

/// Best NDCG@10 any single feature reaches on `data`, ranking by it ascending or descending.
fn best_single_feature(data: &RankingData) -> f64 {
    (0..data.n_features)
        .flat_map(|f| [1.0f32, -1.0].map(move |sign| (f, sign)))
        .map(|(f, sign)| {
            let scores: Vec<f32> = data
                .features
                .chunks(data.n_features)
                .map(|row| sign * row[f])
                .collect();
            mean_ndcg(data, &scores, 10)
        })
        .fold(0.0, f64::max)
}

fn small_config() -> RankerConfig {
    RankerConfig {
        trees: 60,
        max_leaves: 15,
        min_data_in_leaf: 10,
        ..RankerConfig::default()
    }
}

#[test]
fn learns_xor_relevance_that_no_single_feature_ranks() {
    let train = synthetic(300, 40, 1, xor_label);
    let test = synthetic(200, 40, 2, xor_label);
    let ranker = Ranker::fit(&train, None, &small_config()).unwrap();
    let learned = mean_ndcg(&test, &predict_all(&ranker, &test), 10);
    let baseline = best_single_feature(&test);
    // The rule that generated the labels, ties broken by a noise feature.
    let oracle: Vec<f32> = test
        .features
        .chunks(N_FEATURES)
        .map(|row| f32::from((row[0] > 0.5) ^ (row[1] > 0.5)) + 0.01 * row[5])
        .collect();
    let oracle = mean_ndcg(&test, &oracle, 10);
    eprintln!("NDCG@10 ranker {learned:.3}, best single feature {baseline:.3}, rule {oracle:.3}");
    assert!(
        learned > oracle - 0.05,
        "ranker {learned:.3} vs rule {oracle:.3}"
    );
    assert!(
        learned > baseline + 0.12,
        "ranker {learned:.3} vs best single feature {baseline:.3}"
    );
    let importance = ranker.feature_importance();
    assert_eq!(importance.len(), N_FEATURES);
    let noise_max = importance[2..].iter().cloned().fold(0.0, f32::max);
    assert!(
        importance[0].min(importance[1]) > noise_max,
        "{importance:?}"
    );
}

#[test]
fn learns_graded_product_relevance_better_than_either_factor() {
    let train = synthetic(300, 40, 3, product_label);
    let test = synthetic(200, 40, 4, product_label);
    let ranker = Ranker::fit(&train, None, &small_config()).unwrap();
    let learned = mean_ndcg(&test, &predict_all(&ranker, &test), 10);
    let baseline = best_single_feature(&test);
    eprintln!("NDCG@10 ranker {learned:.3}, best single feature {baseline:.3}");
    assert!(
        learned > baseline + 0.08,
        "ranker {learned:.3} vs best single feature {baseline:.3}"
    );
}

#[test]
fn fit_is_deterministic_for_a_seed() {
    let train = synthetic(100, 30, 5, xor_label);
    let config = RankerConfig {
        feature_fraction: 0.5,
        ..small_config()
    };
    let a = Ranker::fit(&train, None, &config).unwrap();
    let b = Ranker::fit(&train, None, &config).unwrap();
    assert_eq!(a, b);
    let (pa, pb) = (predict_all(&a, &train), predict_all(&b, &train));
    assert!(pa.iter().zip(&pb).all(|(x, y)| x.to_bits() == y.to_bits()));
    let c = Ranker::fit(&train, None, &RankerConfig { seed: 7, ..config }).unwrap();
    assert_ne!(
        predict_all(&c, &train),
        pa,
        "feature sampling follows the seed"
    );
}

#[test]
fn serde_round_trip_keeps_predictions() {
    let train = synthetic(100, 30, 6, product_label);
    let ranker = Ranker::fit(&train, None, &small_config()).unwrap();
    let expected = predict_all(&ranker, &train);

    let bytes = postcard::to_stdvec(&ranker).unwrap();
    let from_postcard: Ranker = postcard::from_bytes(&bytes).unwrap();
    from_postcard.check().unwrap();
    assert_eq!(predict_all(&from_postcard, &train), expected);

    let json = serde_json::to_string(&ranker).unwrap();
    let from_json: Ranker = serde_json::from_str(&json).unwrap();
    from_json.check().unwrap();
    assert_eq!(predict_all(&from_json, &train), expected);
    assert_eq!(from_json.n_features(), N_FEATURES);
}

#[test]
fn early_stopping_stops_and_keeps_the_best_round() {
    // Labels are noise, so validation NDCG cannot keep improving.
    let noise = |_: &[f32], rng: &mut ChaCha8Rng| f32::from(rng.random::<f32>() < 0.1);
    let train = synthetic(60, 30, 7, noise);
    let valid = synthetic(60, 30, 8, noise);
    let config = RankerConfig {
        trees: 500,
        early_stopping_rounds: Some(5),
        ..small_config()
    };
    let ranker = Ranker::fit(&train, Some(&valid), &config).unwrap();
    let history = ranker.valid_ndcg_history();
    assert!(ranker.n_trees() < 500);
    assert_eq!(history.len(), ranker.n_trees() + 5);
    let best = history.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(history[ranker.n_trees() - 1], best);
    let kept = mean_ndcg(&valid, &predict_all(&ranker, &valid), 10);
    assert!((kept - best).abs() < 1e-6, "{kept} vs {best}");
}

#[test]
fn validation_history_without_early_stopping_covers_every_round() {
    let train = synthetic(60, 30, 9, xor_label);
    let valid = synthetic(40, 30, 10, xor_label);
    let ranker = Ranker::fit(&train, Some(&valid), &small_config()).unwrap();
    assert_eq!(ranker.valid_ndcg_history().len(), ranker.n_trees());
    assert_eq!(ranker.n_trees(), small_config().trees);
}

#[test]
fn missing_values_learn_their_direction() {
    // f0 is missing on a third of the rows, and those rows are the relevant ones.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut make = |groups: usize| {
        let mut data = RankingData::new(2);
        for _ in 0..groups {
            let mut rows = Vec::new();
            let mut labels = Vec::new();
            for _ in 0..30 {
                let missing = rng.random::<f32>() < 0.33;
                rows.push(if missing { f32::NAN } else { rng.random() });
                rows.push(rng.random());
                labels.push(f32::from(missing && rng.random::<f32>() < 0.5));
            }
            data.push_group(&rows, &labels).unwrap();
        }
        data
    };
    let (train, test) = (make(100), make(50));
    let ranker = Ranker::fit(&train, None, &small_config()).unwrap();
    assert!(ranker.predict(&[f32::NAN, 0.5]) > ranker.predict(&[0.5, 0.5]));
    // Ranking the missing rows first, with ties broken pessimistically, is as good as it gets
    // from features; the ranker orders within the missing rows by noise, so it should not lose.
    let oracle: Vec<f32> = test
        .features
        .chunks(2)
        .map(|row| f32::from(row[0].is_nan()))
        .collect();
    let learned = mean_ndcg(&test, &predict_all(&ranker, &test), 10);
    let best_possible_pessimistic = mean_ndcg(&test, &oracle, 10);
    assert!(
        learned > best_possible_pessimistic - 0.02,
        "{learned} vs {best_possible_pessimistic}"
    );
}

#[test]
fn nothing_to_learn_gives_an_empty_model_that_scores_zero() {
    let train = synthetic(20, 10, 12, |_, _| 1.0);
    let ranker = Ranker::fit(&train, None, &small_config()).unwrap();
    assert_eq!(ranker.n_trees(), 0);
    assert_eq!(ranker.predict(&[0.5; N_FEATURES]), 0.0);
    assert_eq!(ranker.feature_importance(), vec![0.0; N_FEATURES]);
}

#[test]
fn predict_many_marks_slots_without_a_full_row() {
    let train = synthetic(50, 20, 13, xor_label);
    let ranker = Ranker::fit(&train, None, &small_config()).unwrap();
    let rows = &train.features[..N_FEATURES * 2 + 3];
    let mut out = [0.0; 4];
    ranker.predict_many(rows, &mut out);
    assert_eq!(out[0], ranker.predict(&rows[..N_FEATURES]));
    assert_eq!(out[1], ranker.predict(&rows[N_FEATURES..2 * N_FEATURES]));
    assert!(out[2].is_nan() && out[3].is_nan());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let good = synthetic(10, 10, 14, xor_label);
    let config = small_config();
    let fit = |data: &RankingData| Ranker::fit(data, None, &config);

    assert!(matches!(
        fit(&RankingData::new(3)),
        Err(RankError::EmptyData(_))
    ));
    assert!(matches!(
        fit(&RankingData::new(0)),
        Err(RankError::NoFeatures)
    ));
    let mut bad = good.clone();
    bad.features.pop();
    assert!(matches!(fit(&bad), Err(RankError::LengthMismatch { .. })));
    let mut bad = good.clone();
    bad.group_sizes[0] += 1;
    assert!(matches!(fit(&bad), Err(RankError::LengthMismatch { .. })));
    let mut bad = good.clone();
    bad.features[7] = f32::NEG_INFINITY;
    assert!(matches!(
        fit(&bad),
        Err(RankError::InfiniteFeature {
            row: 1,
            feature: 1,
            ..
        })
    ));
    let mut bad = good.clone();
    bad.labels[3] = 100.0;
    assert!(matches!(fit(&bad), Err(RankError::BadLabel { row: 3, .. })));

    let bad_config = RankerConfig {
        max_bins: 1000,
        ..config.clone()
    };
    assert!(matches!(
        Ranker::fit(&good, None, &bad_config),
        Err(RankError::BadConfig(_))
    ));
    let other_width = RankingData {
        n_features: 2,
        features: vec![0.0; 4],
        labels: vec![1.0, 0.0],
        group_sizes: vec![2],
    };
    assert!(matches!(
        Ranker::fit(&good, Some(&other_width), &config),
        Err(RankError::FeatureCountMismatch {
            expected: 6,
            actual: 2
        })
    ));
    let mut bad_valid = good.clone();
    bad_valid.labels.clear();
    assert!(Ranker::fit(&good, Some(&bad_valid), &config).is_err());
}

#[test]
fn corrupt_deserialized_model_is_detected() {
    let train = synthetic(50, 20, 15, xor_label);
    let ranker = Ranker::fit(&train, None, &small_config()).unwrap();
    let mut json: serde_json::Value = serde_json::to_value(&ranker).unwrap();
    json["n_features"] = serde_json::json!(1);
    let narrowed: Ranker = serde_json::from_value(json).unwrap();
    assert_eq!(narrowed.check(), Err(RankError::CorruptModel));
}
