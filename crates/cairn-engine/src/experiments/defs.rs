//! An experiment's definition, its checks, and its assignment rule.

use cairn_experiment::{ExperimentSpec, NamespaceSlot, VariantSpec, NAMESPACE_BUCKETS};
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// `ab`: each user sees one variant's lists. `interleaving`: each user sees the team-draft
/// interleave of two variants' lists, and clicks credit the variant that picked the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentKind {
    Ab,
    Interleaving,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentStatus {
    /// Serving its variants.
    Running,
    /// Stopped without a ship; serves nothing, its results stay readable.
    Stopped,
    /// A variant was shipped (see [`Shipped`]); serves nothing.
    Shipped,
}

/// One arm: a model version from the registry and/or a placement's configuration; what it leaves
/// out is the control's (the champion, the experiment's placement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantDef {
    pub name: String,
    /// Relative share of the experiment's users (ignored by interleaving).
    pub weight: u32,
    pub model_version: Option<String>,
    /// A configured placement whose pipeline configuration this variant serves.
    pub placement: Option<String>,
}

/// What a client asks to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExperiment {
    /// Letters, digits, `-`, `_` and `.`, at most 64.
    pub id: String,
    pub description: String,
    pub kind: ExperimentKind,
    /// The placement whose requests the experiment takes; `serve.default_placement` when absent.
    pub placement: Option<String>,
    /// The first is the control.
    pub variants: Vec<VariantDef>,
    /// Experiments of one namespace are mutually exclusive; absent: a namespace of its own.
    pub namespace: Option<String>,
    /// Share of all users in the experiment, in (0, 1], in steps of 0.0001.
    pub traffic: f64,
    /// Users at which a decision is expected (tunes the always-valid intervals).
    pub planned_users: u64,
    /// The assignment hash's salt; `experiment/<id>` when absent, so every replica with the same
    /// definition assigns alike.
    pub salt: Option<String>,
}

/// How a variant was shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipped {
    pub variant: String,
    pub at: i64,
    pub by: String,
    pub reason: String,
    /// The model version promoted to champion through the registry.
    pub promoted_model: Option<String>,
    /// The placement whose configuration now serves the experiment's placement.
    pub default_placement: Option<String>,
}

/// An experiment as stored in `data_dir/experiments/defs/<id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    pub id: String,
    pub description: String,
    pub kind: ExperimentKind,
    pub placement: String,
    pub variants: Vec<VariantDef>,
    /// The namespace as asked for (`None`: the experiment's own).
    pub namespace: Option<String>,
    pub traffic: f64,
    /// The namespace bucket range the experiment owns.
    pub slot: NamespaceSlot,
    pub salt: String,
    pub planned_users: u64,
    pub status: ExperimentStatus,
    pub created_at: i64,
    pub created_by: String,
    pub stopped_at: Option<i64>,
    pub shipped: Option<Shipped>,
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub at: i64,
    pub experiment: String,
    /// `created`, `stopped` or `shipped`.
    pub action: String,
    pub by: String,
    pub detail: serde_json::Value,
}

impl Experiment {
    /// The assignment rule: the salted hash over the experiment's namespace range.
    pub fn spec(&self) -> ExperimentSpec {
        ExperimentSpec {
            key: self.id.clone(),
            salt: self.salt.clone(),
            variants: self
                .variants
                .iter()
                .map(|v| VariantSpec {
                    name: v.name.clone(),
                    weight: v.weight,
                })
                .collect(),
            namespace: Some(self.slot.clone()),
        }
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> EngineError {
    EngineError::invalid(field, message)
}

fn check_name(field: &str, name: &str) -> Result<(), EngineError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!(
                "`{name}` is not a name: use 1 to 64 letters, digits, `-`, `_` or `.`, not \
                 starting with `.`"
            ),
        ))
    }
}

