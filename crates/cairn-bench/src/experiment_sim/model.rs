//! The simulated shop and its users: planted tastes, a position-biased click model, and the
//! seeded randomness that makes every draw a pure function of (seed, user, day, list).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// SplitMix64's finaliser: mixes the parts of a key into one well-spread seed.
pub fn mix(parts: &[u64]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for &p in parts {
        let mut z = h ^ p.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

/// A generator seeded by `parts` (the same parts, the same draws, on any thread).
pub fn rng_for(parts: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(parts))
}

/// A uniform draw in [0, 1) that depends only on `parts`.
pub fn uniform(parts: &[u64]) -> f64 {
    (mix(parts) >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A user's planted taste.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Taste {
    /// The favourite category.
    pub first: usize,
    /// The second favourite (never the first when there are two categories or more).
    pub second: usize,
    /// How much this user clicks overall: lognormal with mean 1.
    pub propensity: f64,
}

/// The shop: items in categories with a quality each, users with planted tastes, and the click
/// model. relevance(u, i) = min(1, base · propensity(u) · affinity(u, category(i)) · quality(i)),
/// affinity 1 for the favourite category, `second_affinity` for the second, `other_affinity`
/// elsewhere; P(click at 1-based position p) = min(1, relevance · p^−eta · boost).
#[derive(Debug, Clone)]
pub struct Shop {
    pub items: usize,
    pub categories: usize,
    /// Quality of each item, uniform in [0.5, 1.5].
    pub quality: Vec<f64>,
    pub base: f64,
    /// σ of the users' log-propensity (their spread in how much they click).
    pub spread: f64,
    pub second_affinity: f64,
    pub other_affinity: f64,
    /// Exponent of the examination curve 1/position^eta.
    pub eta: f64,
    pub seed: u64,
}

impl Shop {
    pub fn new(
        items: usize,
        categories: usize,
        base: f64,
        spread: f64,
        eta: f64,
        seed: u64,
    ) -> Shop {
        let mut rng = rng_for(&[seed, 1]);
        let quality = (0..items).map(|_| 0.5 + rng.random::<f64>()).collect();
        Shop {
            items,
            categories: categories.max(1),
            quality,
            base,
            spread,
            second_affinity: 0.4,
            other_affinity: 0.05,
            eta,
            seed,
        }
    }

    pub fn category(&self, item: usize) -> usize {
        item % self.categories
    }

    /// User `user`'s taste (a pure function of the seed and the user's index).
    pub fn taste(&self, user: u64) -> Taste {
        let mut rng = rng_for(&[self.seed, 2, user]);
        let first = rng.random_range(0..self.categories);
        let second = if self.categories > 1 {
            (first + 1 + rng.random_range(0..self.categories - 1)) % self.categories
        } else {
            first
        };
        let propensity = (self.spread * normal(&mut rng) - self.spread * self.spread / 2.0).exp();
        Taste {
            first,
            second,
            propensity,
        }
    }

    pub fn affinity(&self, taste: &Taste, item: usize) -> f64 {
        let c = self.category(item);
        if c == taste.first {
            1.0
        } else if c == taste.second {
            self.second_affinity
        } else {
            self.other_affinity
        }
    }

    pub fn relevance(&self, taste: &Taste, item: usize) -> f64 {
        let q = self.quality.get(item).copied().unwrap_or(1.0);
        (self.base * taste.propensity * self.affinity(taste, item) * q).min(1.0)
    }

    /// The examination probability of a 1-based position.
    pub fn examination(&self, position: usize) -> f64 {
        (position.max(1) as f64).powf(-self.eta)
    }

    pub fn click_probability(
        &self,
        taste: &Taste,
        item: usize,
        position: usize,
        boost: f64,
    ) -> f64 {
        (self.relevance(taste, item) * self.examination(position) * boost).clamp(0.0, 1.0)
    }

    /// Which positions (1-based) of `items` the user clicks, drawn from `rng`.
    pub fn clicks(
        &self,
        taste: &Taste,
        items: &[usize],
        boost: f64,
        rng: &mut impl Rng,
    ) -> Vec<usize> {
        items
            .iter()
            .enumerate()
            .filter_map(|(i, &item)| {
                let p = self.click_probability(taste, item, i + 1, boost);
                (rng.random::<f64>() < p).then_some(i + 1)
            })
            .collect()
    }

    /// `n` distinct items the user viewed before the experiments: the category is the favourite
    /// with probability 0.6, the second favourite 0.3, any 0.1; the item uniform in it.
    pub fn history(&self, user: u64, n: usize) -> Vec<usize> {
        let taste = self.taste(user);
        let mut rng = rng_for(&[self.seed, 3, user]);
        let mut out: Vec<usize> = Vec::with_capacity(n);
        let per_category = self.items.div_ceil(self.categories);
        let mut tries = 0;
        while out.len() < n.min(self.items) && tries < 50 * n + 50 {
            tries += 1;
            let x: f64 = rng.random();
            let c = if x < 0.6 {
                taste.first
            } else if x < 0.9 {
                taste.second
            } else {
                rng.random_range(0..self.categories)
            };
            let item = c + self.categories * rng.random_range(0..per_category);
            if item < self.items && !out.contains(&item) {
                out.push(item);
            }
        }
        out
    }
}

/// Counts of one arm (A/B: a variant; interleaving: the whole list), as the simulator sent them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArmTally {
    pub users: u64,
    pub impressions: u64,
    pub clicks: u64,
}

/// What the simulator sent to one experiment: users (by index) with the arm they were served,
/// and the impressions and clicks posted per arm.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub users: std::collections::BTreeMap<String, usize>,
    pub arms: Vec<ArmTally>,
}

