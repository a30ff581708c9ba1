//! Runs a list of models over the stages of a split and summarizes everything into a [`Report`]:
//! per-metric means with intervals, catalog metrics, paired comparisons against a baseline model, and
//! the mean over folds where the protocol has folds.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use cairn_models::{ModelSpec, Progress, Recommender};
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::evaluate::{evaluate_ranking, PerUser, PopularityBins, RankingOptions};
use crate::external::External;
use crate::rating_models::{evaluate_ratings, RatingModelSpec, RatingResult};
use crate::split::{Role, SplitSet, Stage};
use crate::stats::{paired_comparison, summarize, CiConfig, PairedComparison, Summary};
use crate::task::EvalTask;

/// A model to evaluate: a ranking model from the models registry, a rating predictor, or a ranking
/// model defined above this crate (see [`crate::external`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelChoice {
    Ranking(ModelSpec),
    Rating(RatingModelSpec),
    External(External),
}

impl ModelChoice {
    /// A model by name with default hyperparameters: the models registry first, then the rating
    /// baselines of this crate.
    pub fn by_name(name: &str) -> Result<ModelChoice> {
        if let Some(spec) = ModelSpec::default_for(name) {
            return Ok(ModelChoice::Ranking(spec));
        }
        if let Some(spec) = RatingModelSpec::default_for(name) {
            return Ok(ModelChoice::Rating(spec));
        }
        Err(EvalError::InvalidOption(format!(
            "unknown model `{name}` (known: {}, {})",
            ModelSpec::known_names().join(", "),
            RatingModelSpec::known_names().join(", ")
        )))
    }

    pub fn name(&self) -> &'static str {
        match self {
            ModelChoice::Ranking(s) => s.name(),
            ModelChoice::Rating(s) => s.name(),
            ModelChoice::External(e) => e.0.name(),
        }
    }
}

/// Which stages to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageSelection {
    /// The test stage or every fold: the numbers to report.
    Test,
    Validation,
    All,
}

