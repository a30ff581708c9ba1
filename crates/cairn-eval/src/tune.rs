//! Random search over a model's hyperparameters on a validation stage.
//!
//! The search works on the model's serialized spec (`{"model": "item-knn", "neighbours": 100, ...}`),
//! so it serves every model of the registry without knowing its fields: a sampled trial is the default
//! spec with some top-level numbers replaced. The default space varies each quality knob around its
//! default (integers ×/÷ 4, floats ×/÷ 10, log-uniform) and leaves cost and reproducibility knobs
//! (seed, threads, shards, iterations, epochs, max_*) alone; `--space` replaces it.

use std::collections::BTreeMap;
use std::time::Instant;

use cairn_models::ModelSpec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{EvalError, Result};
use crate::evaluate::{evaluate_ranking, RankingOptions};
use crate::stats::{defined, mean};
use crate::task::EvalTask;

/// How one hyperparameter is sampled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Param {
    Int { low: i64, high: i64, log: bool },
    Float { low: f64, high: f64, log: bool },
    Choice { values: Vec<Value> },
}

impl Param {
    fn sample(&self, rng: &mut ChaCha8Rng) -> Value {
        match self {
            Param::Int { low, high, log } => {
                let v = if *log && *low > 0 {
                    let x = rng
                        .random_range((*low as f64).ln()..=(*high as f64).ln())
                        .exp();
                    (x.round() as i64).clamp(*low, *high)
                } else {
                    rng.random_range(*low..=*high)
                };
                Value::from(v)
            }
            Param::Float { low, high, log } => {
                let v = if *log && *low > 0.0 {
                    rng.random_range(low.ln()..=high.ln()).exp()
                } else {
                    rng.random_range(*low..=*high)
                };
                Value::from(v)
            }
            Param::Choice { values } => values[rng.random_range(0..values.len())].clone(),
        }
    }
}

pub type SearchSpace = BTreeMap<String, Param>;

/// Cost or reproducibility knobs that the default space does not touch.
fn is_tunable_by_default(name: &str) -> bool {
    !(name.contains("seed")
        || name.contains("thread")
        || name.contains("shard")
        || name.contains("iteration")
        || name.contains("epoch")
        || name.starts_with("max_")
        || name.starts_with("fold_in"))
}

/// The default space of a spec (see the module documentation).
pub fn default_space(spec: &ModelSpec) -> Result<SearchSpace> {
    let Value::Object(fields) = serde_json::to_value(spec)? else {
        return Ok(SearchSpace::new());
    };
    let mut space = SearchSpace::new();
    for (name, value) in fields {
        if name == "model" || !is_tunable_by_default(&name) {
            continue;
        }
        if let Some(v) = value.as_u64().filter(|&v| v > 0) {
            let v = v as i64;
            space.insert(
                name,
                Param::Int {
                    low: (v / 4).max(1),
                    high: v * 4,
                    log: true,
                },
            );
        } else if let Some(v) = value.as_f64().filter(|&v| v > 0.0) {
            space.insert(
                name,
                Param::Float {
                    low: v / 10.0,
                    high: v * 10.0,
                    log: true,
                },
            );
        }
    }
    Ok(space)
}

/// Parses `name=int:LOW:HIGH[:log],name=float:LOW:HIGH[:log],name=choice:A|B|C`.
pub fn parse_space(text: &str) -> Result<SearchSpace> {
    let bad = |s: &str| {
        EvalError::InvalidOption(format!("search space entry `{s}`: want name=int:LOW:HIGH[:log], name=float:LOW:HIGH[:log] or name=choice:A|B"))
    };
    let mut space = SearchSpace::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, rule) = entry.split_once('=').ok_or_else(|| bad(entry))?;
        let parts: Vec<&str> = rule.split(':').collect();
        let log = parts.get(3) == Some(&"log");
        let param = match parts.as_slice() {
            ["int", lo, hi, ..] => {
                let (low, high) = (
                    lo.parse().map_err(|_| bad(entry))?,
                    hi.parse().map_err(|_| bad(entry))?,
                );
                if low > high {
                    return Err(bad(entry));
                }
                Param::Int { low, high, log }
            }
            ["float", lo, hi, ..] => {
                let (low, high): (f64, f64) = (
                    lo.parse().map_err(|_| bad(entry))?,
                    hi.parse().map_err(|_| bad(entry))?,
                );
                if low.is_nan() || high.is_nan() || low > high {
                    return Err(bad(entry));
                }
                Param::Float { low, high, log }
            }
            ["choice", values] => Param::Choice {
                values: values
                    .split('|')
                    .map(|v| serde_json::from_str(v).unwrap_or_else(|_| Value::from(v)))
                    .collect(),
            },
            _ => return Err(bad(entry)),
        };
        space.insert(name.trim().to_string(), param);
    }
    Ok(space)
}

