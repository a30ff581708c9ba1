//! Ranking models defined above this crate. Evaluation depends only on core and models, so a model
//! that lives higher up (the serving pipeline, which needs the engine's configuration and its own
//! crate) plugs in through [`ExternalModel`]: the binary that knows both sides implements it and
//! hands it to the runner as [`ModelChoice::External`](crate::ModelChoice::External).

use std::fmt;
use std::sync::Arc;

use cairn_models::Recommender;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::split::{SplitSet, Stage};
use crate::task::EvalTask;

/// A ranking model the harness fits per stage without knowing what it is.
pub trait ExternalModel: Send + Sync {
    /// Its name in reports and on the command line.
    fn name(&self) -> &'static str;

    /// Fits the model on one stage. `task` is what registry models see; `split` and `stage` add
    /// what the dense task leaves out (the rows' timestamps, item features by name). The returned
    /// model scores items in `task`'s indices. An error leaves the model out of the stage.
    fn fit(
        &self,
        split: &SplitSet,
        stage: &Stage,
        task: &EvalTask,
    ) -> Result<Box<dyn Recommender>, String>;
}

/// An [`ExternalModel`] as a model choice: reported by its name, compared by its name. It is
/// never read back from a file (model files name registry models), so deserializing one fails.
#[derive(Clone)]
pub struct External(pub Arc<dyn ExternalModel>);

impl fmt::Debug for External {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("External").field(&self.0.name()).finish()
    }
}

impl PartialEq for External {
    fn eq(&self, other: &Self) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Serialize for External {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name())
    }
}

impl<'de> Deserialize<'de> for External {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "an external model is named on the command line, not read from a file",
        ))
    }
}