impl Tally {
    pub fn new(arms: usize) -> Tally {
        Tally {
            users: Default::default(),
            arms: vec![ArmTally::default(); arms],
        }
    }

    /// One list of `shown` items with `clicks` clicks posted for `user` in arm `arm`.
    pub fn add(&mut self, user: &str, arm: usize, shown: u64, clicks: u64) {
        if arm >= self.arms.len() {
            self.arms.resize(arm + 1, ArmTally::default());
        }
        if !self.users.contains_key(user) {
            self.users.insert(user.to_string(), arm);
            self.arms[arm].users += 1;
        }
        self.arms[arm].impressions += shown;
        self.arms[arm].clicks += clicks;
    }

    pub fn merge(&mut self, other: &Tally) {
        if other.arms.len() > self.arms.len() {
            self.arms.resize(other.arms.len(), ArmTally::default());
        }
        for (user, &arm) in &other.users {
            if !self.users.contains_key(user) {
                self.users.insert(user.clone(), arm);
                self.arms[arm].users += 1;
            }
        }
        for (a, o) in self.arms.iter_mut().zip(&other.arms) {
            a.impressions += o.impressions;
            a.clicks += o.clicks;
        }
    }

    /// The sum over arms (users counted once each).
    pub fn total(&self) -> ArmTally {
        ArmTally {
            users: self.users.len() as u64,
            impressions: self.arms.iter().map(|a| a.impressions).sum(),
            clicks: self.arms.iter().map(|a| a.clicks).sum(),
        }
    }
}

/// A share with its 95% Wilson interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Rate {
    pub hits: usize,
    pub runs: usize,
    pub rate: f64,
    pub lo: f64,
    pub hi: f64,
}

pub fn rate(hits: usize, runs: usize) -> Rate {
    if runs == 0 {
        return Rate {
            hits,
            runs,
            rate: f64::NAN,
            lo: 0.0,
            hi: 1.0,
        };
    }
    let n = runs as f64;
    let p = hits as f64 / n;
    let z = 1.959_964;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    Rate {
        hits,
        runs,
        rate: p,
        lo: (centre - half).max(0.0),
        hi: (centre + half).min(1.0),
    }
}

/// z₀.₉₇₅ + z₀.₈: a two-sided 5% test with 80% power.
pub const Z_FIXED: f64 = 1.959_964 + 0.841_621;

