//! A trained classification head over sentence embeddings: weights, labels, calibration,
//! thresholds; plain-Rust inference (tiny matmuls), saved as `head.safetensors` + `head.json`.

use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Softmax (one label: intents) or sigmoid (any number of labels: emotions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Softmax,
    Sigmoid,
}

/// Everything about a head except its weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadMeta {
    pub name: String,
    /// `intent` or `emotion`.
    pub task: String,
    pub kind: Kind,
    pub labels: Vec<String>,
    /// The encoder the head was trained on (model name) and the prefix it used.
    pub encoder: String,
    pub prefix: String,
    pub dim: usize,
    /// Width of the hidden layer (0: a single linear layer).
    pub hidden: usize,
    /// Softmax temperature fitted on held-out data (calibrated confidences).
    pub temperature: f32,
    /// Softmax heads: below this calibrated top score the answer is out of scope.
    #[serde(default)]
    pub oos_threshold: Option<f32>,
    /// Softmax heads: the label that means "out of scope" in the training data, if any.
    #[serde(default)]
    pub oos_label: Option<String>,
    /// Sigmoid heads: one decision threshold per label.
    #[serde(default)]
    pub thresholds: Vec<f32>,
    /// How it was trained and what it scored (free-form, for the model card).
    #[serde(default)]
    pub training: serde_json::Value,
    /// The encoder's top layers this head fine-tuned (shipped beside it in `layers.safetensors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuned_layers: Option<TunedLayers>,
    /// Calibration of its own for texts in these languages (ISO 639-1, from the language
    /// detector); other languages use the head's global calibration above.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub languages: BTreeMap<String, LangCalibration>,
}

/// One language's calibration, fitted on that language's held-out examples.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LangCalibration {
    /// Softmax heads: temperature and out-of-scope threshold for this language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oos_threshold: Option<f32>,
    /// Sigmoid heads: per-label decision thresholds for this language (empty: the global ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<f32>,
    /// Emotion heads: a logit offset per support group (its score is shifted so that this
    /// language's messages escalate at the configured thresholds as the tuning data says).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group_offsets: BTreeMap<String, f32>,
    /// How many held-out examples of the language it was fitted on, and its calibration error
    /// there (expected calibration error of the top score, 10 bins) before and after.
    #[serde(default)]
    pub examples: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ece_before: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ece_after: Option<f32>,
}

/// Fine-tuned replacements of layers `first..first + count` of the encoder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TunedLayers {
    pub first: usize,
    pub count: usize,
    /// sha256 of `layers.safetensors`.
    pub sha256: String,
}

/// Weights in row-major order: `w1` [hidden or labels, dim], then optionally `w2` [labels, hidden].
#[derive(Debug, Clone)]
pub struct Weights {
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    pub w2: Option<(Vec<f32>, Vec<f32>)>,
}

#[derive(Clone)]
pub struct Head {
    pub meta: HeadMeta,
    pub weights: Weights,
    /// `layers.safetensors` when the head fine-tuned the encoder's top layers.
    pub layers: Option<std::sync::Arc<[u8]>>,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("meta", &self.meta)
            .field("layers", &self.layers.as_ref().map(|l| l.len()))
            .finish()
    }
}

impl Head {
    /// The key of this head's fine-tuned encoder layers in the served model, if it has any.
    pub fn branch_key(&self) -> Option<&str> {
        self.meta.tuned_layers.as_ref().map(|t| t.sha256.as_str())
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

fn affine(w: &[f32], b: &[f32], x: &[f32]) -> Vec<f32> {
    let n = x.len();
    b.iter()
        .enumerate()
        .map(|(o, bias)| {
            bias + w[o * n..(o + 1) * n]
                .iter()
                .zip(x)
                .map(|(a, b)| a * b)
                .sum::<f32>()
        })
        .collect()
}

/// GELU (tanh approximation), as used in training.
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044_715 * x * x * x)).tanh())
}

pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let m = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits
        .iter()
        .map(|l| ((l - m) / temperature).exp())
        .collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

