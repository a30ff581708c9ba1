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
use crate::metrics::GroupExposure;
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

    /// Every hyperparameter, as the model's specification serializes it (without the `model` tag);
    /// empty for a model without any (popularity, an external model).
    pub fn hyperparameters(&self) -> serde_json::Map<String, serde_json::Value> {
        // Through the text form, so that an f32 reads back as written (0.1, not 0.10000000149).
        let value = serde_json::to_string(self)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
        match value {
            Some(serde_json::Value::Object(mut map)) => {
                map.remove("model");
                map
            }
            _ => serde_json::Map::new(),
        }
    }
}

/// Readable, distinct labels for the models of one run, in their order: the model's name, followed
/// by the hyperparameters that differ from that model's defaults, e.g. `item-knn` and
/// `item-knn (neighbours=120, shrinkage=3.5)`. The same specification given twice gets ` [2]`,
/// ` [3]`... Reports, comparisons, fold means and `--baseline` use these labels.
pub fn model_labels(models: &[ModelChoice]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::with_capacity(models.len());
    for choice in models {
        let defaults = ModelChoice::by_name(choice.name())
            .map(|d| d.hyperparameters())
            .unwrap_or_default();
        let changed: Vec<String> = choice
            .hyperparameters()
            .iter()
            .filter(|(key, value)| defaults.get(*key) != Some(*value))
            .map(|(key, value)| format!("{key}={}", short_value(value)))
            .collect();
        let base = if changed.is_empty() {
            choice.name().to_string()
        } else {
            format!("{} ({})", choice.name(), changed.join(", "))
        };
        let mut label = base.clone();
        let mut n = 1;
        while labels.contains(&label) {
            n += 1;
            label = format!("{base} [{n}]");
        }
        labels.push(label);
    }
    labels
}

/// A hyperparameter value for a label: strings without quotes, fractions to four decimals.
fn short_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            let text = format!("{x:.4}");
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        other => other.to_string(),
    }
}