/// The boundary |z| of the always-valid test (α = 0.05, `cairn-experiment`'s normal mixture) at
/// the sample it is tuned for (planned users = users): √(2(a+1)/a · ln(√(a+1)/α)) with
/// a = −2 ln α + ln(1 − 2 ln α).
pub fn always_valid_z_at_plan() -> f64 {
    let alpha: f64 = 0.05;
    let l = -2.0 * alpha.ln();
    let a = l + (l + 1.0).ln();
    (2.0 * (a + 1.0) / a * ((a + 1.0).sqrt() / alpha).ln()).sqrt()
}

/// Users (all arms) for 80% power at the 5% level when a pilot of `pilot_users` measured the
/// effect `effect` with standard error `se`: n = pilot · (z / (effect / se))². With
/// `always_valid`, z is the always-valid boundary at the plan plus z₀.₈ instead of Z_FIXED.
pub fn users_for_power(pilot_users: f64, effect: f64, se: f64, always_valid: bool) -> f64 {
    if effect == 0.0 || !se.is_finite() || se <= 0.0 {
        return f64::INFINITY;
    }
    let z = if always_valid {
        always_valid_z_at_plan() + 0.841_621
    } else {
        Z_FIXED
    };
    (pilot_users * (z * se / effect).powi(2)).ceil()
}

