//! The few-shot intents themselves: definitions, their embeddings (with the encoder and prefix
//! they were made with), the JSON file they persist to, and the intents file of the config.

use super::config::FewShotConfig;
use super::files::{decode_vec, encode_vec};
use super::sim::{centroid, normalize};
use super::validate::{check_description, check_examples, check_name};
use crate::error::AppError;
use crate::fsutil::write_atomic;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Where an intent was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `PUT /v1/intents/{name}`.
    Api,
    /// Accepted from a discovery candidate.
    Discovery,
    /// The intents file of the config (`fewshot.file`): read-only over the API.
    File,
}

/// Unit-length embeddings of an intent's examples and what made them.
#[derive(Debug)]
pub struct Embedded {
    pub encoder: String,
    pub prefix: String,
    pub vectors: Vec<Vec<f32>>,
    pub prototype: Vec<f32>,
}

impl Embedded {
    pub fn new(encoder: &str, prefix: &str, vectors: Vec<Vec<f32>>) -> Self {
        let vectors: Vec<Vec<f32>> = vectors.into_iter().map(normalize).collect();
        Embedded {
            encoder: encoder.into(),
            prefix: prefix.into(),
            prototype: centroid(&vectors),
            vectors,
        }
    }
}

/// One few-shot intent.
#[derive(Debug)]
pub struct Intent {
    pub name: String,
    pub set: String,
    pub description: Option<String>,
    pub examples: Vec<String>,
    pub origin: Origin,
    pub updated_at: u64,
    /// None until embedded (intents of the file, or made with another encoder or prefix).
    pub embedded: Option<Arc<Embedded>>,
}

impl Intent {
    /// Embedded with `encoder` and `prefix` (else it must be embedded again before use).
    pub fn ready_for(&self, encoder: &str, prefix: &str) -> Option<&Arc<Embedded>> {
        self.embedded
            .as_ref()
            .filter(|e| e.encoder == encoder && e.prefix == prefix)
    }

    /// The same intent with these embeddings.
    pub fn with_embedded(&self, e: Embedded) -> Intent {
        Intent {
            name: self.name.clone(),
            set: self.set.clone(),
            description: self.description.clone(),
            examples: self.examples.clone(),
            origin: self.origin,
            updated_at: self.updated_at,
            embedded: Some(Arc::new(e)),
        }
    }
}

/// What the store file holds per intent.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    name: String,
    intent_set: String,
    #[serde(default)]
    description: Option<String>,
    examples: Vec<String>,
    origin: Origin,
    updated_at: u64,
    encoder: String,
    prefix: String,
    /// One base64 string (little-endian f32) per example.
    embeddings: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    version: u32,
    intents: Vec<Saved>,
}

/// Read the store file (absent: empty).
pub fn read_store(path: &Path) -> Result<Vec<Intent>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    parse_store(&bytes, &path.display().to_string())
}

/// The store file's contents; `origin` (its path) names it in errors.
pub fn parse_store(bytes: &[u8], origin: &str) -> Result<Vec<Intent>> {
    let f: StoreFile = serde_json::from_slice(bytes)
        .with_context(|| format!("{origin} is not a triage intent store"))?;
    ensure!(f.version == 1, "{origin}: unknown version {}", f.version);
    let mut out = Vec::new();
    for (i, s) in f.intents.into_iter().enumerate() {
        let what = || format!("{origin}: intents[{i}] `{}`", s.name);
        ensure!(
            s.embeddings.len() == s.examples.len() && s.origin != Origin::File,
            "{}: malformed entry",
            what()
        );
        let vectors = s
            .embeddings
            .iter()
            .map(|e| decode_vec(e))
            .collect::<Result<Vec<_>>>()
            .with_context(what)?;
        ensure!(
            vectors.windows(2).all(|w| w[0].len() == w[1].len()),
            "{}: embeddings of different sizes",
            what()
        );
        out.push(Intent {
            embedded: Some(Arc::new(Embedded::new(&s.encoder, &s.prefix, vectors))),
            name: s.name,
            set: s.intent_set,
            description: s.description,
            examples: s.examples,
            origin: s.origin,
            updated_at: s.updated_at,
        });
    }
    Ok(out)
}

/// Write the API- and discovery-made intents that are embedded (atomically).
pub fn write_store(path: &Path, intents: &BTreeMap<String, Arc<Intent>>) -> Result<()> {
    write_atomic(path, &store_bytes(intents)?)
}

/// The store file's contents for these intents (the API- and discovery-made, embedded ones).
pub fn store_bytes(intents: &BTreeMap<String, Arc<Intent>>) -> Result<Vec<u8>> {
    let saved: Vec<Saved> = intents
        .values()
        .filter(|i| i.origin != Origin::File)
        .filter_map(|i| {
            let e = i.embedded.as_ref()?;
            Some(Saved {
                name: i.name.clone(),
                intent_set: i.set.clone(),
                description: i.description.clone(),
                examples: i.examples.clone(),
                origin: i.origin,
                updated_at: i.updated_at,
                encoder: e.encoder.clone(),
                prefix: e.prefix.clone(),
                embeddings: e.vectors.iter().map(|v| encode_vec(v)).collect(),
            })
        })
        .collect();
    Ok(serde_json::to_vec(&StoreFile {
        version: 1,
        intents: saved,
    })?)
}

