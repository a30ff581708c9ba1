//! Team-draft interleaving (Radlinski, Kurup and Joachims, CIKM 2008) of a control and a treatment
//! ranking, click credit per team, and the per-user preference test.
//!
//! * [`team_draft`]: the teams pick in rounds; the team with fewer picks goes next, a coin decides a
//!   tie; each pick is the team's best item not yet shown (so an item both rankers want is shown once
//!   and credited to the team that picked it). The coins come from a generator seeded by the hash of
//!   the request id, so the same request id always gives the same list (a replay, a second replica).
//! * [`credit`]: clicks on the interleaved list count for the team that picked the clicked item.
//! * [`PreferenceSummary`]: per user, preference = (treatment − control) / (treatment + control)
//!   clicks over all the user's interleaved lists (0 when the user clicked nothing credited); the
//!   mean over users with a normal-approximation interval, and an exact sign test over the users who
//!   preferred one side. The user, not the impression, is the unit, since one user's lists are not
//!   independent.

use std::collections::HashSet;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::assign::hash64;
use crate::stats::{normal_quantile, sign_test_p, two_sided_p, Moments};

/// Which ranker an interleaved position came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Team {
    /// The current ranker.
    Control,
    /// The ranker under test.
    Treatment,
}

/// An interleaved list: item `i` was picked by `teams[i]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interleaved<T> {
    /// The items to show, in order.
    pub items: Vec<T>,
    /// The team of each shown item.
    pub teams: Vec<Team>,
}

/// SplitMix64 (Steele, Lea, Flood 2014): a small generator with a fixed specification, so the coin
/// flips of a request id are the same on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }
}

/// Team-draft interleaving of `control` and `treatment` into at most `len` items, the coin flips
/// seeded by `request_id`. Duplicates inside one input list are shown once.
pub fn team_draft<T: Clone + Eq + Hash>(
    control: &[T],
    treatment: &[T],
    len: usize,
    request_id: &str,
) -> Interleaved<T> {
    let mut rng = SplitMix64::new(hash64("team-draft", request_id));
    let mut shown: HashSet<&T> = HashSet::new();
    let mut out = Interleaved {
        items: Vec::with_capacity(len),
        teams: Vec::with_capacity(len),
    };
    let (mut ic, mut it) = (0usize, 0usize);
    let (mut picks_c, mut picks_t) = (0usize, 0usize);
    while out.items.len() < len {
        while ic < control.len() && shown.contains(&control[ic]) {
            ic += 1;
        }
        while it < treatment.len() && shown.contains(&treatment[it]) {
            it += 1;
        }
        let c_left = ic < control.len();
        let t_left = it < treatment.len();
        let team = match (c_left, t_left) {
            (false, false) => break,
            (true, false) => Team::Control,
            (false, true) => Team::Treatment,
            (true, true) => {
                if picks_c < picks_t || (picks_c == picks_t && rng.coin()) {
                    Team::Control
                } else {
                    Team::Treatment
                }
            }
        };
        let item = match team {
            Team::Control => {
                picks_c += 1;
                &control[ic]
            }
            Team::Treatment => {
                picks_t += 1;
                &treatment[it]
            }
        };
        shown.insert(item);
        out.items.push(item.clone());
        out.teams.push(team);
    }
    out
}

/// Credited clicks of one interleaved list (or of several, summed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// Clicks on items the control team picked.
    pub control: u64,
    /// Clicks on items the treatment team picked.
    pub treatment: u64,
}

impl Credit {
    /// Adds another list's credit.
    pub fn add(&mut self, other: Credit) {
        self.control += other.control;
        self.treatment += other.treatment;
    }

    /// The team with more credited clicks, or `None` for a tie (including no clicks).
    pub fn winner(&self) -> Option<Team> {
        match self.treatment.cmp(&self.control) {
            std::cmp::Ordering::Greater => Some(Team::Treatment),
            std::cmp::Ordering::Less => Some(Team::Control),
            std::cmp::Ordering::Equal => None,
        }
    }

