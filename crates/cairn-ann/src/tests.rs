//! Behaviour of the whole index on small seeded data.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{exact_search, AnnError, HnswConfig, HnswIndex, Metric};

/// `n` vectors around 20 centres with a spread of norms (as MF item factors have), and `q`
/// queries that mix centres, in the spirit of the peer harness's generator.
fn clustered(n: usize, q: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let gauss =
        move |rng: &mut ChaCha8Rng| (0..4).map(|_| rng.random::<f32>() - 0.5).sum::<f32>() * 1.7;
    let centres: Vec<f32> = (0..20 * dim).map(|_| gauss(&mut rng)).collect();
    let mut data = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.random_range(0..20);
        let scale = (gauss(&mut rng) * 0.3).exp();
        for j in 0..dim {
            data.push((0.7 * centres[c * dim + j] + 0.5 * gauss(&mut rng)) * scale);
        }
    }
    let mut queries = Vec::with_capacity(q * dim);
    for _ in 0..q {
        let (a, b) = (rng.random_range(0..20), rng.random_range(0..20));
        for j in 0..dim {
            queries
                .push(0.5 * (centres[a * dim + j] + centres[b * dim + j]) + 0.3 * gauss(&mut rng));
        }
    }
    (data, queries)
}

fn recall_at_10(index: &HnswIndex, data: &[f32], queries: &[f32], dim: usize, ef: usize) -> f64 {
    let metric = index.config().metric;
    let mut hits = 0;
    let mut total = 0;
    for q in queries.chunks_exact(dim) {
        let truth: Vec<u32> = exact_search(data, dim, q, 10, metric)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let found = index.search(q, 10, ef);
        hits += found.iter().filter(|(id, _)| truth.contains(id)).count();
        total += truth.len();
    }
    hits as f64 / total as f64
}

fn config(metric: Metric) -> HnswConfig {
    HnswConfig {
        metric,
        seed: 7,
        ..HnswConfig::default()
    }
}

#[test]
fn recall_at_10_reaches_095_for_every_metric() {
    let dim = 32;
    let (data, queries) = clustered(5000, 100, dim, 1);
    for metric in [Metric::InnerProduct, Metric::Cosine, Metric::L2] {
        let index = HnswIndex::build_serial(&data, dim, &config(metric)).unwrap();
        let recall = recall_at_10(&index, &data, &queries, dim, 64);
        assert!(recall >= 0.95, "{metric:?}: recall@10 {recall}");
    }
}

#[test]
fn parallel_build_reaches_the_same_recall() {
    let dim = 16;
    let (data, queries) = clustered(3000, 100, dim, 2);
    let index =
        HnswIndex::build_with_threads(&data, dim, &config(Metric::InnerProduct), 2).unwrap();
    assert_eq!(index.len(), 3000);
    let recall = recall_at_10(&index, &data, &queries, dim, 64);
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[test]
fn scores_match_exact_scores_for_the_ids_found() {
    let dim = 8;
    let (data, queries) = clustered(500, 5, dim, 3);
    for metric in [Metric::InnerProduct, Metric::Cosine, Metric::L2] {
        let index = HnswIndex::build_serial(&data, dim, &config(metric)).unwrap();
        for q in queries.chunks_exact(dim) {
            let exact = exact_search(&data, dim, q, 500, metric);
            for (id, score) in index.search(q, 10, 50) {
                let (_, want) = exact.iter().find(|(e, _)| *e == id).unwrap();
                assert!(
                    (score - want).abs() <= 1e-3 * (1.0 + want.abs()),
                    "{metric:?} id {id}: {score} vs {want}"
                );
            }
        }
    }
}

#[test]
fn serial_build_is_deterministic() {
    let dim = 8;
    let (data, _) = clustered(1000, 0, dim, 4);
    let a = HnswIndex::build_serial(&data, dim, &config(Metric::L2)).unwrap();
    let b = HnswIndex::build_serial(&data, dim, &config(Metric::L2)).unwrap();
    assert_eq!(
        postcard::to_allocvec(&a).unwrap(),
        postcard::to_allocvec(&b).unwrap()
    );
}

#[test]
fn filtered_search_returns_only_allowed_ids_and_fills_k() {
    let dim = 16;
    let (data, queries) = clustered(3000, 20, dim, 5);
    let index = HnswIndex::build_serial(&data, dim, &config(Metric::InnerProduct)).unwrap();
    for modulus in [2u32, 7, 50] {
        let allow = |id: u32| id.is_multiple_of(modulus);
        for q in queries.chunks_exact(dim) {
            let found = index.search_filtered(q, 10, 64, allow);
            assert_eq!(found.len(), 10, "modulus {modulus}");
            assert!(found.iter().all(|&(id, _)| allow(id)));
        }
    }
    // Fewer allowed ids than k: all of them come back.
    let found = index.search_filtered(&queries[..dim], 10, 64, |id| id < 3);
    let mut ids: Vec<u32> = found.iter().map(|&(id, _)| id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1, 2]);
    assert!(index
        .search_filtered(&queries[..dim], 10, 64, |_| false)
        .is_empty());
}

