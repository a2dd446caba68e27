//! Agent procedures (SOP) per intent: a flows file shaped like ABCD's `kb.json` (intent ->
//! ordered actions) with each action's instruction per language, as in its `guidelines.json`.
//! The shipped file covers the `bitext` intents (`models/flows/bitext.json`); `kb.flows` names
//! one that replaces it.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const SHIPPED: &str = include_str!("../../models/flows/bitext.json");

/// One step: the action (an id from `actions`) and what the agent does, per language.
#[derive(Debug, Clone)]
pub struct Step {
    pub action: String,
    /// The action's display name, per language.
    pub name: BTreeMap<String, String>,
    pub text: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Flows {
    by_intent: BTreeMap<String, Vec<Step>>,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    actions: BTreeMap<String, BTreeMap<String, Value>>,
    flows: BTreeMap<String, Vec<BTreeMap<String, String>>>,
}

impl Flows {
    /// The shipped flows.
    pub fn shipped() -> Result<Flows> {
        Self::parse(SHIPPED).context("models/flows/bitext.json")
    }

    /// The flows of `path` (a JSON file like the shipped one).
    pub fn load(path: &Path) -> Result<Flows> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("kb.flows: cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("kb.flows: {}", path.display()))
    }

    fn parse(text: &str) -> Result<Flows> {
        let f: File = serde_json::from_str(text)?;
        let mut by_intent = BTreeMap::new();
        for (intent, steps) in f.flows {
            if steps.is_empty() {
                bail!("flows.{intent}: no steps");
            }
            let mut out = Vec::with_capacity(steps.len());
            for (i, mut s) in steps.into_iter().enumerate() {
                let Some(action) = s.remove("action") else {
                    bail!("flows.{intent}[{i}]: no `action`");
                };
                let Some(def) = f.actions.get(&action) else {
                    bail!("flows.{intent}[{i}]: action `{action}` is not in `actions`");
                };
                if s.is_empty() || s.values().any(|t| t.trim().is_empty()) {
                    bail!("flows.{intent}[{i}]: needs its text in at least one language");
                }
                let name = def
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .filter(|(k, _)| k != "type")
                    .collect();
                out.push(Step {
                    action,
                    name,
                    text: s,
                });
            }
            by_intent.insert(intent, out);
        }
        Ok(Flows { by_intent })
    }

    /// The procedure of `intent`, if the flows have one.
    pub fn steps(&self, intent: &str) -> Option<&[Step]> {
        self.by_intent.get(intent).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.by_intent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_intent.is_empty()
    }
}

impl Step {
    /// The instruction in `language`, else English, else any.
    pub fn text_in(&self, language: Option<&str>) -> &str {
        pick(&self.text, language)
    }

    /// The action's name in `language`, else English, else its id.
    pub fn name_in(&self, language: Option<&str>) -> &str {
        match self.name.is_empty() {
            true => &self.action,
            false => pick(&self.name, language),
        }
    }
}

fn pick<'a>(m: &'a BTreeMap<String, String>, language: Option<&str>) -> &'a str {
    let base = language.map(|l| l.split(['-', '_']).next().unwrap_or(l));
    base.and_then(|l| m.get(l))
        .or_else(|| m.get("en"))
        .or_else(|| m.values().next())
        .map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_flows_cover_the_bitext_intents_in_both_languages() {
        let f = Flows::shipped().unwrap();
        assert_eq!(f.len(), 27);
        let s = f.steps("cancel_order").unwrap();
        assert_eq!(s[0].action, "pull-up-account");
        assert!(s[0].text_in(Some("zh-Hant")).contains("订单号"));
        assert!(s[0].text_in(Some("fr")).contains("order number"));
        assert_eq!(s[0].name_in(Some("zh")), "调出账户");
        for steps in f.by_intent.values() {
            for st in steps {
                assert!(st.text.contains_key("en") && st.text.contains_key("zh"));
            }
        }
    }

    #[test]
    fn a_bad_flows_file_is_named() {
        let e = Flows::parse(r#"{"actions": {}, "flows": {"x": [{"action": "a", "en": "t"}]}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("flows.x[0]: action `a`"), "{e}");
        assert!(Flows::parse(r#"{"flows": {"x": []}}"#).is_err());
        let e = Flows::parse(r#"{"actions": {"a": {}}, "flows": {"x": [{"action": "a"}]}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("at least one language"), "{e}");
    }
}
