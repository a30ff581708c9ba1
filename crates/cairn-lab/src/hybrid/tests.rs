use super::*;
use crate::testdata::{cold_recall, planted, Planted};
use cairn_content::{FeatureConfig, FeatureSpace};
use cairn_models::top_k;
use rand::{Rng, SeedableRng};

fn small_config() -> HybridConfig {
    HybridConfig {
        factors: 16,
        epochs: 10,
        ..HybridConfig::default()
    }
}

fn fitted(p: &Planted, config: &HybridConfig) -> (FeatureSpace, HybridModel) {
    let space = FeatureSpace::fit_items(&p.items, &FeatureConfig::default()).unwrap();
    let features = space.item_matrix(&p.items);
    let model = fit(&p.train, &features, None, config).unwrap();
    (space, model)
}

#[test]
fn cold_items_beat_random_and_popularity() {
    let p = planted(150, 200, 7);
    let (_, model) = fitted(&p, &small_config());
    let hybrid = cold_recall(&p, 10, |h, s| model.score(h, s));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let random = cold_recall(&p, 10, |_, s| s.iter_mut().for_each(|x| *x = rng.random()));
    let mut counts = vec![0f32; p.items.len()];
    for &i in &p.train.indices {
        counts[i as usize] += 1.0;
    }
    let popularity = cold_recall(&p, 10, |_, s| s.copy_from_slice(&counts));
    assert!(
        hybrid > 2.0 * random.max(popularity),
        "hybrid {hybrid:.3}, random {random:.3}, popularity {popularity:.3}"
    );
}

#[test]
fn a_cold_item_ranks_high_for_users_of_its_topic() {
    let p = planted(150, 200, 11);
    let (_, model) = fitted(&p, &small_config());
    let cold = p.cold[0];
    let topic = p.item_topic[cold as usize];
    let mut scores = vec![0f32; p.items.len()];
    let mut ranks_fans = Vec::new();
    let mut ranks_others = Vec::new();
    for u in 0..p.train.n_rows {
        let (cols, vals) = p.train.row(u);
        let history: Vec<(u32, f32)> = cols.iter().copied().zip(vals.iter().copied()).collect();
        model.score(&history, &mut scores);
        let rank = scores
            .iter()
            .filter(|&&s| s > scores[cold as usize])
            .count();
        if p.user_topics[u] == vec![topic] {
            ranks_fans.push(rank);
        } else if !p.user_topics[u].contains(&topic) {
            ranks_others.push(rank);
        }
    }
    let mean = |r: &[usize]| r.iter().sum::<usize>() as f64 / r.len().max(1) as f64;
    // 50 items per topic: a fan should see it among the first quarter of the catalog.
    assert!(mean(&ranks_fans) < 50.0, "fans: {}", mean(&ranks_fans));
    assert!(mean(&ranks_others) > 2.0 * mean(&ranks_fans));
}

#[test]
fn pushed_item_is_placed_by_its_features() {
    let p = planted(100, 120, 3);
    let (space, mut model) = fitted(&p, &small_config());
    let mut new_item = p.items[0].clone();
    new_item.id = "new".into();
    let topic = p.item_topic[0];
    let idx = model.push_item(&space.transform_item(&new_item));
    assert_eq!(idx as usize, p.items.len());
    let fan = (0..p.train.n_rows)
        .find(|&u| p.user_topics[u] == vec![topic])
        .unwrap();
    let (cols, vals) = p.train.row(fan);
    let history: Vec<(u32, f32)> = cols.iter().copied().zip(vals.iter().copied()).collect();
    let mut scores = vec![0f32; model.n_items()];
    model.score(&history, &mut scores);
    let top = top_k(&scores, 60, |i| cols.contains(&i));
    assert!(top.iter().any(|(i, _)| *i == idx), "new item not in top 60");
}

#[test]
fn user_features_alone_give_a_profile() {
    // Users carry their topic as a property; a user with no events is scored from it.
    let p = planted(150, 120, 5);
    let space = FeatureSpace::fit_items(&p.items, &FeatureConfig::default()).unwrap();
    let features = space.item_matrix(&p.items);
    let n_topics = 4;
    let user_rows: Vec<Vec<(u32, f32)>> = p
        .user_topics
        .iter()
        .map(|t| vec![(t[0] as u32, 1.0)])
        .collect();
    let user_features = cairn_content::features::rows_to_csr(user_rows, n_topics);
    let model = fit(&p.train, &features, Some(&user_features), &small_config()).unwrap();
    let mut scores = vec![0f32; model.n_items()];
    for topic in 0..n_topics {
        model.score_user(&[], Some(&[(topic as u32, 1.0)]), &mut scores);
        let top = top_k(&scores, 10, |_| false);
        let on_topic = top
            .iter()
            .filter(|(i, _)| p.item_topic[*i as usize] == topic)
            .count();
        assert!(on_topic >= 7, "topic {topic}: {on_topic} of 10 on topic");
    }
}

#[test]
fn fit_is_deterministic_and_round_trips() {
    let p = planted(60, 80, 9);
    let (_, a) = fitted(&p, &small_config());
    let (_, b) = fitted(&p, &small_config());
    assert_eq!(a, b);
    let bytes = postcard::to_allocvec(&a).unwrap();
    let back: HybridModel = postcard::from_bytes(&bytes).unwrap();
    let history = [(0u32, 1.0f32), (5, 2.0)];
    let mut s1 = vec![0f32; a.n_items()];
    let mut s2 = vec![0f32; a.n_items()];
    a.score(&history, &mut s1);
    back.score(&history, &mut s2);
    assert_eq!(s1, s2);
}

#[test]
fn bpr_also_learns_and_bad_inputs_are_errors() {
    let p = planted(150, 200, 13);
    let config = HybridConfig {
        loss: Loss::Bpr,
        ..small_config()
    };
    let (_, model) = fitted(&p, &config);
    let hybrid = cold_recall(&p, 10, |h, s| model.score(h, s));
    let share = 10.0 / p.cold.len() as f64;
    assert!(hybrid > 2.0 * share, "bpr cold recall {hybrid:.3}");

    let space = FeatureSpace::fit_items(&p.items, &FeatureConfig::default()).unwrap();
    let features = space.item_matrix(&p.items[..10]);
    assert!(matches!(
        fit(&p.train, &features, None, &small_config()),
        Err(ContentError::ShapeMismatch { .. })
    ));
    let bad = HybridConfig {
        factors: 0,
        ..small_config()
    };
    assert!(fit(&p.train, &space.item_matrix(&p.items), None, &bad).is_err());
}