#[test]
fn filtered_recall_matches_exact_over_the_allowed_set() {
    let dim = 16;
    let (data, queries) = clustered(3000, 50, dim, 6);
    let index = HnswIndex::build_serial(&data, dim, &config(Metric::L2)).unwrap();
    let allowed: Vec<u32> = (0..3000).filter(|i| i % 3 == 0).collect();
    let sub: Vec<f32> = allowed
        .iter()
        .flat_map(|&i| data[i as usize * dim..(i as usize + 1) * dim].to_vec())
        .collect();
    let (mut hits, mut total) = (0, 0);
    for q in queries.chunks_exact(dim) {
        let truth: Vec<u32> = exact_search(&sub, dim, q, 10, Metric::L2)
            .into_iter()
            .map(|(j, _)| allowed[j as usize])
            .collect();
        let found = index.search_filtered(q, 10, 64, |id| id % 3 == 0);
        hits += found.iter().filter(|(id, _)| truth.contains(id)).count();
        total += 10;
    }
    assert!(
        hits as f64 / total as f64 >= 0.95,
        "filtered recall {}",
        hits as f64 / total as f64
    );
}

#[test]
fn inserted_vectors_are_found() {
    let dim = 16;
    let (data, extra) = clustered(2000, 50, dim, 7);
    for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
        let mut index = HnswIndex::build_serial(&data, dim, &config(metric)).unwrap();
        for (j, v) in extra.chunks_exact(dim).enumerate() {
            let id = index.insert(v).unwrap();
            assert_eq!(id as usize, 2000 + j);
        }
        assert_eq!(index.len(), 2050);
        let mut all = data.clone();
        all.extend_from_slice(&extra);
        for (j, v) in extra.chunks_exact(dim).enumerate() {
            let want = exact_search(&all, dim, v, 1, metric)[0].0;
            let found = index.search(v, 10, 64);
            assert_eq!(found[0].0, want, "{metric:?} insert {j}");
        }
    }
}

