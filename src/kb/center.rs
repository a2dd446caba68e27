//! Language centring for cross-lingual search: the encoder puts texts of one language near each
//! other whatever they say, so before the dense search every passage and query embedding loses
//! `alpha` times the mean embedding of its language (`models/kb/centering.json`, made by
//! `scripts/kb_centering.py`; the average of the means for other languages) and is made unit
//! length again. Only for the encoder the means were measured on.

use serde::Deserialize;
use std::collections::BTreeMap;

const SHIPPED: &str = include_str!("../../models/kb/centering.json");

#[derive(Deserialize)]
struct File {
    model: String,
    alpha: f32,
    means: BTreeMap<String, Vec<f32>>,
}

#[derive(Debug, Clone)]
pub struct Centering {
    /// The embedding model (the `model` of stored passages) the means belong to.
    pub model: String,
    /// alpha x mean, per ISO 639-1 language.
    shift: BTreeMap<String, Vec<f32>>,
    /// alpha x the average of the means: other languages and unknown ones.
    other: Vec<f32>,
    /// The languages in slot order (slot `langs.len()` is `other`).
    langs: Vec<String>,
}

impl Centering {
    /// The shipped means when they were measured on `model` (None otherwise, or unreadable).
    pub fn shipped(model: &str) -> Option<Centering> {
        let c = Self::parse(SHIPPED)
            .map_err(|e| tracing::warn!(error = %e, "models/kb/centering.json is unreadable"))
            .ok()?;
        (c.model == model).then_some(c)
    }

    fn parse(text: &str) -> anyhow::Result<Centering> {
        let f: File = serde_json::from_str(text)?;
        let dim = f.means.values().next().map_or(0, Vec::len);
        anyhow::ensure!(
            dim > 0 && f.means.values().all(|m| m.len() == dim),
            "centering: means of unequal or zero width"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&f.alpha),
            "centering: alpha outside 0..=1"
        );
        let mut other = vec![0f32; dim];
        for m in f.means.values() {
            for (o, x) in other.iter_mut().zip(m) {
                *o += x * f.alpha / f.means.len() as f32;
            }
        }
        let langs = f.means.keys().cloned().collect();
        let shift = f
            .means
            .into_iter()
            .map(|(k, m)| (k, m.iter().map(|x| x * f.alpha).collect()))
            .collect();
        Ok(Centering {
            model: f.model,
            shift,
            other,
            langs,
        })
    }

    /// The slot of `language` (region or script suffix ignored): its index among the means,
    /// or the `other` slot after them.
    pub fn slot(&self, language: Option<&str>) -> u8 {
        let base = language.map(|l| l.split(['-', '_']).next().unwrap_or(l));
        let i = base
            .and_then(|l| self.langs.iter().position(|x| x == l))
            .unwrap_or(self.langs.len());
        u8::try_from(i).unwrap_or(u8::MAX)
    }

    /// The shift of `slot`.
    pub fn shift(&self, slot: u8) -> &[f32] {
        self.langs
            .get(slot as usize)
            .and_then(|l| self.shift.get(l))
            .unwrap_or(&self.other)
    }

    /// For a centred query `qc`: `qc . shift` of every slot, in slot order.
    pub fn offsets(&self, qc: &[f32]) -> Vec<f32> {
        (0..=self.langs.len())
            .map(|s| {
                let sh = self.shift(u8::try_from(s).unwrap_or(u8::MAX));
                qc.iter().zip(sh).map(|(a, b)| a * b).sum()
            })
            .collect()
    }

    /// `v` centred for `language` (ISO 639-1, a region or script suffix ignored), unit length.
    /// A vector of another width is returned as it is.
    pub fn apply(&self, v: &[f32], language: Option<&str>) -> Vec<f32> {
        let shift = self.shift(self.slot(language));
        if shift.len() != v.len() {
            return v.to_vec();
        }
        let mut out: Vec<f32> = v.iter().zip(shift).map(|(x, s)| x - s).collect();
        let n = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 0.0 {
            out.iter_mut().for_each(|x| *x /= n);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_by_the_language_mean_and_renormalises() {
        let c = Centering::parse(
            r#"{"model": "m", "alpha": 0.5, "means": {"en": [1.0, 0.0], "zh": [0.0, 1.0]}}"#,
        )
        .unwrap();
        let v = c.apply(&[1.0, 0.0], Some("en"));
        assert_eq!(v, vec![1.0, 0.0]);
        let v = c.apply(&[1.0, 1.0], Some("zh-Hant"));
        let want = [1.0 / 1.25f32.sqrt(), 0.5 / 1.25f32.sqrt()];
        assert!((v[0] - want[0]).abs() < 1e-6 && (v[1] - want[1]).abs() < 1e-6);
        // Other languages: the average of the means.
        let v = c.apply(&[1.0, 1.0], Some("fr"));
        assert!((v[0] - v[1]).abs() < 1e-6);
        assert_eq!(c.apply(&[1.0, 0.0, 0.0], None), vec![1.0, 0.0, 0.0]);
        assert_eq!(
            (
                c.slot(Some("en")),
                c.slot(Some("zh-CN")),
                c.slot(Some("fr"))
            ),
            (0, 1, 2)
        );
        assert_eq!(c.shift(2), &[0.25, 0.25]);
        assert_eq!(c.offsets(&[1.0, 0.0]), vec![0.5, 0.0, 0.25]);
        assert!(Centering::parse(r#"{"model": "m", "alpha": 2, "means": {"en": [1]}}"#).is_err());
    }

    #[test]
    fn the_shipped_means_are_for_the_default_encoder() {
        let c = Centering::shipped("multilingual-e5-small").expect("shipped means");
        assert_eq!(c.shift.get("en").map(Vec::len), Some(384));
        assert!(c.shift.contains_key("zh"));
        assert!(Centering::shipped("all-MiniLM-L6-v2").is_none());
    }
}
