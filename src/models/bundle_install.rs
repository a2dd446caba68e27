//! `triage models install FILE`: verify a model bundle (see [`super::bundle`]) and place its
//! models in the Hugging Face hub cache layout, so `hf:ORG/NAME[@revision]` resolves offline
//! (`HF_HUB_OFFLINE=1`): `<cache>/models--ORG--NAME/snapshots/<commit>/<files>` and
//! `<cache>/models--ORG--NAME/refs/<revision>` holding the commit. Files are plain files in the
//! snapshot (no `blobs/` symlinks); hf-hub, our resolver and Python's huggingface_hub all read
//! them there.
//!
//! Every file is streamed out of the archive into a temporary folder beside its snapshot while
//! its sha256 is computed; any mismatch (size, hash, the zip's own CRC), a missing or an
//! unlisted entry fails the install naming the bundle and the file, and nothing is placed. Once
//! every model is verified, PyTorch-only models are converted to safetensors (see `weights`), and
//! the folders are renamed into place (a previous install of the same commit is replaced).

use super::bundle::{check_path, copy_hashed, entry_name, Manifest, MANIFEST};
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest manifest read.
const MAX_MANIFEST: u64 = 16 << 20;

/// One model placed by [`install`].
#[derive(Debug, Clone)]
pub struct Installed {
    /// `hf:ORG/NAME@revision`.
    pub source: String,
    pub snapshot: PathBuf,
    /// Bytes of the bundle's files.
    pub bytes: u64,
    /// Whether PyTorch weights were converted to `model.safetensors`.
    pub converted: bool,
}

/// The hub cache folder of `repo`.
pub fn repo_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

type Archive = zip::ZipArchive<std::io::BufReader<std::fs::File>>;

/// Open a bundle and read its manifest (checked).
pub fn open(bundle: &Path) -> Result<(Archive, Manifest)> {
    let file =
        std::fs::File::open(bundle).with_context(|| format!("opening {}", bundle.display()))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).with_context(|| {
        format!(
            "{}: not a model bundle, or truncated (no zip directory at its end)",
            bundle.display()
        )
    })?;
    let mut text = Vec::new();
    zip.by_name(MANIFEST)
        .with_context(|| format!("{}: no {MANIFEST}", bundle.display()))?
        .take(MAX_MANIFEST)
        .read_to_end(&mut text)
        .with_context(|| format!("{}: reading {MANIFEST}", bundle.display()))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{}: parsing {MANIFEST}", bundle.display()))?;
    manifest
        .check()
        .with_context(|| format!("{}", bundle.display()))?;
    let mut listed: HashSet<String> = HashSet::from([MANIFEST.to_string()]);
    for (i, m) in manifest.models.iter().enumerate() {
        listed.extend(m.files.iter().map(|f| entry_name(i, &f.path)));
    }
    for name in zip.file_names() {
        let name = name.with_context(|| format!("{}: an entry name", bundle.display()))?;
        if !listed.contains(name.as_ref()) {
            bail!(
                "{}: entry {name} is not listed in {MANIFEST}",
                bundle.display()
            );
        }
    }
    Ok((zip, manifest))
}

/// Verify `bundle` and install its models into the hub cache folder `cache` (`$HF_HOME/hub`).
pub fn install(bundle: &Path, cache: &Path) -> Result<Vec<Installed>> {
    let (mut zip, manifest) = open(bundle)?;
    let mut staged: Vec<(PathBuf, PathBuf, Installed)> = Vec::new();
    let result = stage_all(bundle, cache, &mut zip, &manifest, &mut staged);
    if let Err(e) = result {
        for (tmp, _, _) in &staged {
            let _ = std::fs::remove_dir_all(tmp);
        }
        return Err(e);
    }
    let mut out = Vec::new();
    for (i, (tmp, snap, inst)) in staged.into_iter().enumerate() {
        let m = &manifest.models[i];
        if snap.exists() {
            std::fs::remove_dir_all(&snap)
                .with_context(|| format!("replacing {}", snap.display()))?;
        }
        std::fs::rename(&tmp, &snap).with_context(|| format!("placing {}", snap.display()))?;
        if m.revision != m.commit {
            let refs = repo_dir(cache, &m.repo).join("refs").join(&m.revision);
            crate::fsutil::write_atomic(&refs, m.commit.as_bytes())?;
        }
        out.push(inst);
    }
    Ok(out)
}

fn stage_all(
    bundle: &Path,
    cache: &Path,
    zip: &mut Archive,
    manifest: &Manifest,
    staged: &mut Vec<(PathBuf, PathBuf, Installed)>,
) -> Result<()> {
    for (i, m) in manifest.models.iter().enumerate() {
        let snaps = repo_dir(cache, &m.repo).join("snapshots");
        let tmp = snaps.join(format!(".partial-{}-{}", m.commit, std::process::id()));
        let snap = snaps.join(&m.commit);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        staged.push((
            tmp.clone(),
            snap.clone(),
            Installed {
                source: format!("hf:{}@{}", m.repo, m.revision),
                snapshot: snap,
                bytes: m.files.iter().map(|f| f.size).sum(),
                converted: false,
            },
        ));
        for f in &m.files {
            check_path(&f.path)?;
            let what = format!("{}: {} file {}", bundle.display(), m.repo, f.path);
            let dest = tmp.join(&f.path);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut entry = zip
                .by_name(&entry_name(i, &f.path))
                .with_context(|| format!("{what}: missing from the archive"))?;
            let mut out = std::fs::File::create(&dest)
                .with_context(|| format!("creating {}", dest.display()))?;
            let (size, sha) = copy_hashed(&mut entry, &mut out)
                .with_context(|| format!("{what}: unreadable (truncated or damaged)"))?;
            if size != f.size || sha != f.sha256 {
                bail!(
                    "{what}: checksum mismatch (the manifest says {} bytes, sha256 {}; the file \
                     has {size} bytes, sha256 {sha}); nothing was installed",
                    f.size,
                    f.sha256
                );
            }
            out.sync_all()?;
        }
        let converted = super::weights::convert_folder(&tmp)
            .with_context(|| format!("{}: {}", bundle.display(), m.repo))?
            .is_some();
        if let Some(last) = staged.last_mut() {
            last.2.converted = converted;
        }
    }
    Ok(())
}
