//! `cairn-bench experiment-sim`: online experiments simulated against a running server, through
//! its HTTP API only (`cairn serve`; scripts/experiment-sim.sh). Simulated users with planted
//! tastes ask for lists (`GET /v1/users/{id}/recommendations`), the simulator's position-biased
//! click model decides what they click ([`model::Shop`]), and it posts what was shown
//! (`POST /v1/impressions`) and the clicks (`POST /v1/events` with `recommendation_id` and
//! `position`). After each simulated day it reads every running experiment's
//! `GET /v1/experiments/{id}/results` (a "look") and checks that the server's counts equal what it
//! sent. Cases (`--cases`):
//!
//! * `aa`: `--aa-experiments` A/A experiments, `--aa-parallel` at a time (mutually exclusive in one
//!   namespace, each with its own salt), looked at every day: false positives of the CTR
//!   comparison's always-valid interval at any look, SRM flags, decisions;
//! * `skew`: `--skew-runs` A/A experiments side by side where a simulated logging bug loses
//!   `--skew-drop` of the second variant's users (nothing of theirs reaches the server): how many
//!   does the SRM check flag?
//! * `lift`: `--lift-runs` experiments whose second variant's lists get `--lift` more click
//!   probability in the click model, at the users the A/A pilot says 80% power needs: power
//!   measured;
//! * `ranker`: two placements that really rank differently (`--ranker-control`,
//!   `--ranker-treatment`) as an A/B test and as a team-draft interleaving experiment: pilots give
//!   the users each needs for 80% power, then `--ranker-runs` experiments of each at that size
//!   measure the power; the ratio of the two sizes is reported.
//!
//! Every experiment's row and every case's summary is one JSON line (`--out`, appended).

pub mod model;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::{json, Value};

use crate::drift_sim::Http;
use model::{rate, rng_for, uniform, users_for_power, Rate, Shop, Tally};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Case {
    Aa,
    Skew,
    Lift,
    Ranker,
}

#[derive(Args, Debug, Clone)]
pub struct ExperimentSimArgs {
    /// The server, e.g. http://127.0.0.1:18500 (start it with `train.interval_secs = 0`).
    #[arg(long)]
    pub url: String,
    /// An API key with admin scope, when the server has keys.
    #[arg(long, env = "CAIRN_SIM_KEY")]
    pub key: Option<String>,
    /// Cases to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "aa,skew,lift,ranker"
    )]
    pub cases: Vec<Case>,
    /// Skip posting the shop and training (the server has it from an earlier run, same seed).
    #[arg(long)]
    pub no_setup: bool,
    #[arg(long, default_value_t = 400)]
    pub items: usize,
    #[arg(long, default_value_t = 8)]
    pub categories: usize,
    /// Users with a planted taste and a history (the experiments draw theirs from them).
    #[arg(long, default_value_t = 20_000)]
    pub users: usize,
    /// Views per user posted before training.
    #[arg(long, default_value_t = 6)]
    pub history: usize,
    /// Click model: relevance = min(1, base · propensity · affinity · quality).
    #[arg(long, default_value_t = 1.0)]
    pub base: f64,
    /// Spread (σ of the log) of the users' propensity to click.
    #[arg(long, default_value_t = 0.5)]
    pub spread: f64,
    /// Examination of 1-based position p: p^−eta.
    #[arg(long, default_value_t = 0.7)]
    pub eta: f64,
    /// Items per list.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// The placement the experiments run on.
    #[arg(long, default_value = "home")]
    pub placement: String,
    /// The namespace every simulated experiment shares (so they can run side by side).
    #[arg(long, default_value = "sim")]
    pub namespace: String,
    /// Simulated days per experiment (one look after each).
    #[arg(long, default_value_t = 5)]
    pub days: usize,
    /// A user arrives on a uniform day and comes back on each later day with this probability.
    #[arg(long, default_value_t = 0.5)]
    pub revisit: f64,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 200)]
    pub aa_experiments: usize,
    #[arg(long, default_value_t = 25)]
    pub aa_parallel: usize,
    /// Users per A/A experiment.
    #[arg(long, default_value_t = 200)]
    pub aa_users: usize,
    #[arg(long, default_value_t = 40_000)]
    pub skew_users: usize,
    /// Share of the second variant's users whose impressions and clicks are lost.
    #[arg(long, default_value_t = 0.02)]
    pub skew_drop: f64,
    /// Skewed experiments, run side by side on fresh users (`--skew-users` each).
    #[arg(long, default_value_t = 1)]
    pub skew_runs: usize,
    /// Relative lift of the second variant's click probability.
    #[arg(long, default_value_t = 0.05)]
    pub lift: f64,
    #[arg(long, default_value_t = 40)]
    pub lift_runs: usize,
    /// Users per lift experiment; by default the always-valid sample size from this run's A/A
    /// experiments (the `aa` case must then run first).
    #[arg(long)]
    pub lift_users: Option<usize>,
    #[arg(long, default_value = "popular")]
    pub ranker_control: String,
    #[arg(long, default_value = "home")]
    pub ranker_treatment: String,
    /// Users of each pilot (A/B and interleaving) of the ranker case.
    #[arg(long, default_value_t = 4000)]
    pub ranker_pilot_users: usize,
    #[arg(long, default_value_t = 40)]
    pub ranker_runs: usize,
    /// The A/B power check of the ranker case is skipped when its size exceeds this.
    #[arg(long, default_value_t = 20_000)]
    pub ranker_max_users: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// JSON lines (each experiment, each case's summary) appended here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// One experiment to run: its definition and how the click model treats its arms.