/// Users for 80% power of the two-sided 5% sign test when a user with a preference prefers the
/// treatment with probability `q` and a share `ties` prefers neither (`cairn-experiment`'s
/// `power::users_sign_test`): n = ((z₀.₉₇₅·½ + z₀.₈·√(q(1−q))) / (q − ½))² / (1 − ties).
pub fn users_sign_test(q: f64, ties: f64) -> f64 {
    if q == 0.5 || ties >= 1.0 {
        return f64::INFINITY;
    }
    let decided = ((1.959_964 * 0.5 + 0.841_621 * (q * (1.0 - q)).sqrt()) / (q - 0.5)).powi(2);
    (decided / (1.0 - ties)).ceil()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> Shop {
        Shop::new(200, 8, 0.5, 0.6, 1.0, 7)
    }

    #[test]
    fn draws_are_pure_functions_of_their_keys() {
        let s = shop();
        assert_eq!(s.taste(12), shop().taste(12));
        assert_eq!(s.history(12, 6), shop().history(12, 6));
        assert_eq!(uniform(&[1, 2, 3]), uniform(&[1, 2, 3]));
        assert_ne!(uniform(&[1, 2, 3]), uniform(&[1, 2, 4]));
        let items: Vec<usize> = (0..10).collect();
        let a = s.clicks(&s.taste(3), &items, 1.0, &mut rng_for(&[9, 9]));
        let b = s.clicks(&s.taste(3), &items, 1.0, &mut rng_for(&[9, 9]));
        assert_eq!(a, b);
    }

    #[test]
    fn click_probability_is_relevance_times_examination() {
        let s = shop();
        let t = Taste {
            first: 2,
            second: 3,
            propensity: 1.0,
        };
        let item = 10; // category 2, the favourite
        let r = s.relevance(&t, item);
        assert!((r - 0.5 * s.quality[item]).abs() < 1e-12);
        assert!((s.click_probability(&t, item, 1, 1.0) - r).abs() < 1e-12);
        assert!((s.click_probability(&t, item, 4, 1.0) - r / 4.0).abs() < 1e-12);
        assert!((s.click_probability(&t, item, 4, 1.05) - 1.05 * r / 4.0).abs() < 1e-12);
        // Other categories are far less relevant; nothing exceeds 1.
        assert!((s.relevance(&t, 11) - 0.4 * 0.5 * s.quality[11]).abs() < 1e-12);
        assert!((s.relevance(&t, 12) - 0.05 * 0.5 * s.quality[12]).abs() < 1e-12);
        let heavy = Taste {
            propensity: 100.0,
            ..t
        };
        assert_eq!(s.click_probability(&heavy, item, 1, 2.0), 1.0);
    }

    #[test]
    fn simulated_clicks_follow_the_model_by_position() {
        // 200,000 lists of 5 items of the favourite category: the click rate at each position is
        // the model's probability within 4 standard errors, and falls as 1/position.
        let s = shop();
        let t = Taste {
            first: 0,
            second: 1,
            propensity: 1.0,
        };
        let items = [0, 8, 16, 24, 32];
        let lists = 200_000;
        let mut clicks = [0u32; 5];
        let mut rng = rng_for(&[42]);
        for _ in 0..lists {
            for p in s.clicks(&t, &items, 1.0, &mut rng) {
                clicks[p - 1] += 1;
            }
        }
        for (i, &c) in clicks.iter().enumerate() {
            let want = s.click_probability(&t, items[i], i + 1, 1.0);
            let got = c as f64 / lists as f64;
            let se = (want * (1.0 - want) / lists as f64).sqrt();
            assert!(
                (got - want).abs() < 4.0 * se,
                "position {}: {got} vs {want}",
                i + 1
            );
        }
    }

    #[test]
    fn tastes_are_spread_and_histories_follow_them() {
        let s = shop();
        let mut firsts = [0u32; 8];
        let mut mean_propensity = 0.0;
        let mut in_favourites = 0;
        let mut total = 0;
        for u in 0..4000 {
            let t = s.taste(u);
            assert_ne!(t.first, t.second);
            firsts[t.first] += 1;
            mean_propensity += t.propensity / 4000.0;
            let h = s.history(u, 6);
            assert_eq!(h.len(), 6);
            total += h.len();
            in_favourites += h
                .iter()
                .filter(|&&i| s.category(i) == t.first || s.category(i) == t.second)
                .count();
        }
        // Every category is someone's favourite (about 500 each of 4000).
        assert!(
            firsts.iter().all(|&c| (400..600).contains(&c)),
            "{firsts:?}"
        );
        // Lognormal with mean 1.
        assert!((mean_propensity - 1.0).abs() < 0.05, "{mean_propensity}");
        // 0.9 + 0.1·2/8 of the history is in the two favourite categories.
        let share = in_favourites as f64 / total as f64;
        assert!((share - 0.925).abs() < 0.02, "{share}");
    }

    #[test]
    fn tallies_count_users_once_and_merge() {
        let mut a = Tally::new(2);
        a.add("u1", 0, 10, 2);
        a.add("u1", 0, 10, 0);
        a.add("u2", 1, 10, 1);
        let mut b = Tally::new(2);
        b.add("u2", 1, 5, 1);
        b.add("u3", 1, 5, 0);
        a.merge(&b);
        assert_eq!(
            a.arms,
            vec![
                ArmTally {
                    users: 1,
                    impressions: 20,
                    clicks: 2
                },
                ArmTally {
                    users: 2,
                    impressions: 20,
                    clicks: 2
                }
            ]
        );
        assert_eq!(
            a.total(),
            ArmTally {
                users: 3,
                impressions: 40,
                clicks: 4
            }
        );
    }

    #[test]
    fn rates_and_sample_sizes() {
        let r = rate(10, 200);
        assert_eq!((r.hits, r.runs), (10, 200));
        assert!((r.rate - 0.05).abs() < 1e-12);
        // Wilson interval of 10/200: [0.0274, 0.0897].
        assert!(
            (r.lo - 0.0274).abs() < 5e-4 && (r.hi - 0.0897).abs() < 5e-4,
            "{r:?}"
        );
        // A pilot whose effect is 2 standard errors: (2.8016 / 2)² = 1.962 times its users.
        assert_eq!(users_for_power(1000.0, 0.02, 0.01, false), 1963.0);
        // The always-valid boundary at the plan is about 3.03 (cairn-experiment's docs: the
        // interval is about 1.55× the fixed one there), so about 1.9× the users.
        let z = always_valid_z_at_plan();
        assert!((z - 3.035).abs() < 0.01, "{z}");
        let ratio = users_for_power(1000.0, 0.02, 0.01, true) / 1963.0;
        assert!((ratio - 1.91).abs() < 0.03, "{ratio}");
        assert_eq!(users_for_power(1000.0, 0.0, 0.01, false), f64::INFINITY);
        // The sign test's sizes, as cairn-experiment's power tests have them.
        assert_eq!(users_sign_test(0.6, 0.0), 194.0);
        assert_eq!(users_sign_test(0.6, 0.5), 388.0);
        assert_eq!(users_sign_test(0.5, 0.0), f64::INFINITY);
    }
}
