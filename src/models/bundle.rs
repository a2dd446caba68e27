//! Model bundles for air-gapped installs: `triage models bundle` packs models (from the hub or
//! local folders) into one file on a connected machine; `triage models install` (see
//! [`super::bundle_install`]) verifies it and places the models where `hf:` sources resolve
//! offline.
//!
//! Format: a zip archive (the `zip` crate the project already uses; entries stored, text files
//! deflated; zip64 for files over 4 GiB) holding
//! * `triage-bundle.json`, the manifest: `{"format": "triage-model-bundle", "version": 1,
//!   "models": [{"repo": "ORG/NAME", "revision": "main", "commit": "<40 hex>", "files":
//!   [{"path": "config.json", "size": 123, "sha256": "<64 hex>"}, ...]}, ...]}`;
//! * `models/<i>/<path>`: the files of the `i`-th model, as listed.
//!
//! A hub model's commit is its hub commit; a local folder's is derived from its files' hashes
//! (the first 40 hex digits of the sha256 of its `path<TAB>sha256` lines), so the same files
//! give the same snapshot.

use super::source::TOKENIZER_FILES;
use super::weights::Weights;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "triage-bundle.json";
pub const FORMAT: &str = "triage-model-bundle";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub repo: String,
    pub revision: String,
    pub commit: String,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub models: Vec<ModelEntry>,
}

/// A model to pack: its hub identity and the folder holding `files`.
pub struct ModelSource {
    pub repo: String,
    pub revision: String,
    /// None: derived from the files (local folders).
    pub commit: Option<String>,
    pub dir: PathBuf,
    pub files: Vec<String>,
}

fn name_part_ok(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 96
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `ORG/NAME` as on the hub (letters, digits, `-`, `_`, `.`).
pub fn check_repo(repo: &str) -> Result<()> {
    match repo.split_once('/') {
        Some((org, name)) if name_part_ok(org) && name_part_ok(name) => Ok(()),
        _ => bail!("`{repo}` is not a repository name ORG/NAME (letters, digits, - _ .)"),
    }
}

/// A branch, tag or `refs/pr/N`: `/`-separated parts of letters, digits, `-`, `_`, `.`.
pub fn check_revision(rev: &str) -> Result<()> {
    if rev.len() > 200 || !rev.split('/').all(name_part_ok) {
        bail!("`{rev}` is not a revision name");
    }
    Ok(())
}

/// A file path inside a model folder: relative, `/`-separated, no `.` or `..` parts.
pub fn check_path(path: &str) -> Result<()> {
    let ok = path.len() <= 1024
        && !path.contains(['\\', '\0'])
        && path
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    if !ok {
        bail!("`{path}` is not a relative file path inside a model folder");
    }
    Ok(())
}

fn check_commit(c: &str) -> Result<()> {
    if c.is_empty() || c.len() > 64 || !c.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("`{c}` is not a commit id");
    }
    Ok(())
}

impl Manifest {
    /// Everything install relies on: the format, names, paths, hashes, no duplicates.
    pub fn check(&self) -> Result<()> {
        if self.format != FORMAT || self.version != 1 {
            bail!(
                "{MANIFEST}: format {:?} version {} (expected {FORMAT:?} version 1)",
                self.format,
                self.version
            );
        }
        if self.models.is_empty() {
            bail!("{MANIFEST}: no models");
        }
        let mut snapshots = std::collections::HashSet::new();
        for m in &self.models {
            let what = format!("{MANIFEST}: model {}", m.repo);
            if !snapshots.insert((m.repo.as_str(), m.commit.as_str())) {
                bail!("{what}: commit {} is listed twice", m.commit);
            }
            check_repo(&m.repo).with_context(|| what.clone())?;
            check_revision(&m.revision).with_context(|| what.clone())?;
            check_commit(&m.commit).with_context(|| what.clone())?;
            let mut seen = std::collections::HashSet::new();
            for f in &m.files {
                check_path(&f.path).with_context(|| what.clone())?;
                if !seen.insert(f.path.as_str()) {
                    bail!("{what}: {} is listed twice", f.path);
                }
                if f.sha256.len() != 64 || !f.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                    bail!("{what}: {} has no valid sha256", f.path);
                }
            }
            if !seen.contains("config.json") {
                bail!("{what}: no config.json");
            }
        }
        Ok(())
    }
}

/// Zip entry name of file `path` of the `i`-th model.
pub fn entry_name(i: usize, path: &str) -> String {
    format!("models/{i}/{path}")
}

/// Copy `r` to `w`; returns (bytes, sha256 hex).
pub fn copy_hashed(r: &mut dyn Read, w: &mut dyn Write) -> std::io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        w.write_all(&buf[..k])?;
        n += k as u64;
    }
    Ok((n, format!("{:x}", h.finalize())))
}