#[derive(Debug, Clone)]
struct Spec {
    id: String,
    case: &'static str,
    interleaving: bool,
    variants: Vec<Value>,
    traffic: f64,
    planned_users: usize,
    /// Click-probability multiplier per arm (A/B only).
    boost: [f64; 2],
    /// Share of each arm's users whose traffic is lost before the server (A/B only).
    drop: [f64; 2],
}

/// A simulated user: the id the server knows and the index that fixes the taste.
#[derive(Debug, Clone)]
struct SimUser {
    id: String,
    index: u64,
}

/// One look at an experiment's results.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Look {
    pub day: usize,
    pub users: u64,
    pub users_per_variant: Vec<u64>,
    pub ctr: Vec<f64>,
    /// The CTR comparison of the second variant with the first (A/B).
    pub ctr_difference: Option<f64>,
    pub std_error: Option<f64>,
    pub p_value: Option<f64>,
    pub always_valid_lo: Option<f64>,
    pub always_valid_hi: Option<f64>,
    pub always_valid_p: Option<f64>,
    pub srm_p: Option<f64>,
    pub srm_flagged: bool,
    pub decision: Option<String>,
    /// Interleaving: mean per-user preference for the treatment, its standard error, z and sign
    /// test p-values.
    pub preference: Option<f64>,
    pub preference_se: Option<f64>,
    pub preference_p: Option<f64>,
    pub sign_test_p: Option<f64>,
    /// Interleaving: users preferring the treatment, the control, neither.
    pub prefer: Option<[u64; 3]>,
    /// The server's counts equal what the simulator sent.
    pub consistent: bool,
}

impl Look {
    fn parse(day: usize, r: &Value, tally: &Tally, interleaving: bool) -> Look {
        let variants = r["variants"].as_array().cloned().unwrap_or_default();
        let num = |v: &Value, f: &str| v[f].as_u64().unwrap_or(0);
        let mut look = Look {
            day,
            users: r["users"].as_u64().unwrap_or(0),
            users_per_variant: variants.iter().map(|v| num(v, "users")).collect(),
            ctr: variants
                .iter()
                .map(|v| v["ctr"].as_f64().unwrap_or(0.0))
                .collect(),
            ..Look::default()
        };
        look.consistent = if interleaving {
            let t = tally.total();
            let sum = |f: &str| variants.iter().map(|v| num(v, f)).sum::<u64>();
            look.users == t.users
                && sum("impressions") == t.impressions
                && sum("clicks") == t.clicks
        } else {
            variants.len() == tally.arms.len()
                && variants.iter().zip(&tally.arms).all(|(v, a)| {
                    num(v, "users") == a.users
                        && num(v, "impressions") == a.impressions
                        && num(v, "clicks") == a.clicks
                })
        };
        let analysis = &r["analysis"];
        if let Some(c) = analysis["comparisons"].as_array().and_then(|cs| {
            cs.iter()
                .find(|c| c["metric"] == "ctr" && c["variant"].as_u64() == Some(1))
        }) {
            look.ctr_difference = c["difference"].as_f64();
            look.std_error = c["std_error"].as_f64();
            look.p_value = c["p_value"].as_f64();
            look.always_valid_lo = c["always_valid"]["lo"].as_f64();
            look.always_valid_hi = c["always_valid"]["hi"].as_f64();
            look.always_valid_p = c["always_valid_p"].as_f64();
        }
        look.srm_p = analysis["srm"]["p_value"].as_f64();
        look.srm_flagged = analysis["srm"]["flagged"] == true;
        look.decision = analysis["decision"]["action"].as_str().map(str::to_string);
        let p = &r["preference"];
        look.preference = p["mean_preference"].as_f64();
        look.preference_se = p["std_error"].as_f64();
        look.preference_p = p["p_value"].as_f64();
        look.sign_test_p = p["sign_test_p"].as_f64();
        if let (Some(t), Some(c), Some(n)) = (
            p["prefer_treatment"].as_u64(),
            p["prefer_control"].as_u64(),
            p["ties"].as_u64(),
        ) {
            look.prefer = Some([t, c, n]);
        }
        look
    }