pub fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Head {
    pub fn check(&self) -> Result<()> {
        let (m, w) = (&self.meta, &self.weights);
        let n = m.labels.len();
        ensure!(n >= 2, "a head needs at least two labels");
        let first = if m.hidden > 0 { m.hidden } else { n };
        // Sizes come from head.json: a product that overflows matches no weights.
        ensure!(
            first.checked_mul(m.dim) == Some(w.w1.len()) && w.b1.len() == first,
            "w1/b1 shape"
        );
        match (&w.w2, m.hidden) {
            (None, 0) => {}
            (Some((w2, b2)), h) if h > 0 => {
                ensure!(
                    n.checked_mul(h) == Some(w2.len()) && b2.len() == n,
                    "w2/b2 shape"
                )
            }
            _ => bail!("hidden size and weights disagree"),
        }
        if m.kind == Kind::Sigmoid {
            ensure!(m.thresholds.len() == n, "one threshold per label");
        }
        ensure!(m.temperature > 0.0, "temperature must be positive");
        for (lang, c) in &m.languages {
            ensure!(
                c.temperature.is_none_or(|t| t > 0.0),
                "languages.{lang}: temperature must be positive"
            );
            ensure!(
                c.thresholds.is_empty() || c.thresholds.len() == n,
                "languages.{lang}: one threshold per label"
            );
        }
        match (&m.tuned_layers, &self.layers) {
            (None, None) => {}
            (Some(t), Some(l)) => ensure!(
                sha256_hex(l) == t.sha256,
                "layers.safetensors does not match the sha256 in head.json"
            ),
            (Some(_), None) => {
                bail!("head.json names tuned layers but layers.safetensors is missing")
            }
            (None, Some(_)) => bail!("tuned layers without `tuned_layers` in head.json"),
        }
        Ok(())
    }

    /// Raw scores for one embedding.
    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        let w = &self.weights;
        let h = affine(&w.w1, &w.b1, x);
        match &w.w2 {
            None => h,
            Some((w2, b2)) => affine(w2, b2, &h.into_iter().map(gelu).collect::<Vec<_>>()),
        }
    }

    /// Calibrated probabilities: softmax with the fitted temperature, or per-label sigmoids
    /// shifted so that each label's tuned threshold sits at 0.5 (scores comparable across labels:
    /// at least 0.5 means the label is detected). Without thresholds: plain sigmoids. `lang`: the
    /// text's language; its own calibration applies when the head has one.
    pub fn probs(&self, x: &[f32], lang: Option<&str>) -> Vec<f32> {
        let l = self.logits(x);
        let cal = self.calibration(lang);
        match self.meta.kind {
            Kind::Softmax => softmax(
                &l,
                cal.and_then(|c| c.temperature)
                    .unwrap_or(self.meta.temperature),
            ),
            Kind::Sigmoid => {
                let th = match cal {
                    Some(c) if c.thresholds.len() == l.len() => &c.thresholds,
                    _ => &self.meta.thresholds,
                };
                if th.len() == l.len() {
                    l.into_iter()
                        .zip(th)
                        .map(|(z, t)| sigmoid(z - logit(*t)))
                        .collect()
                } else {
                    l.into_iter().map(sigmoid).collect()
                }
            }
        }
    }

    /// The calibration of `lang`, when the head has one of its own for it.
    pub fn calibration(&self, lang: Option<&str>) -> Option<&LangCalibration> {
        lang.and_then(|l| self.meta.languages.get(l))
    }

    /// The out-of-scope threshold for `lang`.
    pub fn oos_threshold(&self, lang: Option<&str>) -> Option<f32> {
        self.calibration(lang)
            .and_then(|c| c.oos_threshold)
            .or(self.meta.oos_threshold)
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        self.check()?;
        std::fs::create_dir_all(dir)?;
        let mut t = HashMap::new();
        let (m, w) = (&self.meta, &self.weights);
        let first = if m.hidden > 0 {
            m.hidden
        } else {
            m.labels.len()
        };
        t.insert(
            "w1".to_string(),
            Tensor::from_slice(&w.w1, (first, m.dim), &Device::Cpu)?,
        );
        t.insert(
            "b1".to_string(),
            Tensor::from_slice(&w.b1, first, &Device::Cpu)?,
        );
        if let Some((w2, b2)) = &w.w2 {
            t.insert(
                "w2".to_string(),
                Tensor::from_slice(w2, (m.labels.len(), m.hidden), &Device::Cpu)?,
            );
            t.insert(
                "b2".to_string(),
                Tensor::from_slice(b2, m.labels.len(), &Device::Cpu)?,
            );
        }
        candle_core::safetensors::save(&t, dir.join("head.safetensors"))?;
        if let Some(l) = &self.layers {
            std::fs::write(dir.join("layers.safetensors"), l)?;
        }
        std::fs::write(
            dir.join("head.json"),
            serde_json::to_string_pretty(&self.meta)? + "\n",
        )?;
        Ok(())
    }

    pub fn load(dir: &Path) -> Result<Head> {
        let meta_text = std::fs::read_to_string(dir.join("head.json"))
            .with_context(|| format!("reading {}/head.json", dir.display()))?;
        let weights = std::fs::read(dir.join("head.safetensors"))
            .with_context(|| format!("reading {}/head.safetensors", dir.display()))?;
        let layers = if meta_text.contains("\"tuned_layers\"") {
            Some(
                std::fs::read(dir.join("layers.safetensors"))
                    .with_context(|| format!("reading {}/layers.safetensors", dir.display()))?,
            )
        } else {
            None
        };
        Head::from_bytes(&meta_text, &weights, layers.as_deref())
            .with_context(|| format!("head in {}", dir.display()))
    }

    /// From the two files' contents (used for heads compiled into the binary).
    /// `layers`: the `layers.safetensors` of a head with fine-tuned encoder layers.
    pub fn from_bytes(meta_json: &str, safetensors: &[u8], layers: Option<&[u8]>) -> Result<Head> {
        let meta: HeadMeta = serde_json::from_str(meta_json).context("head.json")?;
        let t = candle_core::safetensors::load_buffer(safetensors, &Device::Cpu)?;
        let get = |k: &str| -> Result<Vec<f32>> {
            t.get(k)
                .with_context(|| format!("no tensor {k}"))?
                .flatten_all()?
                .to_vec1::<f32>()
                .map_err(Into::into)
        };
        let w2 = match (t.contains_key("w2"), t.contains_key("b2")) {
            (true, true) => Some((get("w2")?, get("b2")?)),
            _ => None,
        };
        let head = Head {
            meta,
            weights: Weights {
                w1: get("w1")?,
                b1: get("b1")?,
                w2,
            },
            layers: layers.map(Into::into),
        };
        head.check()?;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(hidden: usize) -> Head {
        let (dim, n) = (3, 2);
        let first = if hidden > 0 { hidden } else { n };
        Head {
            meta: HeadMeta {
                name: "t".into(),
                task: "intent".into(),
                kind: Kind::Softmax,
                labels: vec!["a".into(), "b".into()],
                encoder: "e".into(),
                prefix: String::new(),
                dim,
                hidden,
                temperature: 1.0,
                oos_threshold: Some(0.5),
                oos_label: None,
                thresholds: vec![],
                training: serde_json::Value::Null,
                tuned_layers: None,
                languages: BTreeMap::new(),
            },
            weights: Weights {
                w1: (0..first * dim).map(|i| i as f32 * 0.1).collect(),
                b1: vec![0.0; first],
                w2: (hidden > 0).then(|| (vec![0.5; n * hidden], vec![0.0, 1.0])),
            },
            layers: None,
        }
    }

    #[test]
    fn linear_logits_and_roundtrip() {
        let h = tiny(0);
        assert_eq!(h.logits(&[1.0, 0.0, 1.0]), vec![0.2, 0.8]);
        let p = h.probs(&[1.0, 0.0, 1.0], None);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[1] > p[0]);
        let dir = std::env::temp_dir().join(format!("triage-head-{}", std::process::id()));
        for hidden in [0, 4] {
            let h = tiny(hidden);
            h.save(&dir).unwrap();
            let back = Head::load(&dir).unwrap();
            assert_eq!(back.logits(&[0.3, -1.0, 2.0]), h.logits(&[0.3, -1.0, 2.0]));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_language_uses_its_own_calibration() {
        let mut h = tiny(0);
        let x = [1.0, 0.0, 1.0];
        let global = h.predict_intent(&x, 2, Some("zh"));
        h.meta.languages.insert(
            "zh".into(),
            LangCalibration {
                temperature: Some(4.0),
                oos_threshold: Some(0.99),
                ..Default::default()
            },
        );
        let zh = h.predict_intent(&x, 2, Some("zh"));
        let en = h.predict_intent(&x, 2, Some("en"));
        assert_eq!(
            en.score, global.score,
            "other languages keep the global calibration"
        );
        assert!(zh.score < en.score, "a higher temperature flattens: {zh:?}");
        assert!(zh.out_of_scope && !en.out_of_scope);
        // Saved and read back with the head.
        let dir = std::env::temp_dir().join(format!("triage-head-lang-{}", std::process::id()));
        h.save(&dir).unwrap();
        let back = Head::load(&dir).unwrap();
        assert_eq!(back.meta.languages, h.meta.languages);
        let _ = std::fs::remove_dir_all(&dir);
        h.meta.languages.get_mut("zh").unwrap().temperature = Some(0.0);
        assert!(h.check().is_err());
    }

    #[test]
    fn shape_errors_are_caught() {
        let mut h = tiny(0);
        h.weights.b1.pop();
        assert!(h.check().is_err());
    }
}
