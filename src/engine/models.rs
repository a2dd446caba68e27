//! The served embedding models as one service: each configured model's load state (slot), the
//! default model, and encoding (one trunk pass, then the embeddings each head reads). Every
//! feature that embeds text takes this, never the HTTP state.

use super::{EmbedModel, EngineConfig};
use crate::error::{AppError, AppResult};
use crate::heads::registry::HeadRegistry;
use crate::metrics::Metrics;
use crate::models::config::{ModelConfig, Overlong};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Load state of a configured model.
#[derive(Clone)]
pub enum Slot {
    Loading,
    Ready(Arc<EmbedModel>),
    Failed(String),
}

/// What one encoder pass cost.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    /// Tokens fed to the model, special tokens included.
    pub tokens: usize,
    /// Indices of texts cut to the model's token limit.
    pub truncated: Vec<usize>,
}

/// The configured models, by name, and how texts are prepared for them.
pub struct Models {
    default: String,
    /// Each model's configured prefix (`query: ` for e5), by name.
    prefixes: BTreeMap<String, String>,
    overlong: Overlong,
    slots: RwLock<BTreeMap<String, Slot>>,
}

impl Models {
    /// Every model of `configs` still loading; `default` answers when a request names none.
    pub fn new(configs: &[ModelConfig], default: &str, overlong: Overlong) -> Self {
        Models {
            default: default.to_string(),
            prefixes: configs
                .iter()
                .map(|m| (m.name.clone(), m.prefix.clone()))
                .collect(),
            overlong,
            slots: RwLock::new(
                configs
                    .iter()
                    .map(|m| (m.name.clone(), Slot::Loading))
                    .collect(),
            ),
        }
    }

    /// Load every model of `configs` now (blocking), with the fine-tuned layers of `heads`:
    /// for offline commands and tests.
    pub fn load_all(
        &self,
        cfg: &EngineConfig,
        configs: &[ModelConfig],
        home: &Path,
        metrics: Arc<Metrics>,
        heads: &HeadRegistry,
    ) -> anyhow::Result<()> {
        for mc in configs {
            let m = super::load_model(mc, cfg, home, metrics.clone(), heads)?;
            self.set_slot(&mc.name, Slot::Ready(m));
        }
        Ok(())
    }

    /// The configured prefix of the named model.
    pub fn prefix(&self, name: &str) -> Option<&str> {
        self.prefixes.get(name).map(String::as_str)
    }

    /// The name of the default model.
    pub fn default_name(&self) -> &str {
        &self.default
    }

    pub fn set_slot(&self, name: &str, slot: Slot) {
        let mut g = self.slots.write();
        g.insert(name.to_string(), slot);
    }

    pub fn slots(&self) -> BTreeMap<String, Slot> {
        self.slots.read().clone()
    }

    /// True while the named model (or the default) is still loading.
    pub fn loading(&self, name: Option<&str>) -> bool {
        let name = name.unwrap_or(&self.default);
        let slots = self.slots.read();
        matches!(slots.get(name), Some(Slot::Loading))
    }

    /// The named model (or the default), ready to serve.
    pub fn model(&self, name: Option<&str>) -> AppResult<Arc<EmbedModel>> {
        let name = name.unwrap_or(&self.default);
        let slots = self.slots.read();
        match slots.get(name) {
            Some(Slot::Ready(m)) => Ok(m.clone()),
            Some(Slot::Loading) => Err(AppError::Unavailable {
                message: format!("model `{name}` is still loading: see GET /ready"),
            }),
            Some(Slot::Failed(e)) => Err(AppError::Unavailable {
                message: format!("model `{name}` failed to load: {e}"),
            }),
            None => Err(AppError::not_found(
                "model",
                format!(
                    "unknown model `{}`; available: {}",
                    name.chars().take(100).collect::<String>(),
                    slots.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// One encoder pass over `texts` (already checked) with the named model (None: the
    /// default): the embeddings every head reads, and what the pass cost. The queue wait
    /// counts from `admitted` (see [`EmbedModel::embed_branches`]).
    pub async fn encode(
        &self,
        model: Option<&str>,
        texts: Vec<String>,
        admitted: Instant,
    ) -> AppResult<(Arc<EmbedModel>, Vec<Vec<f32>>, Usage)> {
        let (m, e, u) = self.encode_for(model, texts, &[None], admitted).await?;
        Ok((m, e.into_iter().map(|mut v| v.remove(0)).collect(), u))
    }

    /// One trunk pass over `texts`, then per text one embedding for each head in `branches`
    /// (the key of a head's fine-tuned top layers, or None for the plain encoder), in order.
    pub async fn encode_for(
        &self,
        model: Option<&str>,
        texts: Vec<String>,
        branches: &[Option<&str>],
        admitted: Instant,
    ) -> AppResult<(Arc<EmbedModel>, Vec<Vec<Vec<f32>>>, Usage)> {
        let model = self.model(model)?;
        let branches = branches
            .iter()
            .map(|k| model.branch(*k))
            .collect::<AppResult<Vec<_>>>()?;
        let prepared = model.prepare(texts, self.overlong, "texts").await?;
        let usage = Usage {
            tokens: prepared.iter().map(|p| p.ids.len()).sum(),
            truncated: prepared
                .iter()
                .enumerate()
                .filter(|(_, p)| p.truncated())
                .map(|(i, _)| i)
                .collect(),
        };
        let embeddings = model
            .embed_branches(
                prepared.into_iter().map(|p| p.ids).collect(),
                branches,
                admitted,
            )
            .await?;
        Ok((model, embeddings, usage))
    }
}