    /// The always-valid interval of the CTR difference excludes 0.
    fn always_valid_flag(&self) -> bool {
        match (self.always_valid_lo, self.always_valid_hi) {
            (Some(lo), Some(hi)) => lo > 0.0 || hi < 0.0,
            _ => false,
        }
    }

    fn fixed_flag(&self) -> bool {
        self.p_value.is_some_and(|p| p < 0.05)
    }

    /// The second variant is better on CTR, at the fixed-horizon level.
    fn fixed_win(&self) -> bool {
        self.fixed_flag() && self.ctr_difference.is_some_and(|d| d > 0.0)
    }

    fn always_valid_win(&self) -> bool {
        self.always_valid_lo.is_some_and(|lo| lo > 0.0)
    }

    fn sign_test_win(&self) -> bool {
        self.sign_test_p.is_some_and(|p| p < 0.05) && self.prefer.is_some_and(|[t, c, _]| t > c)
    }

    fn preference_win(&self) -> bool {
        self.preference_p.is_some_and(|p| p < 0.05) && self.preference.is_some_and(|m| m > 0.0)
    }
}

/// What one experiment did.
#[derive(Debug, Clone, Serialize)]
struct Run {
    case: &'static str,
    id: String,
    kind: &'static str,
    planned_users: usize,
    looks: Vec<Look>,
    /// What the simulator sent (per arm; interleaving: one arm).
    sent: Vec<model::ArmTally>,
    /// Users whose traffic the simulated logging bug dropped.
    dropped_users: usize,
}

impl Run {
    fn last(&self) -> Look {
        self.looks.last().cloned().unwrap_or_default()
    }
    fn first_day(&self, f: impl Fn(&Look) -> bool) -> Option<usize> {
        self.looks.iter().find(|l| f(l)).map(|l| l.day)
    }
    fn inconsistent_looks(&self) -> usize {
        self.looks.iter().filter(|l| !l.consistent).count()
    }
}

/// What one visit produced.
#[derive(Default)]
struct DayOutput {
    tallies: HashMap<usize, Tally>,
    events: Vec<Value>,
    dropped: HashMap<usize, std::collections::BTreeSet<String>>,
    lists: usize,
}

struct Sim<'a> {
    args: &'a ExperimentSimArgs,
    http: Http,
    shop: Shop,
    out: Option<Mutex<std::fs::File>>,
    /// Lists requested so far (for the log).
    lists: AtomicUsize,
}