impl NewExperiment {
    /// Checks everything that needs no other state, and builds the experiment (its bucket range
    /// starts at 0; the caller moves it to a free range of the namespace).
    pub(crate) fn into_experiment(
        self,
        known_placements: &[&str],
        default_placement: &str,
        who: &str,
        now: i64,
    ) -> Result<Experiment, EngineError> {
        check_name("id", &self.id)?;
        if self.description.len() > 1000 {
            return Err(invalid("description", "is longer than 1000 bytes"));
        }
        let placement = self
            .placement
            .clone()
            .unwrap_or_else(|| default_placement.to_string());
        let check_placement = |field: &str, p: &str| {
            if known_placements.contains(&p) {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    format!(
                        "unknown placement `{p}`; configured: {}",
                        known_placements.join(", ")
                    ),
                ))
            }
        };
        check_placement("placement", &placement)?;
        match self.kind {
            ExperimentKind::Ab if self.variants.len() < 2 => {
                return Err(invalid(
                    "variants",
                    "an A/B experiment needs at least two variants (the first is the control)",
                ))
            }
            ExperimentKind::Interleaving if self.variants.len() != 2 => {
                return Err(invalid(
                    "variants",
                    "an interleaving experiment has exactly two variants: control and treatment",
                ))
            }
            _ => {}
        }
        if self.variants.len() > 16 {
            return Err(invalid("variants", "at most 16 variants"));
        }
        for (i, v) in self.variants.iter().enumerate() {
            check_name(&format!("variants[{i}].name"), &v.name)?;
            if v.name == super::INTERLEAVED {
                return Err(invalid(
                    format!("variants[{i}].name"),
                    "`interleaved` is the name interleaved lists carry; choose another",
                ));
            }
            if self.variants[..i].iter().any(|w| w.name == v.name) {
                return Err(invalid(
                    format!("variants[{i}].name"),
                    format!("`{}` appears twice", v.name),
                ));
            }
            if v.weight == 0 || v.weight > 1_000_000 {
                return Err(invalid(
                    format!("variants[{i}].weight"),
                    "must be between 1 and 1000000",
                ));
            }
            if let Some(p) = &v.placement {
                check_placement(&format!("variants[{i}].placement"), p)?;
            }
            if let Some(m) = &v.model_version {
                cairn_core::validate::check_id(&format!("variants[{i}].model_version"), m)?;
            }
        }
        let same = |a: &VariantDef, b: &VariantDef| {
            a.model_version == b.model_version && a.placement == b.placement
        };
        if self.kind == ExperimentKind::Interleaving && same(&self.variants[0], &self.variants[1]) {
            return Err(invalid(
                "variants",
                "the two variants serve the same model and placement; interleaving them measures nothing",
            ));
        }
        if !(self.traffic > 0.0 && self.traffic <= 1.0) {
            return Err(invalid(
                "traffic",
                format!("{} is not a share in (0, 1]", self.traffic),
            ));
        }
        let width = (self.traffic * NAMESPACE_BUCKETS as f64).round() as u32;
        if width == 0 {
            return Err(invalid(
                "traffic",
                format!("{} is below the smallest share, 0.0001", self.traffic),
            ));
        }
        if let Some(ns) = &self.namespace {
            check_name("namespace", ns)?;
        }
        if self.planned_users == 0 {
            return Err(invalid("planned_users", "must be at least 1"));
        }
        let salt = self
            .salt
            .clone()
            .unwrap_or_else(|| format!("experiment/{}", self.id));
        cairn_core::validate::check_id("salt", &salt)?;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| format!("experiment/{}", self.id));
        Ok(Experiment {
            slot: NamespaceSlot {
                namespace,
                start: 0,
                end: width,
            },
            id: self.id,
            description: self.description,
            kind: self.kind,
            placement,
            variants: self.variants,
            namespace: self.namespace,
            traffic: self.traffic,
            salt,
            planned_users: self.planned_users,
            status: ExperimentStatus::Running,
            created_at: now,
            created_by: who.to_string(),
            stopped_at: None,
            shipped: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(kind: ExperimentKind, variants: &[(&str, Option<&str>)]) -> NewExperiment {
        NewExperiment {
            id: "exp-1".into(),
            description: String::new(),
            kind,
            placement: None,
            variants: variants
                .iter()
                .map(|(n, p)| VariantDef {
                    name: n.to_string(),
                    weight: 1,
                    model_version: None,
                    placement: p.map(str::to_string),
                })
                .collect(),
            namespace: None,
            traffic: 0.5,
            planned_users: 1000,
            salt: None,
        }
    }

    fn build(n: NewExperiment) -> Result<Experiment, EngineError> {
        n.into_experiment(&["home", "cart"], "home", "test", 1)
    }

    #[test]
    fn a_valid_definition_gets_its_slot_and_salt() {
        let e = build(new(
            ExperimentKind::Ab,
            &[("control", None), ("cart", Some("cart"))],
        ))
        .unwrap();
        assert_eq!(e.placement, "home");
        assert_eq!(e.salt, "experiment/exp-1");
        assert_eq!((e.slot.start, e.slot.end), (0, 5000));
        assert_eq!(e.slot.namespace, "experiment/exp-1");
        assert!(e.spec().validate().is_ok());
    }

    #[test]
    fn bad_definitions_name_the_field() {
        let field = |n: NewExperiment| match build(n) {
            Err(EngineError::Invalid(v)) => v.field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(new(ExperimentKind::Ab, &[("control", None)])),
            "variants"
        );
        assert_eq!(
            field(new(
                ExperimentKind::Interleaving,
                &[("a", None), ("b", Some("cart")), ("c", None)]
            )),
            "variants"
        );
        assert_eq!(
            field(new(ExperimentKind::Ab, &[("a", None), ("a", Some("cart"))])),
            "variants[1].name"
        );
        assert_eq!(
            field(new(ExperimentKind::Ab, &[("a", None), ("b", Some("nope"))])),
            "variants[1].placement"
        );
        let mut n = new(ExperimentKind::Ab, &[("a", None), ("b", None)]);
        n.traffic = 1.5;
        assert_eq!(field(n), "traffic");
        let mut n = new(ExperimentKind::Ab, &[("a", None), ("b", None)]);
        n.id = "../x".into();
        assert_eq!(field(n), "id");
        let mut n = new(ExperimentKind::Ab, &[("a", None), ("b", None)]);
        n.variants[1].weight = 0;
        assert_eq!(field(n), "variants[1].weight");
    }
}