/// The files of model folder `dir` worth carrying: `config.json`, the tokenizer files it has
/// and its weights (safetensors when it has them, else the PyTorch checkpoint; shards with
/// their index).
pub fn model_files(dir: &Path) -> Result<Vec<String>> {
    if !dir.join("config.json").is_file() {
        bail!("{} is not a model folder (no config.json)", dir.display());
    }
    let mut files = vec!["config.json".to_string()];
    for f in TOKENIZER_FILES {
        if dir.join(f).is_file() {
            files.push(f.to_string());
        }
    }
    let weights = Weights::find(dir)?;
    for index in [
        "model.safetensors.index.json",
        "pytorch_model.bin.index.json",
    ] {
        let is_st = index.starts_with("model.");
        if matches!(weights, Weights::Safetensors(_)) == is_st && dir.join(index).is_file() {
            files.push(index.to_string());
        }
    }
    for f in weights.files() {
        let name = f
            .strip_prefix(dir)
            .ok()
            .and_then(|p| p.to_str())
            .with_context(|| format!("weight file {} is outside its folder", f.display()))?;
        files.push(name.to_string());
    }
    files.dedup();
    Ok(files)
}

/// What `triage models bundle SOURCE... --name ORG/NAME[@rev]...` packs: `hf:` sources are
/// resolved through the hub cache (downloaded where missing; PyTorch weights converted), local
/// folders (and `pack:` models) take the `names`, in order, as their hub identity.
pub fn sources_for(sources: &[String], names: &[String], home: &Path) -> Result<Vec<ModelSource>> {
    let mut names = names.iter();
    let mut out = Vec::new();
    for s in sources {
        let src = super::source::Source::parse(s)?;
        let (dir, repo, revision, commit) = match &src {
            super::source::Source::Hub { repo, revision } => {
                let dir = src.resolve_any(home)?;
                let commit = dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(String::from)
                    .with_context(|| format!("{s}: snapshot folder {}", dir.display()))?;
                (dir, repo.clone(), revision.clone(), Some(commit))
            }
            _ => {
                let dir = src.resolve_any(home)?;
                let Some(name) = names.next() else {
                    bail!("{s} is a folder: give its hub name with --name ORG/NAME[@revision]")
                };
                let (repo, revision) = name.split_once('@').unwrap_or((name.as_str(), "main"));
                (dir, repo.to_string(), revision.to_string(), None)
            }
        };
        check_repo(&repo).with_context(|| s.clone())?;
        check_revision(&revision).with_context(|| s.clone())?;
        let files = model_files(&dir)?;
        out.push(ModelSource {
            repo,
            revision,
            commit,
            dir,
            files,
        });
    }
    if names.next().is_some() {
        bail!("more --name values than local folders");
    }
    Ok(out)
}

/// The commit of a local folder: from its files' hashes.
fn local_commit(files: &[FileEntry]) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update(format!("{}\t{}\n", f.path, f.sha256));
    }
    format!("{:x}", h.finalize())[..40].to_string()
}

fn compression(path: &str) -> zip::CompressionMethod {
    let text = [".json", ".spm", ".model", ".txt"];
    if text.iter().any(|e| path.ends_with(e)) {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    }
}

/// Write `models` into the bundle `out` (through a temporary file beside it, renamed when
/// complete: `crate::fsutil`); returns its manifest.
pub fn write(models: &[ModelSource], out: &Path) -> Result<Manifest> {
    let mut manifest = Manifest {
        format: FORMAT.into(),
        version: 1,
        models: Vec::new(),
    };
    crate::fsutil::replace_with(out, |file| write_zip(models, &mut manifest, file))?;
    Ok(manifest)
}

/// The bundle's archive into `file`, listing what it packs in `manifest`.
fn write_zip(
    models: &[ModelSource],
    manifest: &mut Manifest,
    file: &mut std::fs::File,
) -> Result<()> {
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    for (i, m) in models.iter().enumerate() {
        check_repo(&m.repo)?;
        check_revision(&m.revision)?;
        let mut entries = Vec::new();
        for path in &m.files {
            check_path(path)?;
            let src = m.dir.join(path);
            let mut f =
                std::fs::File::open(&src).with_context(|| format!("opening {}", src.display()))?;
            let size = f.metadata()?.len();
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(compression(path))
                .large_file(size >= u64::from(u32::MAX));
            zip.start_file(entry_name(i, path), opts)?;
            let (n, sha256) = copy_hashed(&mut f, &mut zip)
                .with_context(|| format!("packing {}", src.display()))?;
            entries.push(FileEntry {
                path: path.clone(),
                size: n,
                sha256,
            });
        }
        let commit = match &m.commit {
            Some(c) => c.clone(),
            None => local_commit(&entries),
        };
        manifest.models.push(ModelEntry {
            repo: m.repo.clone(),
            revision: m.revision.clone(),
            commit,
            files: entries,
        });
    }
    manifest.check()?;
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(MANIFEST, opts)?;
    zip.write_all(&serde_json::to_vec_pretty(&*manifest)?)?;
    let mut w = zip.finish()?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_are_checked() {
        check_repo("Helsinki-NLP/opus-mt-zh-en").unwrap();
        for bad in ["a", "a/b/c", "../b", "a/..", "a/b c", ""] {
            assert!(check_repo(bad).is_err(), "{bad}");
        }
        check_revision("main").unwrap();
        check_revision("refs/pr/1").unwrap();
        assert!(check_revision("../x").is_err());
        check_path("config.json").unwrap();
        check_path("1_Pooling/config.json").unwrap();
        for bad in ["/etc/passwd", "../x", "a/../b", "a//b", "a\\b", ""] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