    /// (treatment − control) / (treatment + control), 0 without clicks.
    pub fn preference(&self) -> f64 {
        let total = self.control + self.treatment;
        if total == 0 {
            0.0
        } else {
            (self.treatment as f64 - self.control as f64) / total as f64
        }
    }
}

/// Credits the clicked positions (0-based) of an interleaved list; a position outside the list is
/// ignored, and a position clicked twice counts twice.
pub fn credit(teams: &[Team], clicked_positions: &[usize]) -> Credit {
    let mut c = Credit::default();
    for &p in clicked_positions {
        match teams.get(p) {
            Some(Team::Control) => c.control += 1,
            Some(Team::Treatment) => c.treatment += 1,
            None => {}
        }
    }
    c
}

/// The interleaving experiment's result over users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceSummary {
    /// Users with at least one interleaved list.
    pub users: u64,
    /// Users whose credited clicks favour the treatment.
    pub prefer_treatment: u64,
    /// Users whose credited clicks favour the control.
    pub prefer_control: u64,
    /// Users with equal credit (most of them: no click).
    pub ties: u64,
    /// Mean per-user preference in [−1, 1]; positive favours the treatment.
    pub mean_preference: f64,
    /// Standard error of the mean preference.
    pub std_error: f64,
    /// Normal-approximation interval of the mean preference at the requested level.
    pub interval: (f64, f64),
    /// Two-sided p-value of the mean preference (z test).
    pub p_value: f64,
    /// Exact two-sided sign test over users with a preference.
    pub sign_test_p: f64,
}