/// Every hyperparameter of a model as `key=value` pairs, by name.
pub fn describe_hyperparameters(params: &serde_json::Map<String, serde_json::Value>) -> String {
    params
        .iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(s) => format!("{key}={s}"),
            other => format!("{key}={other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
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
    /// Item groups for miscalibration and exposure by group: the split's features named
    /// `<group_by>:<group>`; by default `genre` where the split has it, else every feature.
    #[serde(default)]
    pub group_by: Option<String>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            ranking: RankingOptions::default(),
            ci: CiConfig::default(),
            stages: StageSelection::Test,
            baseline: None,
            keep_lists: false,
            group_by: None,
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
    /// Share of top-k exposure per item group, where the split has item groups.
    #[serde(default)]
    pub group_exposure: Option<GroupExposure>,
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

/// What was run, by which Cairn, when: the header of every report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    /// Cairn's version (the crate version).
    pub cairn_version: String,
    /// The git commit Cairn was built from, where the build set `CAIRN_GIT_COMMIT`.
    pub git_commit: Option<String>,
    /// When the run started: UTC, RFC 3339 (e.g. `2026-12-07T03:45:51Z`).
    pub date: String,
    /// The command line as given, one argument per entry; empty when the run was not started from
    /// the command line (the CLI fills it in).
    pub command_line: Vec<String>,
}

impl RunHeader {
    /// This build's version and the current time, without a command line.
    pub fn now() -> RunHeader {
        RunHeader {
            cairn_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: option_env!("CAIRN_GIT_COMMIT")
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            command_line: Vec::new(),
        }
    }

    /// The version with the commit where known, e.g. `0.1.0 (a1b2c3d)`.
    pub fn version(&self) -> String {
        match &self.git_commit {
            Some(commit) => format!("{} ({commit})", self.cairn_version),
            None => self.cairn_version.clone(),
        }
    }

    /// The command line as one line a shell reads back: arguments with spaces or shell
    /// metacharacters are single-quoted.
    pub fn command(&self) -> String {
        self.command_line
            .iter()
            .map(|arg| {
                let plain = !arg.is_empty()
                    && arg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./=,:@%+".contains(c));
                if plain {
                    arg.clone()
                } else {
                    format!("'{}'", arg.replace('\'', "'\\''"))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One evaluated model: its label in the report and its full specification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The label used throughout the report (see [`model_labels`]).
    pub label: String,
    /// The model's name (`item-knn`, `baseline`, `pipeline`...).
    pub name: String,
    /// Every hyperparameter, defaults included.
    pub hyperparameters: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub run: RunHeader,
    pub protocol: String,
    pub source: String,
    pub config: RunConfig,
    /// The evaluated models with their labels and hyperparameters, in the order given.
    pub models: Vec<ModelEntry>,
    /// Caveats about the numbers, e.g. RMSE measured on positive ratings only.
    pub warnings: Vec<String>,
    pub stages: Vec<StageReport>,
    pub fold_means: Vec<FoldMean>,
}

/// The warning for RMSE and MAE measured after `--min-rating` dropped the low ratings.
pub fn positives_only_warning(min_rating: f32) -> String {
    format!(
        "RMSE and MAE were computed only on ratings >= {min_rating} (--min-rating): the lower ratings \
were dropped before splitting, so the errors are measured on a truncated range, models that predict high \
ratings look better than they are, and the numbers are not comparable with published RMSE/MAE on all \
ratings. Run without --min-rating for rating accuracy."
    )
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
    let run = RunHeader::now();
    let labels = model_labels(models);
    let mut reports = Vec::new();
    let n_stages = stages.len();
    for (i, stage) in stages.into_iter().enumerate() {
        let mut task = EvalTask::build(split, stage);
        if let Some(prefix) = &config.group_by {
            task.group_by(split, Some(prefix.as_str()));
        }
        let place = format!("{} ({}/{n_stages})", task.name, i + 1);
        reports.push(stage_report(
            split, stage, &task, models, &labels, &place, config, progress,
        ));
    }
    let fold_means = fold_means(&reports);
    let mut warnings = Vec::new();
    let rated = reports
        .iter()
        .any(|s| s.models.iter().any(|m| m.rating.is_some()));
    if let (Some(min_rating), true) = (split.min_rating, rated) {
        warnings.push(positives_only_warning(min_rating));
    }
    Ok(Report {
        run,
        protocol: split.protocol.clone(),
        source: source.to_string(),
        config: config.clone(),
        models: models
            .iter()
            .zip(&labels)
            .map(|(m, label)| ModelEntry {
                label: label.clone(),
                name: m.name().to_string(),
                hyperparameters: m.hyperparameters(),
            })
            .collect(),
        warnings,
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
    let labels = model_labels(models);
    stage_report(
        split, stage, task, models, &labels, &task.name, config, progress,
    )
}

/// [`run_stage`] with the models' labels and the stage's place in the run (for progress).
#[allow(clippy::too_many_arguments)]
fn stage_report(
    split: &SplitSet,
    stage: &Stage,
    task: &EvalTask,
    models: &[ModelChoice],
    labels: &[String],
    place: &str,
    config: &RunConfig,
    progress: &dyn Progress,
) -> StageReport {
    let mut reports: Vec<ModelReport> = Vec::new();
    let n_models = models.len();
    for (i, (choice, label)) in models.iter().zip(labels).enumerate() {
        let model = Labelled {
            label,
            place: format!("{place} model {}/{n_models}", i + 1),
            choice,
        };
        let report = match choice {
            ModelChoice::Ranking(spec) => ranking_report(
                task,
                &model,
                || {
                    spec.try_fit_ordered(&task.train, Some(&task.train_order))
                        .map_err(|e| e.to_string())
                },
                config,
                progress,
            ),
            ModelChoice::Rating(spec) => rating_report(task, &model, spec, config, progress),
            ModelChoice::External(e) => ranking_report(
                task,
                &model,
                || e.0.fit(split, stage, task),
                config,
                progress,
            ),
        };
        reports.extend(report);
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

/// A model of the run with its label and its place in the run, e.g. `fold2 (2/5) model 1/3`.
struct Labelled<'a> {
    label: &'a str,
    place: String,
    choice: &'a ModelChoice,
}

impl Labelled<'_> {
    /// Runs `fit` as one progress stage (0 of 1, then 1 of 1), so that the user sees which model is
    /// fitting where, and for how long.
    fn fitting<T>(&self, progress: &dyn Progress, fit: impl FnOnce() -> T) -> (T, f64) {
        let stage = format!("{}: fitting {}", self.place, self.label);
        progress.update(&stage, 0, 1);
        let t0 = Instant::now();
        let fitted = fit();
        let secs = t0.elapsed().as_secs_f64();
        progress.update(&stage, 1, 1);
        (fitted, secs)
    }
}

/// Fits a ranking model with `fit` and scores it; `None` when it could not be fitted.
fn ranking_report(
    task: &EvalTask,
    model: &Labelled<'_>,
    fit: impl FnOnce() -> std::result::Result<Box<dyn Recommender>, String>,
    config: &RunConfig,
    progress: &dyn Progress,
) -> Option<ModelReport> {
    let (fitted, fit_s) = model.fitting(progress, fit);
    let choice = model.choice;
    let fitted = match fitted {
        Ok(m) => m,
        Err(e) => {
            // Reported and left out: scoring a fallback model under this name would report numbers
            // the requested model never produced.
            eprintln!(
                "warning: {} could not be fitted on {}: {e}; left out",
                model.label, task.name
            );
            return None;
        }
    };
    // One stage per model and task: `done` counts the users scored so far. Users are scored in
    // parallel; the lock keeps the counts that `progress` sees in increasing order.
    let label = format!("{}: scoring {}", model.place, model.label);
    let total = task.users_with_targets();
    progress.update(&label, 0, total);
    let done = Mutex::new(0usize);
    let t1 = Instant::now();
    let result = evaluate_ranking(fitted.as_ref(), task, &config.ranking, &|n| {
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
        model: model.label.to_string(),
        spec: choice.clone(),
        fit_s,
        score_s,
        metrics,
        aggregates: result.aggregates,
        popularity_bins: result.popularity_bins,
        group_exposure: result.group_exposure,
        rating: None,
        per_user: result.per_user,
        lists,
    })
}

/// `None` when the stage has no explicit ratings.
fn rating_report(
    task: &EvalTask,
    model: &Labelled<'_>,
    spec: &RatingModelSpec,
    config: &RunConfig,
    progress: &dyn Progress,
) -> Option<ModelReport> {
    let data = task.ratings.as_ref()?;
    let (fitted, fit_s) = model.fitting(progress, || {
        spec.fit(data, task.train.n_users(), task.n_items())
    });
    let t1 = Instant::now();
    let rating = evaluate_ratings(fitted.as_ref(), &data.test, &config.ci);
    Some(ModelReport {
        model: model.label.to_string(),
        spec: ModelChoice::Rating(spec.clone()),
        fit_s,
        score_s: t1.elapsed().as_secs_f64(),
        metrics: BTreeMap::new(),
        aggregates: BTreeMap::new(),
        popularity_bins: None,
        group_exposure: None,
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
        // The label, or else the first model of that name (`item-knn` for a tuned item-knn).
        Some(name) => ranked
            .iter()
            .find(|r| &r.model == name)
            .or_else(|| ranked.iter().find(|r| r.spec.name() == name))
            .copied(),
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use cairn_models::{ItemKnnConfig, MfConfig};

    use super::*;
    use crate::splitters;

    #[test]
    fn labels_name_what_differs_from_the_defaults_and_stay_distinct() {
        let tuned = ModelChoice::Ranking(ModelSpec::ItemKnn(ItemKnnConfig {
            shrinkage: 0.1,
            ..ItemKnnConfig::default()
        }));
        let models = vec![
            ModelChoice::by_name("item-knn").unwrap(),
            tuned.clone(),
            tuned,
            ModelChoice::by_name("svdpp").unwrap(),
            ModelChoice::Rating(RatingModelSpec::Svdpp(MfConfig::default())),
            ModelChoice::by_name("popularity").unwrap(),
        ];
        let labels = model_labels(&models);
        assert_eq!(labels[0], "item-knn");
        assert_eq!(labels[1], "item-knn (shrinkage=0.1)");
        assert_eq!(labels[2], "item-knn (shrinkage=0.1) [2]");
        // svdpp's defaults are Surprise's, not MfConfig's.
        assert_eq!(labels[3], "svdpp");
        assert!(
            labels[4].starts_with("svdpp (") && labels[4].contains("factors="),
            "{}",
            labels[4]
        );
        assert_eq!(labels[5], "popularity");
        assert!(models[5].hyperparameters().is_empty());
        assert_eq!(
            models[1].hyperparameters()["shrinkage"],
            serde_json::json!(0.1)
        );
    }

    #[test]
    fn the_command_line_is_quoted_for_a_shell() {
        let header = RunHeader {
            command_line: vec![
                "cairn".into(),
                "eval".into(),
                "--data".into(),
                "my data/it's".into(),
                "--k".into(),
                "5,10".into(),
            ],
            ..RunHeader::now()
        };
        assert_eq!(
            header.command(),
            r"cairn eval --data 'my data/it'\''s' --k 5,10"
        );
    }

    #[test]
    fn progress_names_the_stage_and_model_while_fitting_and_scoring() {
        let mut ratings = String::from("user,item\n");
        for u in 0..30u32 {
            for i in 0..8u32 {
                ratings.push_str(&format!("{u},{}\n", (u + 3 * i) % 20));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        std::fs::write(&path, ratings).unwrap();
        let split = splitters::split_dataset(&path, "holdout", None, 1).unwrap();
        let seen = Mutex::new(Vec::<(String, usize, usize)>::new());
        let record = |stage: &str, done: usize, total: usize| {
            seen.lock().unwrap().push((stage.to_string(), done, total));
        };
        let models = vec![
            ModelChoice::by_name("popularity").unwrap(),
            ModelChoice::by_name("item-knn").unwrap(),
        ];
        let config = RunConfig {
            stages: StageSelection::All,
            ..RunConfig::default()
        };
        run(&split, "rows", &models, &config, &record).unwrap();
        let seen = seen.into_inner().unwrap();
        let fitting = "test (2/2) model 2/2: fitting item-knn";
        assert_eq!(
            seen.iter()
                .filter(|(s, _, _)| s == fitting)
                .map(|(_, d, t)| (*d, *t))
                .collect::<Vec<_>>(),
            [(0, 1), (1, 1)],
            "{seen:?}"
        );
        assert!(seen
            .iter()
            .any(|(s, d, t)| s == "validation (1/2) model 1/2: scoring popularity" && d == t));
        // Fitting starts before scoring, for every model of every stage.
        let first = |needle: &str| seen.iter().position(|(s, _, _)| s == needle).unwrap();
        assert!(first(fitting) < first("test (2/2) model 2/2: scoring item-knn"));
    }
}
