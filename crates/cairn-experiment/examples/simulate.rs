//! Seeded simulations that check the experiment statistics end to end; the figures of
//! docs/bench/experiments.md.
//!
//! ```text
//! cargo run --release -p cairn-experiment --example simulate -- [seed] [reps]
//! ```
//!
//! The user model (the same in every part):
//! * a user arrives on some day of the experiment, uniformly, and visits Poisson(λᵤ) times a day
//!   afterwards (at least once on the arrival day); each visit shows a list of 10 items;
//!   λᵤ = exp(N(ln 0.7, 0.8)), so activity is heavy-tailed;
//! * each shown item is clicked with the user's own probability pᵤ = logistic(N(logit 0.05, 0.6)),
//!   times (1 + lift) in a treatment; each click converts with probability 0.1;
//! * the pre-period (for CUPED) is the user's clicks over the 14 days before the experiment, drawn
//!   from the same λᵤ and pᵤ without lift.
//!
//! Assignment uses the crate's real salted hash (a fresh salt per repetition).
//!
//! Parts: (a) A/A with daily looks; (b) SRM with an injected 45/55 split (and a 2-point skew);
//! (c) users needed for +5% CTR at 80% power, checked by simulation; (d) team-draft interleaving
//! against A/B for two rankers of slightly different quality; (e) CUPED's variance reduction.

use std::time::Instant;