/// The spec with the sampled values put in.
fn with_values(base: &ModelSpec, values: &Map<String, Value>) -> Result<ModelSpec> {
    let mut json = serde_json::to_value(base)?;
    if let Value::Object(fields) = &mut json {
        for (k, v) in values {
            if !fields.contains_key(k) {
                return Err(EvalError::InvalidOption(format!(
                    "model {} has no hyperparameter `{k}` (it has: {})",
                    base.name(),
                    fields
                        .keys()
                        .filter(|f| *f != "model")
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            fields.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json).map_err(|e| {
        EvalError::InvalidOption(format!(
            "sampled setting is not valid for {}: {e}",
            base.name()
        ))
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub spec: ModelSpec,
    /// Mean of the objective over validation users with targets.
    pub value: f64,
    pub fit_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneResult {
    pub metric: String,
    pub seed: u64,
    pub space: SearchSpace,
    /// Trial 0 is the default setting; the others are random samples.
    pub trials: Vec<Trial>,
    pub best: usize,
}

impl TuneResult {
    pub fn best_trial(&self) -> &Trial {
        &self.trials[self.best]
    }
}

/// The cut-off and name of an objective such as `NDCG@100`, `RecallLiang@20` or `AUC`.
pub fn objective_options(metric: &str) -> Result<RankingOptions> {
    if metric == "AUC" {
        return Ok(RankingOptions {
            ks: vec![10],
            auc: true,
            ..RankingOptions::default()
        });
    }
    let k = metric
        .split_once('@')
        .and_then(|(_, k)| k.parse::<usize>().ok())
        .filter(|&k| k > 0)
        .ok_or_else(|| {
            EvalError::InvalidOption(format!(
                "objective `{metric}`: want e.g. NDCG@100, RecallLiang@20 or AUC"
            ))
        })?;
    Ok(RankingOptions {
        ks: vec![k],
        auc: false,
        ..RankingOptions::default()
    })
}

/// Fits `trials` settings (the default first) on the validation task and keeps the best by `metric`.
/// `on_trial` sees each finished trial (for progress output).
pub fn random_search(
    base: &ModelSpec,
    space: &SearchSpace,
    task: &EvalTask,
    metric: &str,
    trials: usize,
    seed: u64,
    on_trial: &mut dyn FnMut(usize, &Trial),
) -> Result<TuneResult> {
    let opts = objective_options(metric)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for n in 0..trials.max(1) {
        let spec = if n == 0 {
            base.clone()
        } else {
            let values: Map<String, Value> = space
                .iter()
                .map(|(k, p)| (k.clone(), p.sample(&mut rng)))
                .collect();
            with_values(base, &values)?
        };
        let t0 = Instant::now();
        let model = spec
            .try_fit_ordered(&task.train, Some(&task.train_order))
            .map_err(|e| {
                EvalError::InvalidOption(format!(
                    "cannot fit {}: {e}",
                    serde_json::to_string(&spec).unwrap_or_default()
                ))
            })?;
        let fit_s = t0.elapsed().as_secs_f64();
        let result = evaluate_ranking(model.as_ref(), task, &opts, &|_| {});
        let column = result.per_user.columns.get(metric).ok_or_else(|| {
            EvalError::InvalidOption(format!(
                "unknown objective `{metric}` (e.g. NDCG@100, RecallLiang@20, MAP@10, AUC)"
            ))
        })?;
        let trial = Trial {
            spec,
            value: mean(&defined(column)),
            fit_s,
        };
        on_trial(n, &trial);
        out.push(trial);
    }
    let best = out
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.value.total_cmp(&b.1.value).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i);
    Ok(TuneResult {
        metric: metric.to_string(),
        seed,
        space: space.clone(),
        trials: out,
        best,
    })
}

/// The reusable outcome of a search: the best spec, and how it was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunedConfig {
    pub model: ModelSpec,
    pub tuned: TunedOn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunedOn {
    pub metric: String,
    /// Validation value of the best setting, and of the default setting.
    pub value: f64,
    pub default_value: f64,
    pub trials: usize,
    pub seed: u64,
    pub split: String,
}

impl TunedConfig {
    pub fn new(result: &TuneResult, split: &str) -> Self {
        let best = result.best_trial();
        TunedConfig {
            model: best.spec.clone(),
            tuned: TunedOn {
                metric: result.metric.clone(),
                value: best.value,
                default_value: result.trials[0].value,
                trials: result.trials.len(),
                seed: result.seed,
                split: split.to_string(),
            },
        }
    }

    /// TOML when the path ends in `.toml`, JSON otherwise. Either way the chosen model sits where
    /// the engine's configuration keeps it, `train.model`, so a TOML file from `cairn tune` is a
    /// configuration `cairn serve --config` and `cairn train --config` read as it is. How it was
    /// tuned goes in comments above it in TOML (the server's configuration refuses unknown keys),
    /// and beside it as `tuned` in JSON.
    pub fn write(&self, path: &std::path::Path) -> Result<()> {
        #[derive(Serialize)]
        struct Train<'a> {
            model: &'a ModelSpec,
        }
        #[derive(Serialize)]
        struct File<'a> {
            train: Train<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            tuned: Option<&'a TunedOn>,
        }
        let text = if path.extension().is_some_and(|e| e == "toml") {
            let file = File {
                train: Train { model: &self.model },
                tuned: None,
            };
            let body = toml::to_string(&file)
                .map_err(|e| EvalError::InvalidOption(format!("cannot write TOML: {e}")))?;
            let t = &self.tuned;
            format!(
                "# Written by `cairn tune`: the best of {} trials on {} by {} on the validation \
                 users ({:.4}; the default setting {:.4}), seed {}.\n\
                 # Serve or train with it: `cairn serve --config FILE`, `cairn train --config FILE`;\n\
                 # score it on a test split: `cairn eval --model-file FILE`.\n\n{body}",
                t.trials, t.split, t.metric, t.value, t.default_value, t.seed
            )
        } else {
            serde_json::to_string_pretty(&File {
                train: Train { model: &self.model },
                tuned: Some(&self.tuned),
            })?
        };
        std::fs::write(path, text).map_err(|e| EvalError::io(path, e))
    }

    /// Reads the model of a file written by [`TunedConfig::write`], of any TOML or JSON with a
    /// `train.model` table (a server configuration), or of the `model` table that `cairn tune`
    /// wrote before it wrote `train.model`.
    pub fn read_model(path: &std::path::Path) -> Result<ModelSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        #[derive(Deserialize)]
        struct Train {
            model: Option<ModelSpec>,
        }
        #[derive(Deserialize)]
        struct AnyLayout {
            train: Option<Train>,
            model: Option<ModelSpec>,
        }
        let parsed: std::result::Result<AnyLayout, String> =
            if path.extension().is_some_and(|e| e == "toml") {
                toml::from_str(&text).map_err(|e| e.to_string())
            } else {
                serde_json::from_str(&text).map_err(|e| e.to_string())
            };
        let not_a_model = |e: String| {
            EvalError::InvalidOption(format!(
                "{}: not a model configuration: {e}",
                path.display()
            ))
        };
        let parsed = parsed.map_err(not_a_model)?;
        parsed
            .train
            .and_then(|t| t.model)
            .or(parsed.model)
            .ok_or_else(|| not_a_model("no `train.model` table".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_models::ItemKnnConfig;

    #[test]
    fn default_space_varies_quality_knobs_only() {
        let spec = ModelSpec::ItemKnn(ItemKnnConfig::default());
        let space = default_space(&spec).unwrap();
        assert!(space.contains_key("neighbours") && space.contains_key("shrinkage"));
        assert!(!space.contains_key("max_user_items"));
        assert_eq!(
            space["neighbours"],
            Param::Int {
                low: 25,
                high: 400,
                log: true
            }
        );
        assert!(default_space(&ModelSpec::Popularity).unwrap().is_empty());
    }

    #[test]
    fn parses_spaces_and_rejects_bad_entries() {
        let s =
            parse_space("neighbours=int:10:200:log, shrinkage=float:0:50,kind=choice:a|b").unwrap();
        assert_eq!(
            s["neighbours"],
            Param::Int {
                low: 10,
                high: 200,
                log: true
            }
        );
        assert_eq!(
            s["shrinkage"],
            Param::Float {
                low: 0.0,
                high: 50.0,
                log: false
            }
        );
        assert_eq!(
            s["kind"],
            Param::Choice {
                values: vec![Value::from("a"), Value::from("b")]
            }
        );
        assert!(parse_space("x=int:5:1").is_err());
        assert!(parse_space("x=normal:0:1").is_err());
        assert!(parse_space("nonsense").is_err());
    }

    #[test]
    fn samples_stay_in_range_and_unknown_names_are_errors() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let p = Param::Int {
            low: 10,
            high: 1000,
            log: true,
        };
        for _ in 0..200 {
            let v = p.sample(&mut rng).as_i64().unwrap();
            assert!((10..=1000).contains(&v));
        }
        let base = ModelSpec::ItemKnn(ItemKnnConfig::default());
        let mut values = Map::new();
        values.insert("neighbours".into(), Value::from(7));
        let ModelSpec::ItemKnn(c) = with_values(&base, &values).unwrap() else {
            panic!("item-knn")
        };
        assert_eq!(c.neighbours, 7);
        values.insert("nope".into(), Value::from(1));
        assert!(with_values(&base, &values).is_err());
    }

    #[test]
    fn tuned_config_round_trips_through_toml_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ModelSpec::ItemKnn(ItemKnnConfig {
            neighbours: 42,
            ..ItemKnnConfig::default()
        });
        let cfg = TunedConfig {
            model: spec.clone(),
            tuned: TunedOn {
                metric: "NDCG@100".into(),
                value: 0.3,
                default_value: 0.2,
                trials: 5,
                seed: 1,
                split: "x".into(),
            },
        };
        for name in ["best.toml", "best.json"] {
            let path = dir.path().join(name);
            cfg.write(&path).unwrap();
            assert_eq!(TunedConfig::read_model(&path).unwrap(), spec);
        }
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "model = 3").unwrap();
        assert!(TunedConfig::read_model(&bad).is_err());
        let empty = dir.path().join("empty.toml");
        std::fs::write(&empty, "[serve]\ndefault_k = 5\n").unwrap();
        let err = TunedConfig::read_model(&empty).unwrap_err().to_string();
        assert!(err.contains("no `train.model`"), "{err}");
        // Files from earlier versions kept the model at the top level.
        let old = dir.path().join("old.toml");
        #[derive(Serialize)]
        struct Old<'a> {
            model: &'a ModelSpec,
        }
        std::fs::write(&old, toml::to_string(&Old { model: &spec }).unwrap()).unwrap();
        assert_eq!(TunedConfig::read_model(&old).unwrap(), spec);
        // The TOML says how it was tuned, in comments, and keeps the model under `train`.
        let text = std::fs::read_to_string(dir.path().join("best.toml")).unwrap();
        assert!(
            text.starts_with("# Written by `cairn tune`: the best of 5 trials on x"),
            "{text}"
        );
        assert!(text.contains("[train.model]"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("best.json")).unwrap())
                .unwrap();
        assert_eq!(json["tuned"]["trials"], 5);
        assert_eq!(json["train"]["model"]["neighbours"], 42);
    }

    #[test]
    fn objective_parsing() {
        assert_eq!(objective_options("NDCG@100").unwrap().ks, vec![100]);
        assert!(objective_options("AUC").unwrap().auc);
        assert!(objective_options("NDCG").is_err());
    }
}