impl StageSelection {
    fn includes(self, role: Role) -> bool {
        match self {
            StageSelection::Test => role != Role::Validation,
            StageSelection::Validation => role == Role::Validation,
            StageSelection::All => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub ranking: RankingOptions,
    pub ci: CiConfig,
    pub stages: StageSelection,
    /// Model that the others are compared against (default: the first ranking model).
    pub baseline: Option<String>,
    /// Keep every user's ranked list (item ids) in the model reports, for `write_lists`.
    #[serde(default)]
    pub keep_lists: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            ranking: RankingOptions::default(),
            ci: CiConfig::default(),
            stages: StageSelection::Test,
            baseline: None,
            keep_lists: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    pub model: String,
    pub spec: ModelChoice,
    pub fit_s: f64,
    /// Wall time to rank (or predict for) every evaluated user, metrics included.
    pub score_s: f64,
    /// Per-user metrics: mean, standard error, bootstrap interval.
    pub metrics: BTreeMap<String, Summary>,
    /// Catalog-level metrics (Coverage@k, Gini@k).
    pub aggregates: BTreeMap<String, f64>,
    pub popularity_bins: Option<PopularityBins>,
    pub rating: Option<RatingResult>,
    #[serde(skip)]
    pub per_user: PerUser,
    /// (user id, ranked item ids) per evaluated user, when `RunConfig::keep_lists` is set.
    #[serde(skip)]
    pub lists: Vec<(String, Vec<String>)>,
}

impl ModelReport {
    /// A metric's point value, per-user or catalog-level or rating.
    pub fn value(&self, metric: &str) -> Option<f64> {
        if let Some(s) = self.metrics.get(metric) {
            return Some(s.mean);
        }
        if let Some(v) = self.aggregates.get(metric) {
            return Some(*v);
        }
        match (metric, &self.rating) {
            ("RMSE", Some(r)) => Some(r.rmse),
            ("MAE", Some(r)) => Some(r.mae),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub metric: String,
    pub model: String,
    pub baseline: String,
    #[serde(flatten)]
    pub result: PairedComparison,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    pub name: String,
    pub role: Role,
    pub n_fit_users: usize,
    pub n_items: usize,
    pub n_catalog: usize,
    pub n_eval_users: usize,
    pub n_rating_pairs: usize,
    pub models: Vec<ModelReport>,
    pub comparisons: Vec<Comparison>,
}

/// Mean over folds of each model's per-fold values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldMean {
    pub model: String,
    pub folds: usize,
    pub metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub protocol: String,
    pub source: String,
    pub config: RunConfig,
    pub stages: Vec<StageReport>,
    pub fold_means: Vec<FoldMean>,
}

/// Evaluates every model on the selected stages of a split.
pub fn run(
    split: &SplitSet,
    source: &str,
    models: &[ModelChoice],
    config: &RunConfig,
    progress: &dyn Progress,
) -> Result<Report> {
    if models.is_empty() {
        return Err(EvalError::InvalidOption("no model to evaluate".into()));
    }
    if config.ranking.ks.is_empty() || config.ranking.ks.contains(&0) {
        return Err(EvalError::InvalidOption(
            "cut-offs k must be positive".into(),
        ));
    }
    let stages: Vec<&Stage> = split
        .stages
        .iter()
        .filter(|s| config.stages.includes(s.role))
        .collect();
    if stages.is_empty() {
        return Err(EvalError::InvalidOption(format!(
            "the split has no {:?} stage",
            config.stages
        )));
    }
    let mut reports = Vec::new();
    for stage in stages {
        let task = EvalTask::build(split, stage);
        reports.push(run_stage(split, stage, &task, models, config, progress));
    }
    let fold_means = fold_means(&reports);
    Ok(Report {
        protocol: split.protocol.clone(),
        source: source.to_string(),
        config: config.clone(),
        stages: reports,
        fold_means,
    })
}

/// Evaluates every model on one task, built from `stage` of `split`.
pub fn run_stage(
    split: &SplitSet,
    stage: &Stage,
    task: &EvalTask,
    models: &[ModelChoice],
    config: &RunConfig,
    progress: &dyn Progress,
) -> StageReport {
    let mut reports: Vec<ModelReport> = Vec::new();
    for choice in models {
        let report = match choice {
            ModelChoice::Ranking(spec) => ranking_report(
                task,
                choice,
                || spec.try_fit(&task.train).map_err(|e| e.to_string()),
                config,
                progress,
            ),
            ModelChoice::Rating(spec) => rating_report(task, spec, config),
            ModelChoice::External(e) => ranking_report(
                task,
                choice,
                || e.0.fit(split, stage, task),
                config,
                progress,
            ),
        };
        if let Some(mut r) = report {
            // The same model twice (e.g. default and tuned settings) gets distinct labels.
            let base = r.model.clone();
            let mut n = 1;
            while reports.iter().any(|o| o.model == r.model) {
                n += 1;
                r.model = format!("{base}#{n}");
            }
            reports.push(r);
        }
    }
    let comparisons = compare(&reports, config);
    StageReport {
        name: task.name.clone(),
        role: stage.role,
        n_fit_users: task.train.n_users(),
        n_items: task.n_items(),
        n_catalog: task.catalog_size(),
        n_eval_users: task.users_with_targets(),
        n_rating_pairs: task.ratings.as_ref().map_or(0, |r| r.test.len()),
        models: reports,
        comparisons,
    }
}

/// Fits a ranking model with `fit` and scores it; `None` when it could not be fitted.
fn ranking_report(
    task: &EvalTask,
    choice: &ModelChoice,
    fit: impl FnOnce() -> std::result::Result<Box<dyn Recommender>, String>,
    config: &RunConfig,
    progress: &dyn Progress,
) -> Option<ModelReport> {
    let t0 = Instant::now();
    let model = match fit() {
        Ok(m) => m,
        Err(e) => {
            // Reported and left out: scoring a fallback model under this name would report numbers
            // the requested model never produced.
            eprintln!(
                "warning: {} could not be fitted on {}: {e}; left out",
                choice.name(),
                task.name
            );
            return None;
        }
    };
    let fit_s = t0.elapsed().as_secs_f64();
    // One stage per model and task: `done` counts the users scored so far. Users are scored in
    // parallel; the lock keeps the counts that `progress` sees in increasing order.
    let label = format!("{} {}", task.name, choice.name());
    let total = task.users_with_targets();
    progress.update(&label, 0, total);
    let done = Mutex::new(0usize);
    let t1 = Instant::now();
    let result = evaluate_ranking(model.as_ref(), task, &config.ranking, &|n| {
        if let Ok(mut done) = done.lock() {
            *done += n as usize;
            progress.update(&label, *done, total);
        }
    });
    let score_s = t1.elapsed().as_secs_f64();
    // Finishes the stage even if fewer users than counted reported back.
    if done.into_inner().unwrap_or_else(PoisonError::into_inner) < total {
        progress.update(&label, total, total);
    }
    let metrics = result
        .per_user
        .columns
        .iter()
        .map(|(name, values)| (name.clone(), summarize(values, &config.ci)))
        .collect();
    let lists = if config.keep_lists {
        result
            .per_user
            .users
            .iter()
            .zip(&result.lists)
            .map(|(u, l)| {
                let items = l
                    .iter()
                    .map(|&i| task.train.items.id(i).to_string())
                    .collect();
                (u.clone(), items)
            })
            .collect()
    } else {
        Vec::new()
    };
    Some(ModelReport {
        model: choice.name().to_string(),
        spec: choice.clone(),
        fit_s,
        score_s,
        metrics,
        aggregates: result.aggregates,
        popularity_bins: result.popularity_bins,
        rating: None,
        per_user: result.per_user,
        lists,
    })
}

/// `None` when the stage has no explicit ratings.
fn rating_report(
    task: &EvalTask,
    spec: &RatingModelSpec,
    config: &RunConfig,
) -> Option<ModelReport> {
    let data = task.ratings.as_ref()?;
    let t0 = Instant::now();
    let model = spec.fit(data, task.train.n_users(), task.n_items());
    let fit_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let rating = evaluate_ratings(model.as_ref(), &data.test, &config.ci);
    Some(ModelReport {
        model: spec.name().to_string(),
        spec: ModelChoice::Rating(spec.clone()),
        fit_s,
        score_s: t1.elapsed().as_secs_f64(),
        metrics: BTreeMap::new(),
        aggregates: BTreeMap::new(),
        popularity_bins: None,
        rating,
        per_user: PerUser::default(),
        lists: Vec::new(),
    })
}

/// Every other ranking model against the baseline, metric by metric, on the same users.
fn compare(reports: &[ModelReport], config: &RunConfig) -> Vec<Comparison> {
    let ranked: Vec<&ModelReport> = reports
        .iter()
        .filter(|r| !r.per_user.columns.is_empty())
        .collect();
    let baseline = match &config.baseline {
        Some(name) => ranked.iter().find(|r| &r.model == name).copied(),
        None => ranked.first().copied(),
    };
    let Some(baseline) = baseline else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for model in ranked.iter().filter(|r| r.model != baseline.model) {
        for (metric, values) in &model.per_user.columns {
            if let Some(base_values) = baseline.per_user.columns.get(metric) {
                out.push(Comparison {
                    metric: metric.clone(),
                    model: model.model.clone(),
                    baseline: baseline.model.clone(),
                    result: paired_comparison(values, base_values, &config.ci),
                });
            }
        }
    }
    out
}

fn fold_means(stages: &[StageReport]) -> Vec<FoldMean> {
    let folds: Vec<&StageReport> = stages.iter().filter(|s| s.role == Role::Fold).collect();
    if folds.is_empty() {
        return Vec::new();
    }
    let mut names: Vec<String> = Vec::new();
    for s in &folds {
        for m in &s.models {
            if !names.contains(&m.model) {
                names.push(m.model.clone());
            }
        }
    }
    names
        .into_iter()
        .map(|model| {
            let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
            let mut n_folds = 0;
            for s in &folds {
                let Some(m) = s.models.iter().find(|m| m.model == model) else {
                    continue;
                };
                n_folds += 1;
                let mut add = |k: &str, v: f64| {
                    let e = sums.entry(k.to_string()).or_insert((0.0, 0));
                    e.0 += v;
                    e.1 += 1;
                };
                for (k, v) in &m.metrics {
                    add(k, v.mean);
                }
                for (k, v) in &m.aggregates {
                    add(k, *v);
                }
                if let Some(r) = &m.rating {
                    add("RMSE", r.rmse);
                    add("MAE", r.mae);
                }
                add("fit_s", m.fit_s);
            }
            FoldMean {
                model,
                folds: n_folds,
                metrics: sums
                    .into_iter()
                    .map(|(k, (s, n))| (k, s / n as f64))
                    .collect(),
            }
        })
        .collect()
}
