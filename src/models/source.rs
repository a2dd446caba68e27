//! Where a model's files come from: the default pack, a local Hugging Face folder, or hf-hub
//! (what it lacks is downloaded; PyTorch weights are then converted once, see `weights`).

use crate::models::weights::Weights;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A parsed `source` string from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `pack:NAME`: a model of the default pack under `<home>/models/NAME`.
    Pack(String),
    /// `hf:org/name[@revision]`: the Hugging Face hub (or its local cache).
    Hub { repo: String, revision: String },
    /// Any other string: a local folder in Hugging Face layout.
    Local(PathBuf),
}

impl Source {
    pub fn parse(s: &str) -> Result<Source> {
        let s = s.trim();
        if let Some(name) = s.strip_prefix("pack:") {
            if name.is_empty() || name.contains('/') || name.contains("..") {
                bail!("bad pack model name `{name}`");
            }
            return Ok(Source::Pack(name.to_string()));
        }
        if let Some(rest) = s.strip_prefix("hf:") {
            let (repo, revision) = match rest.split_once('@') {
                Some((r, v)) => (r, v),
                None => (rest, "main"),
            };
            if repo.split('/').count() > 2 || repo.is_empty() || revision.is_empty() {
                bail!("bad hub source `{s}`: expected hf:org/name[@revision]");
            }
            return Ok(Source::Hub {
                repo: repo.to_string(),
                revision: revision.to_string(),
            });
        }
        Ok(Source::Local(PathBuf::from(s)))
    }

    /// Resolve to a local folder holding `config.json`, `tokenizer.json` and the weights
    /// (safetensors or PyTorch).
    pub fn resolve(&self, home: &Path) -> Result<PathBuf> {
        self.resolve_files(home, &Files::ENCODER)
    }

    /// Resolve a seq2seq model (Marian, T5): `config.json`, the weights, and `tokenizer.json`
    /// or Marian's `source.spm` + `vocab.json` (+ `target.spm` + `target_vocab.json` with
    /// separate vocabularies).
    pub fn resolve_seq2seq(&self, home: &Path) -> Result<PathBuf> {
        let dir = self.resolve_files(home, &Files::ANY)?;
        let spm = dir.join("source.spm").exists() && dir.join("vocab.json").exists();
        if !dir.join("tokenizer.json").exists() && !spm {
            bail!(
                "{} has neither tokenizer.json nor source.spm + vocab.json",
                dir.display()
            );
        }
        Ok(dir)
    }

    fn resolve_files(&self, home: &Path, files: &Files) -> Result<PathBuf> {
        let dir = match self {
            Source::Pack(name) => {
                let dir = home.join("models").join(name);
                if !dir.join("config.json").exists() {
                    bail!(
                        "model `{name}` of the default pack is not installed in {}: run \
                         `triage models setup` (or scripts/setup.sh)",
                        home.display()
                    );
                }
                dir
            }
            Source::Local(p) => {
                if !p.join("config.json").exists() {
                    bail!("{} is not a model folder (no config.json)", p.display());
                }
                p.clone()
            }
            Source::Hub { repo, revision } => fetch_hub(repo, revision, files)?,
        };
        for f in files.required {
            if !dir.join(f).exists() {
                bail!("{} has no {f}", dir.display());
            }
        }
        Weights::find(&dir)?;
        Ok(dir)
    }

    /// Resolve any model (encoder or seq2seq; for `triage models bundle`): `config.json`, the
    /// weights, and whichever tokenizer files it has.
    pub fn resolve_any(&self, home: &Path) -> Result<PathBuf> {
        self.resolve_files(home, &Files::ANY)
    }
}

/// Which files a model folder needs, and which it may have.
pub struct Files {
    required: &'static [&'static str],
    optional: &'static [&'static str],
}

impl Files {
    const ENCODER: Files = Files {
        required: &["config.json", "tokenizer.json"],
        optional: &[],
    };
    /// A seq2seq model or any other: `config.json` and whichever tokenizer files it has.
    const ANY: Files = Files {
        required: &["config.json"],
        optional: TOKENIZER_FILES,
    };
}

/// Every file besides the weights that a model of ours may read.
pub const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "source.spm",
    "target.spm",
    "vocab.json",
    "target_vocab.json",
];

