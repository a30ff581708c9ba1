//! A personal list from a kept model version that does not serve: the dashboard's preview puts
//! it beside the champion's. Scored as a shadow test scores its challenger (the placement as
//! asked, no experiment routing), and nothing of it reaches serving: no cursor is kept for later
//! pages, the shadow tests, guardrails and drift windows do not see it, and the version is never
//! swapped in. Its model is loaded on demand and at most one such version stays loaded (the last
//! one asked for), so its memory is one model set's whatever is previewed.

use std::sync::Arc;

use cairn_pipeline::ModelSet;
use uuid::Uuid;

use super::{RecommendRequest, Recommendations, Routing};
use crate::{Engine, EngineError};

impl Engine {
    /// The first `req.k` items `version` would recommend for `req` (see the module's docs). The
    /// champion's own version is scored with the serving model, not loaded again. Errors: the
    /// version is unknown (404) or cannot serve (refused by the gate, its file pruned: 409).
    pub fn recommend_with_version(
        &self,
        req: &RecommendRequest,
        version: &str,
    ) -> Result<Recommendations, EngineError> {
        self.check_k(req.k)?;
        cairn_core::validate::check_id("user_id", &req.user_id)?;
        let models = self.preview_models(version)?;
        let stored = RecommendRequest {
            user_id: self.user_key(&req.user_id).into_owned(),
            cursor: None,
            ..req.clone()
        };
        let personal = self.personal_list(&stored, Some(&models), Routing::AsAsked)?;
        let mut items = personal.items;
        items.truncate(req.k);
        Ok(Recommendations {
            recommendation_id: Uuid::new_v4().to_string(),
            model_version: Some(models.version.clone()),
            items,
            next_cursor: None,
            warnings: personal.warnings,
            experiment: None,
        })
    }

    /// The model set of `version`: the serving one, the one loaded for the last preview, or read
    /// from its file now (replacing that one).
    fn preview_models(&self, version: &str) -> Result<Arc<ModelSet>, EngineError> {
        if let Some(m) = self.models().filter(|m| m.version == version) {
            return Ok(m);
        }
        let mut loaded = self.preview_model.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = loaded.as_ref().filter(|m| m.version == version) {
            return Ok(Arc::clone(m));
        }
        // A version names files in the models folder: nothing but a version's characters.
        let plain = version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain || version.contains("..") || !self.registry.exists(version) {
            return Err(EngineError::NotFound {
                kind: "model version",
                id: version.to_string(),
            });
        }
        // Dropped before the next one is read, so two previewed versions never sit in memory
        // beside the champion.
        *loaded = None;
        let meta = self.registry.check_servable(version)?;
        let models = self.load_version(&meta)?;
        *loaded = Some(Arc::clone(&models));
        Ok(models)
    }

    /// The version the preview holds loaded besides the champion, if any.
    pub fn preview_version(&self) -> Option<String> {
        self.preview_model
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|m| m.version.clone())
    }
}