use cairn_experiment::analysis::ratio_with_variance;
use cairn_experiment::power::{users_one_sample, users_per_arm, users_sign_test};
use cairn_experiment::stats::{normal_quantile, Moments};
use cairn_experiment::{
    analyze, credit, team_draft, AnalysisConfig, Credit, Decision, ExperimentSpec, Metric,
    PreferenceSummary, UserOutcome, VariantSpec,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DAYS: u32 = 14;
const LIST: u32 = 10;
const BASE_CTR: f64 = 0.05;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Knuth's Poisson sampler (λ is small here).
fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u32 {
    let l = (-lambda).exp();
    let mut k = 0;
    let mut p = 1.0;
    loop {
        p *= rng.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

fn binomial(rng: &mut ChaCha8Rng, n: u32, p: f64) -> u32 {
    (0..n).filter(|_| rng.random::<f64>() < p).count() as u32
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

struct SimUser {
    variant: usize,
    lambda: f64,
    p: f64,
    arrival: u32,
    out: UserOutcome,
}

/// What one experiment run is.
struct Run {
    users: usize,
    /// True effect on CTR per variant (0 for the control).
    lifts: Vec<f64>,
    /// Probability that a user of a variant is lost by a (simulated) logging bug: the SRM source.
    drop: Vec<f64>,
    /// Analyse at the end of every day (otherwise only at the end).
    daily_looks: bool,
    /// Draw the pre-period (only CUPED needs it).
    pre_period: bool,
}

/// Simulates one experiment, calling `look(day, report)` at each look.
fn run_experiment(
    seed: u64,
    run: &Run,
    cfg: &AnalysisConfig,
    mut look: impl FnMut(u32, &cairn_experiment::Report, &[UserOutcome]),
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let spec = ExperimentSpec {
        key: "sim".into(),
        salt: format!("sim-{seed}"),
        variants: cfg
            .variants
            .iter()
            .zip(&cfg.weights)
            .map(|(name, &weight)| VariantSpec {
                name: name.clone(),
                weight,
            })
            .collect(),
        namespace: None,
    };
    let mut users: Vec<SimUser> = Vec::with_capacity(run.users);
    for i in 0..run.users {
        let variant = spec
            .variant_for(&format!("user-{i}"))
            .expect("no namespace: everyone is in");
        let lambda = (0.7f64.ln() + 0.8 * normal(&mut rng)).exp();
        let p = logistic((BASE_CTR / (1.0 - BASE_CTR)).ln() + 0.6 * normal(&mut rng));
        let arrival = rng.random_range(0..DAYS);
        if rng.random::<f64>() < run.drop[variant] {
            continue;
        }
        let mut pre = 0;
        for _ in 0..if run.pre_period { DAYS } else { 0 } {
            let visits = poisson(&mut rng, lambda);
            pre += binomial(&mut rng, LIST * visits, p);
        }
        users.push(SimUser {
            variant,
            lambda,
            p,
            arrival,
            out: UserOutcome {
                variant,
                impressions: 0.0,
                clicks: 0.0,
                conversions: 0.0,
                pre_period: pre as f64,
            },
        });
    }
    let mut seen: Vec<UserOutcome> = Vec::with_capacity(users.len());
    for day in 0..DAYS {
        seen.clear();
        for u in users.iter_mut().filter(|u| u.arrival <= day) {
            let mut visits = poisson(&mut rng, u.lambda);
            if u.arrival == day {
                visits += 1;
            }
            let p = (u.p * (1.0 + run.lifts[u.variant])).min(1.0);
            let shown = LIST * visits;
            let clicks = binomial(&mut rng, shown, p);
            u.out.impressions += shown as f64;
            u.out.clicks += clicks as f64;
            u.out.conversions += binomial(&mut rng, clicks, 0.1) as f64;
            seen.push(u.out);
        }
        if run.daily_looks || day == DAYS - 1 {
            let report = analyze(&seen, cfg).expect("valid simulated data");
            look(day, &report, &seen);
        }
    }
}

fn ctr_of(report: &cairn_experiment::Report) -> Option<&cairn_experiment::Comparison> {
    report.comparisons.iter().find(|c| c.metric == Metric::Ctr)
}

fn part_a_and_e(seed: u64, reps: u64) {
    let users = 4_200;
    println!("## (a) A/A, {reps} repetitions, {users} users over {DAYS} days, a look every day");
    let cfg = AnalysisConfig::new(&["control", "treatment"], &[1, 1], users as f64);
    let run = Run {
        users,
        lifts: vec![0.0, 0.0],
        drop: vec![0.0, 0.0],
        daily_looks: true,
        pre_period: true,
    };
    let (mut seq_any, mut naive_any, mut naive_end, mut decided, mut srm_any, mut srm_end) =
        (0, 0, 0, 0, 0, 0);
    let mut srm_seq_any = 0;
    let mut raw_diffs = Vec::new();
    let mut cuped_diffs = Vec::new();
    let mut reported_reduction = Vec::new();
    let mut correlation = Vec::new();
    let mut raw_cfg = cfg.clone();
    raw_cfg.cuped = false;
    for r in 0..reps {
        let (mut s, mut n, mut d, mut srm) = (false, false, false, false);
        let mut srm_seq = false;
        run_experiment(seed * 1_000_003 + r, &run, &cfg, |day, report, seen| {
            let c = ctr_of(report).expect("both arms have users");
            s |= c.always_valid_p < cfg.alpha;
            n |= c.p_value < cfg.alpha;
            d |= report.decision != Decision::KeepRunning;
            srm |= report.srm.flagged;
            srm_seq |= report.srm.always_valid_p < cfg.srm_threshold;
            if day == DAYS - 1 {
                naive_end += (c.p_value < cfg.alpha) as u32;
                srm_end += report.srm.flagged as u32;
                let clicks = report
                    .comparisons
                    .iter()
                    .find(|c| c.metric == Metric::ClicksPerUser)
                    .expect("clicks per user compared");
                let info = clicks.cuped.expect("CUPED on");
                cuped_diffs.push(clicks.difference);
                reported_reduction.push(info.variance_reduction);
                let raw = analyze(seen, &raw_cfg).expect("valid");
                raw_diffs.push(
                    raw.comparisons
                        .iter()
                        .find(|c| c.metric == Metric::ClicksPerUser)
                        .expect("compared")
                        .difference,
                );
                let pre: Vec<f64> = seen.iter().map(|u| u.pre_period).collect();
                let post: Vec<f64> = seen.iter().map(|u| u.clicks).collect();
                let cov = cairn_experiment::stats::covariance(&pre, &post);
                correlation.push(cov / (Moments::of(&pre).var * Moments::of(&post).var).sqrt());
            }
        });
        seq_any += s as u32;
        naive_any += n as u32;
        decided += d as u32;
        srm_any += srm as u32;
        srm_seq_any += srm_seq as u32;
    }
    let pct = |k: u32| 100.0 * k as f64 / reps as f64;
    let se = |k: u32| {
        let p = k as f64 / reps as f64;
        100.0 * (p * (1.0 - p) / reps as f64).sqrt()
    };
    println!(
        "always-valid CTR interval, looked at daily: false positives {seq_any}/{reps} = {:.1}% (± {:.1})",
        pct(seq_any),
        se(seq_any)
    );
    println!(
        "naive fixed-horizon CTR test, looked at daily: false positives {naive_any}/{reps} = {:.1}% (± {:.1})",
        pct(naive_any),
        se(naive_any)
    );
    println!(
        "naive fixed-horizon CTR test, one look at the end: {naive_end}/{reps} = {:.1}%",
        pct(naive_end)
    );
    println!(
        "decision other than keep-running at any look (3 metrics, Holm, SRM): {decided}/{reps} = {:.1}%",
        pct(decided)
    );
    println!(
        "SRM (chi2, p < 0.001) flagged at any of the {DAYS} looks: {srm_any}/{reps}; at the end: {srm_end}/{reps}; \
         always-valid SRM p < 0.001 at any look: {srm_seq_any}/{reps}"
    );

    println!();
    println!(
        "## (e) CUPED on clicks per user (pre-period: the user's clicks in the 14 days before)"
    );
    let raw_var = Moments::of(&raw_diffs).var;
    let cuped_var = Moments::of(&cuped_diffs).var;
    let rho = correlation.iter().sum::<f64>() / correlation.len() as f64;
    println!(
        "variance of the difference over {reps} A/A runs: raw {raw_var:.5}, CUPED {cuped_var:.5}: reduction {:.1}%",
        100.0 * (1.0 - cuped_var / raw_var)
    );
    println!(
        "mean reduction the analysis reports: {:.1}%; pre/post correlation rho {rho:.3}, so 1 - rho^2 predicts {:.1}%",
        100.0 * reported_reduction.iter().sum::<f64>() / reported_reduction.len() as f64,
        100.0 * rho * rho
    );
    println!(
        "users needed at equal power shrink by the same factor: {:.2}x fewer with CUPED",
        raw_var / cuped_var
    );
}

fn part_b(seed: u64, reps: u64) {
    println!();
    println!("## (b) sample-ratio mismatch, configured 50/50, {reps} repetitions each");
    for (label, keep_control, users) in [
        (
            "45/55 (control users lost by a logging bug)",
            45.0 / 55.0,
            4_200,
        ),
        ("49/51 (a 2-point skew)", 49.0 / 51.0, 4_200),
        ("49/51 (a 2-point skew)", 49.0 / 51.0, 50_000),
        ("50/50 (no skew)", 1.0, 50_000),
    ] {
        let mut flagged = 0;
        let mut flagged_seq = 0;
        let mut min_p = Vec::new();
        for r in 0..reps {
            // The SRM check needs only the counts: assign with the real hash, drop, count.
            let spec = ExperimentSpec {
                key: "srm".into(),
                salt: format!("srm-{seed}-{r}"),
                variants: vec![
                    VariantSpec {
                        name: "control".into(),
                        weight: 1,
                    },
                    VariantSpec {
                        name: "treatment".into(),
                        weight: 1,
                    },
                ],
                namespace: None,
            };
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (r << 20) ^ users as u64);
            let mut counts = [0u64; 2];
            for i in 0..users {
                let v = spec.variant_for(&format!("user-{i}")).expect("everyone");
                if v == 1 || rng.random::<f64>() < keep_control {
                    counts[v] += 1;
                }
            }
            let s = cairn_experiment::srm_check(&counts, &[1, 1], 0.001);
            flagged += s.flagged as u32;
            flagged_seq += (s.always_valid_p < 0.001) as u32;
            min_p.push(s.p_value);
        }
        min_p.sort_by(f64::total_cmp);
        println!(
            "{label}, {users} users assigned: chi2 flagged {flagged}/{reps} ({:.1}%), median p {:.2e}; \
             always-valid flagged {flagged_seq}/{reps} ({:.1}%)",
            100.0 * flagged as f64 / reps as f64,
            min_p[min_p.len() / 2],
            100.0 * flagged_seq as f64 / reps as f64
        );
    }
}

fn part_c(seed: u64, reps: u64) {
    println!();
    println!("## (c) power: +5% relative CTR lift, 80% power, alpha 0.05 two-sided");
    // Pilot: a large A/A gives the per-user variance of each arm's CTR (delta method).
    let pilot_users = 200_000;
    let cfg = AnalysisConfig::new(&["control", "treatment"], &[1, 1], pilot_users as f64);
    let pilot = Run {
        users: pilot_users,
        lifts: vec![0.0, 0.0],
        drop: vec![0.0, 0.0],
        daily_looks: false,
        pre_period: false,
    };
    let mut v1 = 0.0;
    let mut ctr = 0.0;
    run_experiment(seed ^ 0xC0FFEE, &pilot, &cfg, |_, _, seen| {
        for arm in 0..2 {
            let pairs: Vec<(f64, f64)> = seen
                .iter()
                .filter(|u| u.variant == arm)
                .map(|u| (u.impressions, u.clicks))
                .collect();
            let (r, var) = ratio_with_variance(&pairs).expect("pilot has data");
            v1 += var * pairs.len() as f64 / 2.0;
            ctr += r / 2.0;
        }
    });
    let delta = 0.05 * ctr;
    let sd = v1.sqrt();
    let per_arm = users_per_arm(sd, sd, delta, 0.05, 0.8);
    println!(
        "pilot ({pilot_users} users, A/A): CTR {ctr:.4}, per-user variance factor of CTR {v1:.5}; \
         +5% is {delta:.5} absolute"
    );
    println!(
        "users needed (normal approximation, delta-method variance): {per_arm} per arm, {} in total",
        2.0 * per_arm
    );
    // Check by simulation at that size: fixed horizon (one look) and always-valid with daily looks.
    let n = (2.0 * per_arm) as usize;
    let run = Run {
        users: n,
        lifts: vec![0.0, 0.05],
        drop: vec![0.0, 0.0],
        daily_looks: true,
        pre_period: false,
    };
    let mut cfg = AnalysisConfig::new(&["control", "treatment"], &[1, 1], n as f64);
    cfg.metrics = vec![Metric::Ctr];
    let (mut fixed, mut seq_end, mut seq_any) = (0, 0, 0);
    for r in 0..reps {
        let mut any = false;
        run_experiment(seed * 7_919 + r, &run, &cfg, |day, report, _| {
            let c = ctr_of(report).expect("compared");
            any |= c.always_valid_p < 0.05 && c.difference > 0.0;
            if day == DAYS - 1 {
                fixed += (c.p_value < 0.05 && c.difference > 0.0) as u32;
                seq_end += (c.always_valid_p < 0.05 && c.difference > 0.0) as u32;
            }
        });
        seq_any += any as u32;
    }
    let pct = |k: u32| 100.0 * k as f64 / reps as f64;
    println!(
        "simulated at {n} users, {reps} runs: fixed-horizon power {:.1}%; always-valid: {:.1}% at the end, \
         {:.1}% detected at some daily look",
        pct(fixed),
        pct(seq_end),
        pct(seq_any)
    );
    // Width factor of the always-valid interval at the planned sample: users needed to reach 80%
    // power at the end with it instead.
    let seq = cairn_experiment::SequentialConfig {
        alpha: 0.05,
        planned_n: n as f64,
    };
    let factor = seq.half_width(1.0, n as f64) / normal_quantile(0.975);
    println!(
        "the always-valid interval is {factor:.2}x the fixed one at the planned sample, the price of looking every day"
    );
    // Users for 80% power at the end with the always-valid test (its boundary tuned to that size,
    // where it is a constant multiple of the fixed one): n · ((c·z₀.₉₇₅ + z₀.₈) / (z₀.₉₇₅ + z₀.₈))².
    let (za, zb) = (normal_quantile(0.975), normal_quantile(0.8));
    let seq_n = (n as f64 * ((factor * za + zb) / (za + zb)).powi(2)).ceil() as usize;
    let run = Run {
        users: seq_n,
        ..run
    };
    let mut cfg_seq = cfg.clone();
    cfg_seq.planned_users = seq_n as f64;
    let (mut end_hits, mut any_hits) = (0, 0);
    for r in 0..reps {
        let mut any = false;
        run_experiment(seed * 104_729 + r, &run, &cfg_seq, |day, report, _| {
            let c = ctr_of(report).expect("compared");
            any |= c.always_valid_p < 0.05 && c.difference > 0.0;
            if day == DAYS - 1 {
                end_hits += (c.always_valid_p < 0.05 && c.difference > 0.0) as u32;
            }
        });
        any_hits += any as u32;
    }
    println!(
        "users needed with the always-valid test: {seq_n}; simulated, {reps} runs: power {:.1}% at the end, \
         {:.1}% detected at some daily look",
        pct(end_hits),
        pct(any_hits)
    );
}

/// One session's ranking problem: 20 candidates with the user's relevance.
struct Session {
    relevance: Vec<f64>,
}

fn ranking(rng: &mut ChaCha8Rng, s: &Session, noise: f64) -> Vec<u32> {
    let mut scored: Vec<(f64, u32)> = s
        .relevance
        .iter()
        .enumerate()
        .map(|(i, r)| (r + noise * normal(rng), i as u32))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Click probability of an item of relevance `r` shown at 0-based position `k` to a user of
/// click propensity `c`: position bias 1/(k+1) times the item's attractiveness.
fn click_prob(c: f64, k: usize, r: f64) -> f64 {
    (c / (k as f64 + 1.0) * logistic(1.5 * r - 1.5)).min(1.0)
}

struct RankUser {
    propensity: f64,
    sessions: u32,
}

/// A user of the ranking model: click propensity lognormal with spread `sigma` and mean 0.775
/// whatever `sigma` (μ = ln 0.775 − σ²/2), and 1 + Poisson(2) sessions.
fn rank_user(rng: &mut ChaCha8Rng, sigma: f64) -> RankUser {
    RankUser {
        propensity: (0.775f64.ln() - sigma * sigma / 2.0 + sigma * normal(rng)).exp(),
        sessions: 1 + poisson(rng, 2.0),
    }
}

fn new_session(rng: &mut ChaCha8Rng) -> Session {
    Session {
        relevance: (0..20).map(|_| normal(rng)).collect(),
    }
}

const NOISE_CONTROL: f64 = 1.0;
const NOISE_TREATMENT: f64 = 0.9;

/// A/B: each user sees one ranker. Returns per-arm (impressions, clicks) per user.
fn ab_users(rng: &mut ChaCha8Rng, n: usize, sigma: f64) -> [Vec<(f64, f64)>; 2] {
    let mut arms = [Vec::with_capacity(n / 2), Vec::with_capacity(n / 2)];
    for _ in 0..n {
        let u = rank_user(rng, sigma);
        let arm = rng.random_range(0..2usize);
        let noise = if arm == 0 {
            NOISE_CONTROL
        } else {
            NOISE_TREATMENT
        };
        let (mut imps, mut clicks) = (0.0, 0.0);
        for _ in 0..u.sessions {
            let s = new_session(rng);
            let list = ranking(rng, &s, noise);
            for (k, &item) in list.iter().take(LIST as usize).enumerate() {
                if rng.random::<f64>() < click_prob(u.propensity, k, s.relevance[item as usize]) {
                    clicks += 1.0;
                }
            }
            imps += LIST as f64;
        }
        arms[arm].push((imps, clicks));
    }
    arms
}

/// Interleaving: every user sees team-draft lists of both rankers.
fn interleaved_users(rng: &mut ChaCha8Rng, n: usize, tag: u64, sigma: f64) -> Vec<Credit> {
    (0..n)
        .map(|i| {
            let u = rank_user(rng, sigma);
            let mut total = Credit::default();
            for s_idx in 0..u.sessions {
                let s = new_session(rng);
                let control = ranking(rng, &s, NOISE_CONTROL);
                let treatment = ranking(rng, &s, NOISE_TREATMENT);
                let out = team_draft(
                    &control,
                    &treatment,
                    LIST as usize,
                    &format!("{tag}-{i}-{s_idx}"),
                );
                let clicked: Vec<usize> = out
                    .items
                    .iter()
                    .enumerate()
                    .filter(|(k, &item)| {
                        rng.random::<f64>()
                            < click_prob(u.propensity, *k, s.relevance[item as usize])
                    })
                    .map(|(k, _)| k)
                    .collect();
                total.add(credit(&out.teams, &clicked));
            }
            total
        })
        .collect()
}

/// Users needed by A/B and by interleaving for one user heterogeneity `sigma`, from pilots.
struct Needed {
    ctr: f64,
    delta: f64,
    ab_total: f64,
    il_total: f64,
    sign_total: f64,
    pref: PreferenceSummary,
    sd_pref: f64,
}

fn users_needed(rng: &mut ChaCha8Rng, sigma: f64, tag: u64) -> Needed {
    // The A/B effect, exactly: expected CTR of both rankers on the same 200k sessions.
    let paired = 200_000;
    let mut diff = Vec::with_capacity(paired);
    let mut base = 0.0;
    for _ in 0..paired {
        let u = rank_user(rng, sigma);
        let s = new_session(rng);
        let expected = |list: &[u32]| -> f64 {
            list.iter()
                .take(LIST as usize)
                .enumerate()
                .map(|(k, &i)| click_prob(u.propensity, k, s.relevance[i as usize]))
                .sum::<f64>()
                / LIST as f64
        };
        let a = expected(&ranking(rng, &s, NOISE_CONTROL));
        let b = expected(&ranking(rng, &s, NOISE_TREATMENT));
        base += a / paired as f64;
        diff.push(b - a);
    }
    let delta = Moments::of(&diff).mean;
    // A/B pilot: per-user variance of each arm's CTR (delta method).
    let arms = ab_users(rng, 100_000, sigma);
    let mut sds = [0.0; 2];
    for (arm, pairs) in arms.iter().enumerate() {
        let (_, var) = ratio_with_variance(pairs).expect("pilot");
        sds[arm] = (var * pairs.len() as f64).sqrt();
    }
    let ab_total = 2.0 * users_per_arm(sds[0], sds[1], delta, 0.05, 0.8);
    // Interleaving pilot: per-user preference mean and spread.
    let credits = interleaved_users(rng, 200_000, tag, sigma);
    let pref = PreferenceSummary::from_users(&credits, 0.05);
    let sd_pref = pref.std_error * (pref.users as f64).sqrt();
    let il_total = users_one_sample(sd_pref, pref.mean_preference, 0.05, 0.8);
    let decided = (pref.prefer_treatment + pref.prefer_control) as f64;
    let sign_total = users_sign_test(
        pref.prefer_treatment as f64 / decided,
        pref.ties as f64 / pref.users as f64,
        0.05,
        0.8,
    );
    Needed {
        ctr: base,
        delta,
        ab_total,
        il_total,
        sign_total,
        pref,
        sd_pref,
    }
}

fn part_d(seed: u64, reps: u64) {
    println!();
    println!(
        "## (d) interleaving vs A/B: two rankers, score noise {NOISE_CONTROL} (control) vs {NOISE_TREATMENT} (treatment)"
    );
    println!(
        "users needed at 80% power, alpha 0.05 (A/B: CTR, delta method; interleaving: mean per-user preference, z test)"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xD);
    let mut main = None;
    for sigma in [0.5, 0.7, 1.0, 1.5] {
        let n = users_needed(&mut rng, sigma, seed + (sigma * 10.0) as u64);
        println!(
            "propensity spread sigma {sigma}: CTR {:.4}, true difference {:+.5} ({:+.2}% relative); \
             A/B {} users, interleaving {} users (preference {:.4} [{:.4}, {:.4}], per-user sd {:.3}, \
             {} prefer treatment / {} control / {} ties): {:.1}x fewer; interleaving with the sign test \
             {} users: {:.1}x fewer",
            n.ctr,
            n.delta,
            100.0 * n.delta / n.ctr,
            n.ab_total,
            n.il_total,
            n.pref.mean_preference,
            n.pref.interval.0,
            n.pref.interval.1,
            n.sd_pref,
            n.pref.prefer_treatment,
            n.pref.prefer_control,
            n.pref.ties,
            n.ab_total / n.il_total,
            n.sign_total,
            n.ab_total / n.sign_total
        );
        if sigma == 0.7 {
            main = Some(n);
        }
    }
    // Check both sizes of the sigma 0.7 row by simulation.
    let n = main.expect("the 0.7 row ran");
    let sigma = 0.7;
    let il_n = n.il_total as usize;
    let mut il_hits = 0;
    let mut sign_hits = 0;
    for r in 0..reps {
        let c = interleaved_users(&mut rng, il_n, seed + 1_000 + r, sigma);
        let s = PreferenceSummary::from_users(&c, 0.05);
        il_hits += (s.p_value < 0.05 && s.mean_preference > 0.0) as u32;
        sign_hits += (s.sign_test_p < 0.05 && s.prefer_treatment > s.prefer_control) as u32;
    }
    println!(
        "sigma 0.7, simulated interleaving at {il_n} users, {reps} runs: power {:.1}% (z test), {:.1}% (sign test)",
        100.0 * il_hits as f64 / reps as f64,
        100.0 * sign_hits as f64 / reps as f64
    );
    let ab_reps = (reps / 5).max(20);
    let ab_n = n.ab_total as usize;
    let z = normal_quantile(0.975);
    let mut ab_hits = 0;
    for _ in 0..ab_reps {
        let arms = ab_users(&mut rng, ab_n, sigma);
        let (rc, vc) = ratio_with_variance(&arms[0]).expect("data");
        let (rt, vt) = ratio_with_variance(&arms[1]).expect("data");
        ab_hits += ((rt - rc) / (vc + vt).sqrt() > z) as u32;
    }
    println!(
        "sigma 0.7, simulated A/B at {ab_n} users, {ab_reps} runs: power {:.1}%",
        100.0 * ab_hits as f64 / ab_reps as f64
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2026);
    let reps: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000);
    println!("# cairn-experiment simulation, seed {seed}, {reps} repetitions");
    println!();
    let t = Instant::now();
    part_a_and_e(seed, reps);
    part_b(seed, reps);
    part_c(seed, (reps / 2).max(50));
    part_d(seed, (reps / 2).max(50));
    println!();
    println!("(wall time {:.0} s)", t.elapsed().as_secs_f64());
}
