//! The heads a server answers with: intent sets by name and the emotion head, loaded at start-up
//! from `builtin:` names (shipped in the binary) or folders, checked against the served encoders.

use super::config::{EmotionConfig, IntentConfig};
use super::emotion::EscalationConfig;
use super::head::{Head, Kind};
use crate::models::config::ModelConfig;
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

macro_rules! builtin {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../models/heads/", $name, "/head.json")),
            include_bytes!(concat!("../../models/heads/", $name, "/head.safetensors")),
            None,
        )
    };
    ($name:literal, tuned) => {
        (
            $name,
            include_str!(concat!("../../models/heads/", $name, "/head.json")),
            include_bytes!(concat!("../../models/heads/", $name, "/head.safetensors")),
            Some(
                include_bytes!(concat!("../../models/heads/", $name, "/layers.safetensors"))
                    as &[u8],
            ),
        )
    };
}

type Builtin = (
    &'static str,
    &'static str,
    &'static [u8],
    Option<&'static [u8]>,
);

/// The shipped heads: (name, head.json, head.safetensors, layers.safetensors of heads that
/// fine-tuned the encoder's top layers), trained by scripts/train_heads.sh.
const BUILTIN: &[Builtin] = &[
    builtin!("bitext"),
    builtin!("banking77", tuned),
    builtin!("clinc150", tuned),
    builtin!("goemotions", tuned),
    builtin!("escalation", tuned),
    builtin!("abuse", tuned),
];

pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|b| b.0).collect()
}

/// Load `builtin:NAME` or a head folder.
pub fn load_head(source: &str) -> Result<Head> {
    if let Some(name) = source.strip_prefix("builtin:") {
        let Some((_, meta, weights, layers)) = BUILTIN.iter().find(|b| b.0 == name) else {
            bail!(
                "no built-in head `{name}` (built-in: {})",
                builtin_names().join(", ")
            );
        };
        return Head::from_bytes(meta, weights, *layers)
            .with_context(|| format!("built-in head `{name}`"));
    }
    Head::load(Path::new(source))
}

/// The label of an abuse head that is the signal.
pub const ABUSIVE: &str = "abusive";

#[derive(Default)]
pub struct HeadRegistry {
    pub intents: BTreeMap<String, Arc<Head>>,
    pub default_intent: String,
    pub emotion: Option<Arc<Head>>,
    /// The abusive-language head (its `abusive` label is the signal).
    pub abuse: Option<Arc<Head>>,
    /// The escalation head (its `escalate` label is the signal).
    pub escalation_head: Option<Arc<Head>>,
    pub escalation: EscalationConfig,
}

impl HeadRegistry {
    /// Every head: the intent sets, then the emotion and abuse heads.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Head>> {
        self.intents
            .values()
            .chain(self.emotion.iter())
            .chain(self.abuse.iter())
            .chain(self.escalation_head.iter())
    }

    /// Every configured head, each checked against the encoder (name and prefix) it was trained on
    /// among `models`.
    pub fn load(
        intent: &IntentConfig,
        emotion: &EmotionConfig,
        models: &[ModelConfig],
    ) -> Result<Self> {
        let check = |h: &Head, what: &str| -> Result<()> {
            let Some(m) = models.iter().find(|m| m.name == h.meta.encoder) else {
                bail!(
                    "{what}: trained on encoder `{}`, which is not among the configured models",
                    h.meta.encoder
                );
            };
            ensure!(
                m.prefix == h.meta.prefix,
                "{what}: trained with prefix {:?}, but model `{}` is configured with {:?}",
                h.meta.prefix,
                m.name,
                m.prefix
            );
            Ok(())
        };
        let mut intents = BTreeMap::new();
        for (i, s) in intent.sets.iter().enumerate() {
            let what = format!("intent.sets[{i}] `{}`", s.name);
            let h = load_head(&s.source).with_context(|| what.clone())?;
            ensure!(
                h.meta.kind == Kind::Softmax,
                "{what}: not an intent (softmax) head"
            );
            check(&h, &what)?;
            intents.insert(s.name.clone(), Arc::new(h));
        }
        // A sigmoid head from `source` ("" for none) with `label` among its labels (any for None).
        let sigmoid = |source: &str, key: &str, label: Option<&str>| -> Result<Option<Arc<Head>>> {
            if source.is_empty() {
                return Ok(None);
            }
            let h = load_head(source).with_context(|| key.to_string())?;
            ensure!(
                h.meta.kind == Kind::Sigmoid
                    && label.is_none_or(|l| h.meta.labels.iter().any(|x| x == l)),
                "{key}: not a multi-label (sigmoid) head{}",
                label.map_or(String::new(), |l| format!(" with an `{l}` label"))
            );
            check(&h, key)?;
            Ok(Some(Arc::new(h)))
        };
        let emotion_head = sigmoid(&emotion.head, "emotion.head", None)?;
        let abuse = sigmoid(&emotion.abuse_head, "emotion.abuse_head", Some(ABUSIVE))?;
        let escalation_head = sigmoid(
            &emotion.escalation_head,
            "emotion.escalation_head",
            Some(super::calibrate::ESCALATE),
        )?;
        Ok(HeadRegistry {
            intents,
            default_intent: intent.default_set.clone(),
            emotion: emotion_head,
            abuse,
            escalation_head,
            escalation: EscalationConfig {
                thresholds: emotion.thresholds.clone(),
                head: emotion.escalation_threshold,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn builtins_load_and_are_checked_against_the_encoder() {
        let cfg = Config::default();
        let reg = HeadRegistry::load(&cfg.intent, &cfg.emotion, &cfg.models).unwrap();
        assert_eq!(reg.intents.len(), 3);
        assert!(reg
            .emotion
            .as_ref()
            .is_some_and(|h| h.meta.labels.len() == 28));
        for h in reg.intents.values() {
            assert_eq!(h.meta.encoder, "multilingual-e5-small");
        }
        // A head served without its encoder, or with another prefix, is refused at start.
        let mut wrong_prefix = Config::default();
        wrong_prefix.models[0].prefix = String::new();
        let e = HeadRegistry::load(
            &wrong_prefix.intent,
            &wrong_prefix.emotion,
            &wrong_prefix.models,
        )
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
        assert!(e.contains("prefix"), "{e}");
        let mut no_encoder = Config::default();
        no_encoder
            .models
            .retain(|m| m.name != "multilingual-e5-small");
        no_encoder.default_model = no_encoder.models[0].name.clone();
        assert!(
            HeadRegistry::load(&no_encoder.intent, &no_encoder.emotion, &no_encoder.models)
                .is_err()
        );
        assert!(load_head("builtin:nope").is_err());
        assert!(load_head("/nonexistent/head").is_err());
    }
}