/// The safetensors files of a folder: `model.safetensors` or the shards of its index (what
/// head fine-tuning reads; loading a model goes through [`Weights::find`], which also takes
/// PyTorch weights).
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&index)?)
            .with_context(|| format!("parsing {}", index.display()))?;
        let mut files: Vec<String> = v["weight_map"]
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files.dedup();
        if files.is_empty() {
            bail!("{} lists no weight files", index.display());
        }
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    bail!("{} has no model.safetensors", dir.display())
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| !v.is_empty() && v != "0" && v.to_lowercase() != "false")
        .unwrap_or(false)
}

/// The snapshot folder of `repo@revision` in the hub cache, if it holds a complete model.
/// `revision` may be a branch/tag (followed through `refs/`) or a commit hash.
fn cached_snapshot(cache: &Path, repo: &str, revision: &str, files: &Files) -> Option<PathBuf> {
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    let commit = std::fs::read_to_string(repo_dir.join("refs").join(revision))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| revision.to_string());
    let snap = repo_dir.join("snapshots").join(commit);
    let complete = files.required.iter().all(|f| snap.join(f).exists())
        && Weights::find(&snap).is_ok_and(|w| w.files().iter().all(|f| f.is_file()));
    complete.then_some(snap)
}

/// Fetch (or find in the hub cache) the files of `repo@revision`; returns the snapshot folder.
fn fetch_hub(repo: &str, revision: &str, files: &Files) -> Result<PathBuf> {
    use hf_hub::{Cache, Repo, RepoType};
    let cache = Cache::from_env();
    if let Some(dir) = cached_snapshot(cache.path(), repo, revision, files) {
        return Ok(dir);
    }
    if offline() {
        bail!(
            "hf:{repo}@{revision} is not in the hub cache ({}) and HF_HUB_OFFLINE is set",
            cache.path().display()
        );
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .context("hf-hub client")?;
    let r = api.repo(Repo::with_revision(
        repo.to_string(),
        RepoType::Model,
        revision.to_string(),
    ));
    let get = |f: &str| {
        r.get(f)
            .with_context(|| format!("downloading {f} of hf:{repo}@{revision}"))
    };
    let config = get("config.json")?;
    for f in files.required {
        get(f)?;
    }
    for f in files.optional {
        // Absent in many repositories: only what exists is fetched.
        let _ = r.get(f);
    }
    let dir = parent_of(&config)?;
    fetch_weights(&get).with_context(|| format!("weights of hf:{repo}@{revision}"))?;
    // Converted once here, where we own the files: later starts memory-map the safetensors.
    crate::models::weights::convert_folder(&dir)?;
    Ok(dir)
}

/// `model.safetensors`, else its sharded index, else `pytorch_model.bin`, else its index.
fn fetch_weights(get: &dyn Fn(&str) -> Result<PathBuf>) -> Result<()> {
    let mut tried = Vec::new();
    for (single, index) in [
        ("model.safetensors", "model.safetensors.index.json"),
        ("pytorch_model.bin", "pytorch_model.bin.index.json"),
    ] {
        match get(single) {
            Ok(_) => return Ok(()),
            Err(e) => tried.push(format!("{e:#}")),
        }
        if let Ok(index) = get(index) {
            for shard in crate::models::weights::index_shards(&index)? {
                if let Some(name) = shard.file_name().and_then(|n| n.to_str()) {
                    get(name)?;
                }
            }
            return Ok(());
        }
    }
    bail!(
        "neither model.safetensors nor pytorch_model.bin (nor a sharded index) could be \
         fetched: {}",
        tried.join("; ")
    )
}

fn parent_of(p: &Path) -> Result<PathBuf> {
    p.parent()
        .map(Path::to_path_buf)
        .context("hub file without a folder")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!(
            Source::parse("pack:all-MiniLM-L6-v2").unwrap(),
            Source::Pack("all-MiniLM-L6-v2".into())
        );
        assert_eq!(
            Source::parse("hf:intfloat/multilingual-e5-small@abc").unwrap(),
            Source::Hub {
                repo: "intfloat/multilingual-e5-small".into(),
                revision: "abc".into()
            }
        );
        assert_eq!(
            Source::parse("hf:org/m").unwrap(),
            Source::Hub {
                repo: "org/m".into(),
                revision: "main".into()
            }
        );
        assert_eq!(
            Source::parse("/opt/m").unwrap(),
            Source::Local("/opt/m".into())
        );
        assert!(Source::parse("pack:../x").is_err());
        assert!(Source::parse("hf:a/b/c").is_err());
    }

    #[test]
    fn missing_pack_says_how_to_install() {
        let err = Source::Pack("nope".into())
            .resolve(Path::new("/nonexistent"))
            .unwrap_err();
        assert!(format!("{err}").contains("triage models setup"));
    }
}