/// Runs `f` over `items` on `workers` threads; results in input order.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() || failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                    break;
                }
                match f(&items[i]) {
                    Ok(r) => results.lock().expect("results").push((i, r)),
                    Err(e) => {
                        *failure.lock().expect("failure") = Some(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("failure") {
        return Err(e);
    }
    let mut r = results.into_inner().expect("results");
    r.sort_by_key(|(i, _)| *i);
    Ok(r.into_iter().map(|(_, r)| r).collect())
}

fn hash_str(s: &str) -> u64 {
    model::mix(&s.bytes().map(u64::from).collect::<Vec<_>>())
}

fn item_index(id: &str) -> Option<usize> {
    id.strip_prefix('i')?.parse().ok()
}

impl Sim<'_> {
    fn write(&self, row: &Value) -> Result<()> {
        if let Some(out) = &self.out {
            let mut f = out.lock().expect("out");
            writeln!(f, "{row}")?;
            f.flush()?;
        }
        Ok(())
    }

    fn setup(&self) -> Result<()> {
        let a = self.args;
        eprintln!(
            "experiment-sim: {} items in {} categories, {} users with {} views each; training",
            a.items, a.categories, a.users, a.history
        );
        let items: Vec<Value> = (0..a.items)
            .map(|i| json!({"id": format!("i{i}"), "categories": [format!("c{}", self.shop.category(i))]}))
            .collect();
        for chunk in items.chunks(1000) {
            self.http
                .ok("POST", "/v1/items", Some(&json!({ "items": chunk })))?;
        }
        let events: Vec<Value> = (0..a.users as u64)
            .flat_map(|u| {
                self.shop
                    .history(u, a.history)
                    .into_iter()
                    .map(move |i| json!({"user_id": format!("u{u}"), "item_id": format!("i{i}"), "type": "view"}))
            })
            .collect();
        let chunks: Vec<&[Value]> = events.chunks(5000).collect();
        parallel(&chunks, 2, |chunk| {
            self.http
                .ok("POST", "/v1/events", Some(&json!({ "events": chunk })))
        })?;
        let trained = self.http.ok("POST", "/v1/train", None)?;
        if trained["serving"] != true {
            bail!("the trained version does not serve: {trained}");
        }
        eprintln!(
            "experiment-sim: champion {}",
            trained["version"].as_str().unwrap_or("?")
        );
        Ok(())
    }

    fn pool(&self, offset: usize, n: usize) -> Result<Vec<SimUser>> {
        if n > self.args.users {
            bail!(
                "{n} users are needed at once but --users is {}; raise --users",
                self.args.users
            );
        }
        Ok((0..n)
            .map(|j| {
                let u = ((offset + j) % self.args.users) as u64;
                SimUser {
                    id: format!("u{u}"),
                    index: u,
                }
            })
            .collect())
    }

    /// Runs `specs` side by side over `users` for `--days` days, one look per day at each.
    fn round(&self, specs: &[Spec], users: &[SimUser], revisit: f64) -> Result<Vec<Run>> {
        let a = self.args;
        for s in specs {
            let mut body = json!({
                "id": s.id,
                "type": if s.interleaving { "interleaving" } else { "ab" },
                "placement": a.placement,
                "namespace": a.namespace,
                "traffic": s.traffic,
                "planned_users": s.planned_users.max(1),
                "salt": format!("sim/{}/{}", a.seed, s.id),
                "variants": s.variants,
            });
            body["description"] = json!(format!("experiment-sim case {}", s.case));
            self.http.ok("POST", "/v1/experiments", Some(&body))?;
        }
        let index: HashMap<&str, usize> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let key = hash_str(&specs.iter().map(|s| s.id.as_str()).collect::<String>());
        let mut tallies: Vec<Tally> = specs
            .iter()
            .map(|s| Tally::new(if s.interleaving { 1 } else { 2 }))
            .collect();
        let mut dropped: Vec<std::collections::BTreeSet<String>> =
            vec![Default::default(); specs.len()];
        let mut runs: Vec<Run> = specs
            .iter()
            .map(|s| Run {
                case: s.case,
                id: s.id.clone(),
                kind: if s.interleaving { "interleaving" } else { "ab" },
                planned_users: s.planned_users,
                looks: Vec::new(),
                sent: Vec::new(),
                dropped_users: 0,
            })
            .collect();
        for day in 0..a.days {
            let visitors: Vec<&SimUser> = users
                .iter()
                .filter(|u| {
                    let arrival = (uniform(&[a.seed, 10, key, u.index]) * a.days as f64) as usize;
                    day == arrival
                        || (day > arrival
                            && uniform(&[a.seed, 11, key, u.index, day as u64]) < revisit)
                })
                .collect();
            let chunks: Vec<&[&SimUser]> = visitors.chunks(50).collect();
            let outputs = parallel(&chunks, a.concurrency, |chunk| {
                let mut out = DayOutput::default();
                for u in chunk.iter() {
                    self.visit(u, day, key, specs, &index, &mut out)?;
                }
                Ok(out)
            })?;
            let mut events = Vec::new();
            for o in outputs {
                for (i, t) in o.tallies {
                    tallies[i].merge(&t);
                }
                for (i, d) in o.dropped {
                    dropped[i].extend(d);
                }
                events.extend(o.events);
                self.lists.fetch_add(o.lists, Ordering::Relaxed);
            }
            let batches: Vec<&[Value]> = events.chunks(2000).collect();
            parallel(&batches, a.concurrency.min(4), |b| {
                self.http
                    .ok("POST", "/v1/events", Some(&json!({ "events": b })))
            })?;
            let ids: Vec<usize> = (0..specs.len()).collect();
            let looks = parallel(&ids, a.concurrency.min(4), |&i| {
                let r = self.http.ok(
                    "GET",
                    &format!("/v1/experiments/{}/results", specs[i].id),
                    None,
                )?;
                Ok(Look::parse(day + 1, &r, &tallies[i], specs[i].interleaving))
            })?;
            for (run, look) in runs.iter_mut().zip(looks) {
                run.looks.push(look);
            }
        }
        for (i, s) in specs.iter().enumerate() {
            self.http.ok(
                "POST",
                &format!("/v1/experiments/{}/stop", s.id),
                Some(&json!({"reason": "experiment-sim: the simulated days are over"})),
            )?;
            runs[i].sent = tallies[i].arms.clone();
            runs[i].dropped_users = dropped[i].len();
            self.write(&json!({"row": "experiment", "run": &runs[i]}))?;
        }
        Ok(runs)
    }

    fn visit(
        &self,
        u: &SimUser,
        day: usize,
        key: u64,
        specs: &[Spec],
        index: &HashMap<&str, usize>,
        out: &mut DayOutput,
    ) -> Result<()> {
        let a = self.args;
        let list = self.http.ok(
            "GET",
            &format!(
                "/v1/users/{}/recommendations?k={}&placement={}",
                u.id, a.k, a.placement
            ),
            None,
        )?;
        out.lists += 1;
        let Some(&e) = list["experiment"].as_str().and_then(|x| index.get(x)) else {
            return Ok(());
        };
        let spec = &specs[e];
        let arm = if spec.interleaving {
            0
        } else {
            let name = list["variant"].as_str().unwrap_or_default();
            spec.variants
                .iter()
                .position(|v| v["name"] == name)
                .with_context(|| format!("unknown variant `{name}` of {}", spec.id))?
        };
        let rid = list["recommendation_id"]
            .as_str()
            .context("a list without recommendation_id")?;
        let items: Vec<&str> = list["items"]
            .as_array()
            .map(|xs| xs.iter().filter_map(|x| x["item_id"].as_str()).collect())
            .unwrap_or_default();
        if items.is_empty() {
            return Ok(());
        }
        if !spec.interleaving
            && spec.drop[arm] > 0.0
            && uniform(&[a.seed, 13, key, e as u64, u.index]) < spec.drop[arm]
        {
            out.dropped.entry(e).or_default().insert(u.id.clone());
            return Ok(());
        }
        let indices: Vec<usize> = items
            .iter()
            .map(|i| item_index(i).with_context(|| format!("item `{i}` is not the simulator's")))
            .collect::<Result<_>>()?;
        let taste = self.shop.taste(u.index);
        let boost = if spec.interleaving {
            1.0
        } else {
            spec.boost[arm]
        };
        let mut rng = rng_for(&[a.seed, 12, key, u.index, day as u64]);
        let clicks = self.shop.clicks(&taste, &indices, boost, &mut rng);
        let shown: Vec<Value> = items
            .iter()
            .enumerate()
            .map(|(p, i)| json!({"item_id": i, "position": p + 1}))
            .collect();
        self.http.ok(
            "POST",
            "/v1/impressions",
            Some(&json!({"recommendation_id": rid, "user_id": u.id, "items": shown})),
        )?;
        for &p in &clicks {
            out.events.push(json!({
                "event_id": format!("{rid}-{p}"),
                "user_id": u.id,
                "item_id": items[p - 1],
                "type": "click",
                "recommendation_id": rid,
                "position": p,
            }));
        }
        out.tallies
            .entry(e)
            .or_insert_with(|| Tally::new(if spec.interleaving { 1 } else { 2 }))
            .add(&u.id, arm, items.len() as u64, clicks.len() as u64);
        Ok(())
    }

    /// Runs `n` experiments of `users_each` users, as many side by side as the user pool allows
    /// (at most `parallel`), each round on the next users of the pool.
    fn many(
        &self,
        case: &'static str,
        n: usize,
        users_each: usize,
        parallel_max: usize,
        make: impl Fn(usize) -> Spec,
    ) -> Result<Vec<Run>> {
        let side = parallel_max.min(self.args.users / users_each.max(1)).max(1);
        let mut runs = Vec::new();
        let mut offset = 0;
        let mut done = 0;
        while done < n {
            let k = side.min(n - done);
            let traffic = (10_000 / k) as f64 / 10_000.0;
            let specs: Vec<Spec> = (done..done + k)
                .map(|i| Spec { traffic, ..make(i) })
                .collect();
            let users = self.pool(offset, k * users_each)?;
            offset += k * users_each;
            eprintln!(
                "experiment-sim: {case}: experiments {}..{} of {n}, {} users each ({} lists so far)",
                done + 1,
                done + k,
                users_each,
                self.lists.load(Ordering::Relaxed)
            );
            runs.extend(self.round(&specs, &users, self.args.revisit)?);
            done += k;
        }
        Ok(runs)
    }

    fn ab(&self, id: String, case: &'static str, names: [&str; 2], planned: usize) -> Spec {
        Spec {
            id,
            case,
            interleaving: false,
            variants: names.iter().map(|n| json!({"name": n})).collect(),
            traffic: 1.0,
            planned_users: planned,
            boost: [1.0, 1.0],
            drop: [0.0, 0.0],
        }
    }

    fn aa(&self) -> Result<Value> {
        let a = self.args;
        let runs = self.many("aa", a.aa_experiments, a.aa_users, a.aa_parallel, |i| {
            self.ab(
                format!("sim-aa-{}-{i}", a.seed),
                "aa",
                ["a", "b"],
                a.aa_users,
            )
        })?;
        let n = runs.len();
        let count = |f: &dyn Fn(&Run) -> bool| runs.iter().filter(|r| f(r)).count();
        let false_positives = count(&|r: &Run| r.looks.iter().any(Look::always_valid_flag));
        let naive_any = count(&|r: &Run| r.looks.iter().any(Look::fixed_flag));
        let naive_final = count(&|r: &Run| r.last().fixed_flag());
        let srm = count(&|r: &Run| r.looks.iter().any(|l| l.srm_flagged));
        let decided = count(&|r: &Run| {
            r.looks
                .iter()
                .any(|l| l.decision.as_deref().is_some_and(|d| d != "keep_running"))
        });
        // The per-user variance of the CTR difference: se² · users at the last look.
        let finals: Vec<Look> = runs.iter().map(Run::last).collect();
        let with_se: Vec<&Look> = finals.iter().filter(|l| l.std_error.is_some()).collect();
        let m = with_se.len().max(1) as f64;
        let se2n = with_se
            .iter()
            .map(|l| l.std_error.unwrap_or(0.0).powi(2) * l.users as f64)
            .sum::<f64>()
            / m;
        let ctr = with_se
            .iter()
            .map(|l| l.ctr.iter().sum::<f64>() / l.ctr.len().max(1) as f64)
            .sum::<f64>()
            / m;
        let users = finals.iter().map(|l| l.users as f64).sum::<f64>() / n.max(1) as f64;
        let effect = a.lift * ctr;
        let summary = json!({
            "row": "summary",
            "case": "aa",
            "experiments": n,
            "looks_each": a.days,
            "mean_users": users,
            "false_positives_always_valid_any_look": rate(false_positives, n),
            "naive_fixed_any_look": rate(naive_any, n),
            "naive_fixed_last_look": rate(naive_final, n),
            "srm_flagged_any_look": srm,
            "decision_other_than_keep_running": decided,
            "inconsistent_looks": runs.iter().map(Run::inconsistent_looks).sum::<usize>(),
            "mean_ctr": ctr,
            "ctr_variance_per_user": se2n,
            "users_for_lift_fixed": users_for_power(1.0, effect, se2n.sqrt(), false),
            "users_for_lift_always_valid": users_for_power(1.0, effect, se2n.sqrt(), true),
            "lift": a.lift,
        });
        Ok(summary)
    }

    fn skew(&self) -> Result<Value> {
        let a = self.args;
        let n = a.skew_runs.max(1);
        // Side by side in the namespace, each on its own share of the traffic, as `many` does;
        // fresh users (no history), so the pool of `--users` does not bound the size.
        let traffic = (10_000 / n) as f64 / 10_000.0;
        let specs: Vec<Spec> = (0..n)
            .map(|r| {
                let id = if n == 1 {
                    format!("sim-skew-{}", a.seed)
                } else {
                    format!("sim-skew-{}-{r}", a.seed)
                };
                let mut spec = self.ab(id, "skew", ["a", "b"], a.skew_users);
                spec.drop = [0.0, a.skew_drop];
                spec.traffic = traffic;
                spec
            })
            .collect();
        let users: Vec<SimUser> = (0..a.skew_users * n)
            .map(|j| SimUser {
                id: format!("s{j}"),
                index: (a.users + j) as u64,
            })
            .collect();
        eprintln!(
            "experiment-sim: skew: {n} experiments of {} users, {} of each second variant's lost",
            a.skew_users, a.skew_drop
        );
        let runs = self.round(&specs, &users, 0.0)?;
        let flagged = runs
            .iter()
            .filter(|r| r.looks.iter().any(|l| l.srm_flagged))
            .count();
        let flagged_last = runs.iter().filter(|r| r.last().srm_flagged).count();
        let per_run: Vec<Value> = runs
            .iter()
            .map(|run| {
                let last = run.last();
                json!({
                    "id": run.id,
                    "users_sent": run.sent.iter().map(|t| t.users).collect::<Vec<_>>(),
                    "dropped_users": run.dropped_users,
                    "srm_flagged_any_look": run.looks.iter().any(|l| l.srm_flagged),
                    "first_flagged_day": run.first_day(|l| l.srm_flagged),
                    "srm_p_by_day": run.looks.iter().map(|l| l.srm_p).collect::<Vec<_>>(),
                    "users_per_variant_last_look": last.users_per_variant,
                    "decision_last_look": last.decision,
                })
            })
            .collect();
        Ok(json!({
            "row": "summary",
            "case": "skew",
            "drop": a.skew_drop,
            "experiments": n,
            "users_each": a.skew_users,
            "srm_flagged_any_look": rate(flagged, n),
            "srm_flagged_last_look": rate(flagged_last, n),
            "inconsistent_looks": runs.iter().map(Run::inconsistent_looks).sum::<usize>(),
            "runs": per_run,
        }))
    }

    fn lift(&self, users: usize) -> Result<Value> {
        let a = self.args;
        let runs = self.many("lift", a.lift_runs, users, 25, |i| {
            let mut s = self.ab(
                format!("sim-lift-{}-{i}", a.seed),
                "lift",
                ["control", "lifted"],
                users,
            );
            s.boost = [1.0, 1.0 + a.lift];
            s
        })?;
        let n = runs.len();
        let count = |f: &dyn Fn(&Run) -> bool| runs.iter().filter(|r| f(r)).count();
        let finals: Vec<Look> = runs.iter().map(Run::last).collect();
        let rel: Vec<f64> = finals
            .iter()
            .filter(|l| l.ctr.len() == 2 && l.ctr[0] > 0.0)
            .map(|l| l.ctr[1] / l.ctr[0] - 1.0)
            .collect();
        Ok(json!({
            "row": "summary",
            "case": "lift",
            "lift": a.lift,
            "experiments": n,
            "planned_users": users,
            "mean_users": finals.iter().map(|l| l.users as f64).sum::<f64>() / n.max(1) as f64,
            "power_always_valid_any_look": rate(count(&|r: &Run| r.looks.iter().any(Look::always_valid_win)), n),
            "power_always_valid_last_look": rate(count(&|r: &Run| r.last().always_valid_win()), n),
            "power_fixed_last_look": rate(count(&|r: &Run| r.last().fixed_win()), n),
            "shipped_any_look": count(&|r: &Run| r.looks.iter().any(|l| l.decision.as_deref() == Some("ship"))),
            "srm_flagged_any_look": count(&|r: &Run| r.looks.iter().any(|l| l.srm_flagged)),
            "mean_measured_relative_lift": rel.iter().sum::<f64>() / rel.len().max(1) as f64,
            "inconsistent_looks": runs.iter().map(Run::inconsistent_looks).sum::<usize>(),
        }))
    }

    fn ranker_spec(&self, id: String, interleaving: bool, planned: usize) -> Spec {
        let a = self.args;
        Spec {
            id,
            case: if interleaving {
                "ranker-interleaving"
            } else {
                "ranker-ab"
            },
            interleaving,
            variants: vec![
                json!({"name": "control", "placement": a.ranker_control}),
                json!({"name": "treatment", "placement": a.ranker_treatment}),
            ],
            traffic: 1.0,
            planned_users: planned,
            boost: [1.0, 1.0],
            drop: [0.0, 0.0],
        }
    }

    fn ranker(&self) -> Result<Value> {
        let a = self.args;
        let pilot_users = self.pool(0, a.ranker_pilot_users)?;
        eprintln!(
            "experiment-sim: ranker pilots, {} users each",
            a.ranker_pilot_users
        );
        let ab = self
            .round(
                &[self.ranker_spec(
                    format!("sim-ranker-{}-ab-pilot-{}", a.ranker_control, a.seed),
                    false,
                    a.ranker_pilot_users,
                )],
                &pilot_users,
                a.revisit,
            )?
            .remove(0)
            .last();
        let il = self
            .round(
                &[self.ranker_spec(
                    format!("sim-ranker-{}-il-pilot-{}", a.ranker_control, a.seed),
                    true,
                    a.ranker_pilot_users,
                )],
                &pilot_users,
                a.revisit,
            )?
            .remove(0)
            .last();
        let n_ab = users_for_power(
            ab.users as f64,
            ab.ctr_difference.unwrap_or(0.0),
            ab.std_error.unwrap_or(f64::INFINITY),
            false,
        );
        let n_il = users_for_power(
            il.users as f64,
            il.preference.unwrap_or(0.0),
            il.preference_se.unwrap_or(f64::INFINITY),
            false,
        );
        let n_sign = il.prefer.map_or(f64::INFINITY, |[t, c, ties]| {
            let decided = (t + c) as f64;
            let total = decided + ties as f64;
            if decided == 0.0 {
                return f64::INFINITY;
            }
            model::users_sign_test(t as f64 / decided, ties as f64 / total)
        });
        let measure = |interleaving: bool, sign: bool, n: f64| -> Result<Option<Rate>> {
            if !n.is_finite() || n as usize > a.ranker_max_users || a.ranker_runs == 0 {
                return Ok(None);
            }
            let users = (n as usize).max(20);
            let tag = match (interleaving, sign) {
                (true, true) => "il-sign",
                (true, false) => "il",
                _ => "ab",
            };
            let runs = self.many(
                if interleaving {
                    "ranker-interleaving"
                } else {
                    "ranker-ab"
                },
                a.ranker_runs,
                users,
                25,
                |i| {
                    self.ranker_spec(
                        format!("sim-ranker-{}-{tag}-{}-{i}", a.ranker_control, a.seed),
                        interleaving,
                        users,
                    )
                },
            )?;
            let wins = runs
                .iter()
                .filter(|r| {
                    let l = r.last();
                    if sign {
                        l.sign_test_win()
                    } else if interleaving {
                        l.preference_win()
                    } else {
                        l.fixed_win()
                    }
                })
                .count();
            Ok(Some(rate(wins, runs.len())))
        };
        let power_il = measure(true, false, n_il)?;
        let power_sign = measure(true, true, n_sign)?;
        let power_ab = measure(false, false, n_ab)?;
        Ok(json!({
            "row": "summary",
            "case": "ranker",
            "control": a.ranker_control,
            "treatment": a.ranker_treatment,
            "pilot_users": a.ranker_pilot_users,
            "ab_pilot": {"users": ab.users, "ctr": ab.ctr, "difference": ab.ctr_difference, "std_error": ab.std_error, "p_value": ab.p_value},
            "interleaving_pilot": {"users": il.users, "preference": il.preference, "std_error": il.preference_se, "p_value": il.preference_p, "sign_test_p": il.sign_test_p, "prefer_treatment_control_ties": il.prefer},
            "users_for_80_power_ab_fixed": n_ab,
            "users_for_80_power_interleaving": n_il,
            "ratio": n_ab / n_il,
            "users_for_80_power_interleaving_sign_test": n_sign,
            "ratio_sign_test": n_ab / n_sign,
            "power_interleaving_sign_test_at_its_size": power_sign,
            "power_ab_at_its_size": power_ab,
            "power_interleaving_at_its_size": power_il,
            "runs": a.ranker_runs,
        }))
    }
}

pub fn run(args: &ExperimentSimArgs) -> Result<()> {
    if args.items < args.k || args.users == 0 || args.days == 0 || args.k == 0 {
        bail!("--items must be at least --k; --users, --days and --k at least 1");
    }
    let out = match &args.out {
        Some(p) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        )),
        None => None,
    };
    let sim = Sim {
        args,
        http: Http::new(&args.url, args.key.clone())?,
        shop: Shop::new(
            args.items,
            args.categories,
            args.base,
            args.spread,
            args.eta,
            args.seed,
        ),
        out,
        lists: AtomicUsize::new(0),
    };
    if !args.no_setup {
        sim.setup()?;
    }
    let started = std::time::Instant::now();
    let mut lift_users = args.lift_users;
    for case in &args.cases {
        let t = std::time::Instant::now();
        let mut summary = match case {
            Case::Aa => {
                let s = sim.aa()?;
                if lift_users.is_none() {
                    lift_users = s["users_for_lift_always_valid"]
                        .as_f64()
                        .filter(|n| n.is_finite())
                        .map(|n| ((n / 100.0).ceil() * 100.0) as usize);
                }
                s
            }
            Case::Skew => sim.skew()?,
            Case::Lift => {
                let n = lift_users.context(
                    "the lift case needs --lift-users, or the aa case first (its pilot sizes it)",
                )?;
                sim.lift(n)?
            }
            Case::Ranker => sim.ranker()?,
        };
        summary["seconds"] = json!(t.elapsed().as_secs_f64().round());
        summary["lists_so_far"] = json!(sim.lists.load(Ordering::Relaxed));
        summary["seed"] = json!(args.seed);
        println!("{summary}");
        sim.write(&summary)?;
    }
    eprintln!(
        "experiment-sim: done in {:.0} s, {} lists",
        started.elapsed().as_secs_f64(),
        sim.lists.load(Ordering::Relaxed)
    );
    Ok(())
}