#[test]
fn an_index_grown_only_by_insert_works() {
    let dim = 8;
    let (data, queries) = clustered(1500, 50, dim, 8);
    let mut index = HnswIndex::new(dim, &config(Metric::InnerProduct)).unwrap();
    assert!(index.is_empty());
    assert!(index.search(&queries[..dim], 10, 64).is_empty());
    for v in data.chunks_exact(dim) {
        index.insert(v).unwrap();
    }
    assert_eq!((index.len(), index.dim()), (1500, dim));
    let recall = recall_at_10(&index, &data, &queries, dim, 64);
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[test]
fn serde_round_trip_gives_identical_results() {
    let dim = 16;
    let (data, queries) = clustered(2000, 20, dim, 9);
    let index = HnswIndex::build_with_threads(&data, dim, &config(Metric::Cosine), 2).unwrap();
    let from_postcard: HnswIndex =
        postcard::from_bytes(&postcard::to_allocvec(&index).unwrap()).unwrap();
    let from_json: HnswIndex =
        serde_json::from_str(&serde_json::to_string(&index).unwrap()).unwrap();
    for q in queries.chunks_exact(dim) {
        let want = index.search(q, 10, 40);
        assert_eq!(from_postcard.search(q, 10, 40), want);
        assert_eq!(from_json.search(q, 10, 40), want);
    }
    assert_eq!(
        format!("{:?}", from_postcard.config()),
        format!("{:?}", index.config())
    );
}

#[test]
fn damaged_serialised_index_is_refused() {
    let dim = 4;
    let (data, _) = clustered(300, 0, dim, 10);
    let index = HnswIndex::build_serial(&data, dim, &config(Metric::L2)).unwrap();
    let mut value = serde_json::to_value(&index).unwrap();
    value["links0"][1] = serde_json::json!(1_000_000);
    assert!(serde_json::from_value::<HnswIndex>(value).is_err());
    let mut value = serde_json::to_value(&index).unwrap();
    value["links0"][0] = serde_json::json!(1_000);
    assert!(serde_json::from_value::<HnswIndex>(value).is_err());
    let mut value = serde_json::to_value(&index).unwrap();
    value["vectors"].as_array_mut().unwrap().pop();
    assert!(serde_json::from_value::<HnswIndex>(value).is_err());
    let mut value = serde_json::to_value(&index).unwrap();
    value["entry"] = serde_json::json!([300, 0]);
    assert!(serde_json::from_value::<HnswIndex>(value).is_err());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let cfg = config(Metric::L2);
    assert_eq!(HnswIndex::build(&[], 4, &cfg).unwrap_err(), AnnError::Empty);
    assert_eq!(
        HnswIndex::build(&[1.0; 4], 0, &cfg).unwrap_err(),
        AnnError::ZeroDimension
    );
    assert_eq!(
        HnswIndex::build(&[1.0; 5], 4, &cfg).unwrap_err(),
        AnnError::RaggedInput { len: 5, dim: 4 }
    );
    let mut bad = vec![1.0; 8];
    bad[6] = f32::NAN;
    assert_eq!(
        HnswIndex::build(&bad, 4, &cfg).unwrap_err(),
        AnnError::NonFinite { row: 1, index: 2 }
    );
    bad[6] = f32::INFINITY;
    assert!(matches!(
        HnswIndex::build(&bad, 4, &cfg),
        Err(AnnError::NonFinite { .. })
    ));
    let cos = config(Metric::Cosine);
    assert_eq!(
        HnswIndex::build(&[1.0, 0.0, 0.0, 0.0], 2, &cos).unwrap_err(),
        AnnError::ZeroVector { row: 1 }
    );
    assert!(matches!(
        HnswIndex::build(
            &[1.0; 4],
            4,
            &HnswConfig {
                m: 1,
                ..cfg.clone()
            }
        ),
        Err(AnnError::InvalidConfig(_))
    ));
    assert!(matches!(
        HnswIndex::build(
            &[1.0; 4],
            4,
            &HnswConfig {
                ef_construction: 0,
                ..cfg.clone()
            }
        ),
        Err(AnnError::InvalidConfig(_))
    ));

    let mut index = HnswIndex::build(&[1.0, 2.0, 3.0, 4.0, 0.5, 0.5, 0.5, 0.5], 4, &cfg).unwrap();
    assert_eq!(
        index.insert(&[1.0; 3]).unwrap_err(),
        AnnError::DimensionMismatch {
            expected: 4,
            got: 3
        }
    );
    assert_eq!(
        index.insert(&[1.0, f32::NAN, 0.0, 0.0]).unwrap_err(),
        AnnError::NonFinite { row: 0, index: 1 }
    );
    assert_eq!(
        index.len(),
        2,
        "a refused insert leaves the index unchanged"
    );
    assert_eq!(
        index.try_search(&[1.0; 5], 1, 10).unwrap_err(),
        AnnError::DimensionMismatch {
            expected: 4,
            got: 5
        }
    );
    assert!(matches!(
        index.try_search(&[f32::NAN; 4], 1, 10),
        Err(AnnError::NonFinite { .. })
    ));
    assert!(index.search(&[1.0; 5], 1, 10).is_empty());
    assert!(index.search(&[f32::NAN; 4], 1, 10).is_empty());
    assert!(index.search(&[1.0; 4], 0, 10).is_empty());
    assert_eq!(
        index.search(&[1.0; 4], 10, 0).len(),
        2,
        "k larger than n gives every vector"
    );
}

#[test]
fn a_filter_that_searches_the_same_index_does_not_panic() {
    let dim = 4;
    let (data, queries) = clustered(200, 1, dim, 11);
    let index = HnswIndex::build_serial(&data, dim, &config(Metric::L2)).unwrap();
    let found = index.search_filtered(&queries, 5, 20, |id| {
        !index.search(&queries, 1, 10).iter().any(|h| h.0 == id)
    });
    assert_eq!(found.len(), 5);
}

#[test]
fn config_and_metric_use_kebab_case_and_defaults() {
    assert_eq!(
        serde_json::to_string(&Metric::InnerProduct).unwrap(),
        "\"inner-product\""
    );
    let cfg: HnswConfig = serde_json::from_str(r#"{"metric": "cosine", "m": 8}"#).unwrap();
    assert_eq!(
        (cfg.m, cfg.ef_construction, cfg.ef_search, cfg.metric),
        (8, 200, 64, Metric::Cosine)
    );
}

fn small_index() -> impl Strategy<Value = (Vec<f32>, usize, Metric)> {
    (1usize..6, 1usize..120, 0usize..3).prop_flat_map(|(dim, n, metric)| {
        let metric = [Metric::InnerProduct, Metric::Cosine, Metric::L2][metric];
        // Values away from zero so cosine never sees a zero vector.
        (
            proptest::collection::vec(prop_oneof![-4.0f32..-0.1, 0.1f32..4.0], n * dim),
            Just(dim),
            Just(metric),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn results_are_sorted_unique_and_in_range(
        (data, dim, metric) in small_index(),
        query_seed in 0u64..1000,
        k in 1usize..20,
        ef in 1usize..50,
    ) {
        let cfg = HnswConfig { m: 4, ef_construction: 20, metric, seed: query_seed, ..HnswConfig::default() };
        let index = HnswIndex::build_serial(&data, dim, &cfg).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(query_seed);
        let query: Vec<f32> = (0..dim).map(|_| rng.random_range(0.1f32..2.0)).collect();
        let found = index.search(&query, k, ef);
        let n = data.len() / dim;
        prop_assert!(found.len() <= k.min(n));
        prop_assert!(!found.is_empty());
        prop_assert!(found.windows(2).all(|w| w[0].1 >= w[1].1), "not sorted: {:?}", found);
        let mut ids: Vec<u32> = found.iter().map(|h| h.0).collect();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), found.len());
        prop_assert!(ids.iter().all(|&id| (id as usize) < n));
    }
}