impl PreferenceSummary {
    /// Summarises per-user credit (one [`Credit`] per user, summed over the user's lists) with a
    /// two-sided interval at level `1 − alpha`.
    pub fn from_users(per_user: &[Credit], alpha: f64) -> Self {
        let prefs: Vec<f64> = per_user.iter().map(Credit::preference).collect();
        let m = Moments::of(&prefs);
        let mut prefer_treatment = 0;
        let mut prefer_control = 0;
        for c in per_user {
            match c.winner() {
                Some(Team::Treatment) => prefer_treatment += 1,
                Some(Team::Control) => prefer_control += 1,
                None => {}
            }
        }
        let users = per_user.len() as u64;
        let std_error = if m.n > 1.0 {
            (m.var / m.n).sqrt()
        } else {
            f64::INFINITY
        };
        let z = normal_quantile(1.0 - alpha / 2.0);
        let p_value = if std_error > 0.0 && std_error.is_finite() {
            two_sided_p(m.mean / std_error)
        } else {
            1.0
        };
        Self {
            users,
            prefer_treatment,
            prefer_control,
            ties: users - prefer_treatment - prefer_control,
            mean_preference: m.mean,
            std_error,
            interval: (m.mean - z * std_error, m.mean + z * std_error),
            p_value,
            sign_test_p: sign_test_p(prefer_treatment, prefer_control),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn splitmix_matches_its_reference_sequence() {
        // Reference: the first outputs for seed 0 of Vigna's splitmix64.c, e.g.
        // python3 -c "M=2**64-1
        // s=0
        // for _ in range(3):
        //  s=(s+0x9E3779B97F4A7C15)&M; z=s; z=((z^(z>>30))*0xBF58476D1CE4E5B9)&M; z=((z^(z>>27))*0x94D049BB133111EB)&M; print(z^(z>>31))"
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 16_294_208_416_658_607_535);
        assert_eq!(g.next_u64(), 7_960_286_522_194_355_700);
        assert_eq!(g.next_u64(), 487_617_019_471_545_679);
    }

    #[test]
    fn identical_rankings_interleave_to_the_same_list() {
        let a = ["x", "y", "z", "w"];
        let out = team_draft(&a, &a, 4, "r1");
        assert_eq!(out.items, a);
        // Each round gives one pick to each team.
        for pair in out.teams.chunks(2) {
            assert_ne!(pair[0], pair[1]);
        }
    }

    #[test]
    fn interleaving_is_deterministic_per_request_id() {
        let a: Vec<u32> = (0..20).collect();
        let b: Vec<u32> = (0..20).rev().collect();
        assert_eq!(
            team_draft(&a, &b, 10, "req-7"),
            team_draft(&a, &b, 10, "req-7")
        );
        // Different request ids flip different coins: the first pick's team varies.
        let firsts: HashSet<Team> = (0..50)
            .map(|i| team_draft(&a, &b, 10, &format!("req-{i}")).teams[0])
            .collect();
        assert_eq!(firsts.len(), 2);
    }

    #[test]
    fn worked_example() {
        // Control: 1 2 3 4; treatment: 2 5 1 6. Whatever the coins, the first round shows 1 and 2
        // (control's best and treatment's best, or if treatment picks 2 first, control still
        // picks 1), the second round 3 and 5.
        let out = team_draft(&[1, 2, 3, 4], &[2, 5, 1, 6], 4, "example");
        let mut first_round = out.items[..2].to_vec();
        first_round.sort();
        assert_eq!(first_round, vec![1, 2]);
        let mut second_round = out.items[2..].to_vec();
        second_round.sort();
        assert_eq!(second_round, vec![3, 5]);
        for (item, team) in out.items.iter().zip(&out.teams) {
            let expected = match item {
                1 | 3 => Team::Control,
                _ => Team::Treatment,
            };
            assert_eq!(*team, expected, "item {item}");
        }
    }

    #[test]
    fn teams_stay_balanced_while_both_rankings_have_items() {
        let a: Vec<u32> = (0..20).collect();
        let b: Vec<u32> = (100..120).collect();
        for len in 1..=40 {
            for r in 0..20 {
                let out = team_draft(&a, &b, len, &format!("{len}-{r}"));
                let nc = out.teams.iter().filter(|t| **t == Team::Control).count();
                let nt = out.teams.len() - nc;
                assert_eq!(out.items.len(), len);
                assert!(nc.abs_diff(nt) <= 1, "len {len}: {nc} vs {nt}");
            }
        }
    }

    #[test]
    fn short_lists_fill_from_the_other_team() {
        let out = team_draft(&[1], &[2, 3, 4], 10, "r");
        assert_eq!(out.items.len(), 4);
        let mut items = out.items.clone();
        items.sort();
        assert_eq!(items, vec![1, 2, 3, 4]);
        assert_eq!(team_draft::<u32>(&[], &[], 5, "r").items.len(), 0);
    }

    #[test]
    fn credit_counts_clicks_per_team() {
        let teams = [
            Team::Control,
            Team::Treatment,
            Team::Treatment,
            Team::Control,
        ];
        let c = credit(&teams, &[1, 2, 3, 9]);
        assert_eq!(
            c,
            Credit {
                control: 1,
                treatment: 2
            }
        );
        assert_eq!(c.winner(), Some(Team::Treatment));
        assert!((c.preference() - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!(Credit::default().winner(), None);
        assert_eq!(Credit::default().preference(), 0.0);
    }

    #[test]
    fn identical_rankers_have_no_preference_on_average() {
        // Both teams rank the same items; clicks depend only on position. Team-draft is unbiased:
        // the interval covers 0 and the sign test does not reject.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let ranking: Vec<u32> = (0..20).collect();
        let mut users = Vec::new();
        for u in 0..4_000 {
            let mut total = Credit::default();
            for s in 0..3 {
                let out = team_draft(&ranking, &ranking, 10, &format!("{u}-{s}"));
                let clicks: Vec<usize> = (0..out.items.len())
                    .filter(|&p| rng.random::<f64>() < 0.3 / (p as f64 + 1.0))
                    .collect();
                total.add(credit(&out.teams, &clicks));
            }
            users.push(total);
        }
        let s = PreferenceSummary::from_users(&users, 0.05);
        assert_eq!(s.users, 4_000);
        assert_eq!(s.users, s.prefer_control + s.prefer_treatment + s.ties);
        assert!(s.interval.0 < 0.0 && s.interval.1 > 0.0, "{s:?}");
        assert!(s.sign_test_p > 0.01, "{s:?}");
    }

    #[test]
    fn a_better_treatment_is_preferred_with_the_right_sign() {
        // Treatment puts the clicked-most items (low ids) first; control ranks them in reverse.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let good: Vec<u32> = (0..20).collect();
        let bad: Vec<u32> = (0..20).rev().collect();
        let mut users = Vec::new();
        for u in 0..500 {
            let out = team_draft(&bad, &good, 10, &format!("u{u}"));
            let clicks: Vec<usize> = out
                .items
                .iter()
                .enumerate()
                .filter(|(_, &item)| rng.random::<f64>() < 0.5 * (1.0 - item as f64 / 20.0))
                .map(|(p, _)| p)
                .collect();
            users.push(credit(&out.teams, &clicks));
        }
        let s = PreferenceSummary::from_users(&users, 0.05);
        assert!(s.mean_preference > 0.0 && s.interval.0 > 0.0, "{s:?}");
        assert!(s.prefer_treatment > s.prefer_control);
        assert!(s.sign_test_p < 1e-6 && s.p_value < 1e-6, "{s:?}");
        // Swapping the roles flips the sign.
        let swapped: Vec<Credit> = users
            .iter()
            .map(|c| Credit {
                control: c.treatment,
                treatment: c.control,
            })
            .collect();
        let t = PreferenceSummary::from_users(&swapped, 0.05);
        assert!((t.mean_preference + s.mean_preference).abs() < 1e-12);
        assert!(t.interval.1 < 0.0);
    }

    proptest! {
        #[test]
        fn interleaved_list_is_a_deduplicated_union_prefix(
            a in proptest::collection::vec(0u8..30, 0..25),
            b in proptest::collection::vec(0u8..30, 0..25),
            len in 0usize..40,
            id in "[a-z0-9]{1,8}",
        ) {
            let out = team_draft(&a, &b, len, &id);
            // While both rankings have unshown items the teams stay within one pick of each
            // other, so with enough distinct items on each side the sizes differ by at most one.
            let da: HashSet<u8> = a.iter().copied().collect();
            let db: HashSet<u8> = b.iter().copied().collect();
            if da.len() >= len && db.len() >= len && da.is_disjoint(&db) {
                let nc = out.teams.iter().filter(|t| **t == Team::Control).count();
                let nt = out.teams.len() - nc;
                prop_assert!(nc.abs_diff(nt) <= 1, "{nc} vs {nt}");
            }
            let distinct: HashSet<u8> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(out.items.len(), len.min(distinct.len()));
            prop_assert_eq!(out.items.len(), out.teams.len());
            let shown: HashSet<u8> = out.items.iter().copied().collect();
            prop_assert_eq!(shown.len(), out.items.len(), "no duplicates");
            for (item, team) in out.items.iter().zip(&out.teams) {
                let source = match team { Team::Control => &a, Team::Treatment => &b };
                prop_assert!(source.contains(item));
            }
            // Each team's picks keep the order of its own ranking.
            for (team, source) in [(Team::Control, &a), (Team::Treatment, &b)] {
                let picked: Vec<u8> = out.items.iter().zip(&out.teams)
                    .filter(|(_, t)| **t == team).map(|(i, _)| *i).collect();
                let positions: Vec<usize> = picked.iter()
                    .map(|i| source.iter().position(|x| x == i).unwrap()).collect();
                prop_assert!(positions.windows(2).all(|w| w[0] < w[1]));
            }
        }

        #[test]
        fn preference_is_bounded(c in 0u64..100, t in 0u64..100) {
            let p = Credit { control: c, treatment: t }.preference();
            prop_assert!((-1.0..=1.0).contains(&p));
        }
    }
}