/// One intent of the config's intents file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIntent {
    name: String,
    #[serde(default)]
    intent_set: Option<String>,
    #[serde(default)]
    description: Option<String>,
    examples: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentsFile {
    intents: Vec<FileIntent>,
}

/// Read `fewshot.file` (`.json`: JSON, else TOML): `intents = [{name, intent_set?, description?,
/// examples}]`. Every entry is checked like a PUT; `trained_label(set, name)` says whether `name`
/// is a label of the trained set `set`. The intents come back not yet embedded.
pub fn read_intents_file(
    path: &Path,
    default_set: &str,
    cfg: &FewShotConfig,
    trained_label: &dyn Fn(&str, &str) -> bool,
) -> Result<Vec<Intent>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("fewshot.file: cannot read {}", path.display()))?;
    let json = path.extension().is_some_and(|e| e == "json");
    let origin = path.display().to_string();
    parse_intents_file(&text, json, &origin, default_set, cfg, trained_label)
}

/// The intents file's contents (JSON when `json`, else TOML), checked as by
/// [`read_intents_file`]; `origin` (its path) names it in errors.
pub fn parse_intents_file(
    text: &str,
    json: bool,
    origin: &str,
    default_set: &str,
    cfg: &FewShotConfig,
    trained_label: &dyn Fn(&str, &str) -> bool,
) -> Result<Vec<Intent>> {
    let parsed: IntentsFile = if json {
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))
    } else {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))
    }
    .with_context(|| format!("fewshot.file {origin}"))?;
    let mut out: Vec<Intent> = Vec::new();
    for (i, f) in parsed.intents.into_iter().enumerate() {
        let at = |r: Result<(), AppError>| -> Result<()> {
            r.map_err(|e| match e {
                AppError::Invalid { field, message, .. } => {
                    anyhow::anyhow!("fewshot.file {origin}: intents[{i}].{field}: {message}")
                }
                other => anyhow::anyhow!("{other}"),
            })
        };
        at(check_name("name", &f.name))?;
        let set = f.intent_set.unwrap_or_else(|| default_set.to_string());
        at(check_name("intent_set", &set))?;
        at(check_description(&f.description))?;
        let mut examples = Vec::new();
        at(check_examples("examples", &f.examples, cfg).map(|e| examples = e))?;
        if trained_label(&set, &f.name) {
            bail!(
                "fewshot.file {origin}: intents[{i}].name `{}` is already a trained label of set `{set}`",
                f.name
            );
        }
        if out.iter().any(|o| o.name == f.name) {
            bail!(
                "fewshot.file {origin}: intents[{i}].name `{}` is defined twice",
                f.name
            );
        }
        out.push(Intent {
            name: f.name,
            set,
            description: f.description,
            examples,
            origin: Origin::File,
            updated_at: 0,
            embedded: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_round_trip_and_intents_file() {
        let dir = std::env::temp_dir().join(format!("triage-store-{}", std::process::id()));
        let p = dir.join("intents.json");
        assert!(read_store(&p).unwrap().is_empty());
        let mut m = BTreeMap::new();
        m.insert(
            "a".to_string(),
            Arc::new(Intent {
                name: "a".into(),
                set: "s".into(),
                description: Some("d".into()),
                examples: vec!["x".into(), "y".into()],
                origin: Origin::Api,
                updated_at: 5,
                embedded: Some(Arc::new(Embedded::new(
                    "m",
                    "query: ",
                    vec![vec![3.0, 4.0], vec![0.0, 1.0]],
                ))),
            }),
        );
        write_store(&p, &m).unwrap();
        let back = read_store(&p).unwrap();
        assert_eq!(back.len(), 1);
        let e = back[0].ready_for("m", "query: ").unwrap();
        assert_eq!(e.vectors[0], vec![0.6, 0.8]);
        assert!(back[0].ready_for("m", "").is_none());
        std::fs::write(&p, b"{\"version\": 1, \"intents\": 3}").unwrap();
        assert!(read_store(&p).is_err());

        let cfg = FewShotConfig::default();
        let f = dir.join("intents.toml");
        std::fs::write(&f, "[[intents]]\nname = \"x\"\nexamples = [\"a\", \"b\"]\n").unwrap();
        let no = |_: &str, _: &str| false;
        let v = read_intents_file(&f, "bitext", &cfg, &no).unwrap();
        assert_eq!((v[0].set.as_str(), v[0].origin), ("bitext", Origin::File));
        let j = dir.join("intents.json");
        std::fs::write(
            &j,
            r#"{"intents": [{"name": "x", "examples": ["a", "A "]}]}"#,
        )
        .unwrap();
        let e = format!("{:#}", read_intents_file(&j, "s", &cfg, &no).err().unwrap());
        assert!(e.contains("intents[0].examples[1]"), "{e}");
        let yes = |_: &str, _: &str| true;
        assert!(read_intents_file(&f, "s", &cfg, &yes).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
