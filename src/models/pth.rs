//! PyTorch checkpoints (`pytorch_model.bin`) read without running any of their code: the zip
//! format of `torch.save` since torch 1.6 and the older single-stream format (many checkpoints
//! converted in 2020, opus-mt among them, predate 1.6).
//!
//! Each pickle is first checked by [`super::pickle_guard`] (a whitelist of the tensor classes,
//! bounded objects), then interpreted by candle's restricted reader (`candle_core::pickle::Stack`,
//! which only builds values); [`super::pth_state`] takes the tensors from the resulting value,
//! every field checked, instead of candle's `PthTensors`, which skips what it cannot read and can
//! panic on malformed arguments. Storages are read one at a time. Errors name the file, and the
//! tensor or storage at fault. [`to_safetensors`] is the one-time conversion (see `weights`).

use super::pickle_guard;
use super::pth_state::{by_storage, group_tensors, tensor_refs};
use anyhow::{bail, Context, Result};
use candle_core::pickle::{Object, Stack};
use candle_core::Tensor;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use super::pth_state::Named;

/// The first pickle of the pre-1.6 format: protocol 2, the magic number 0x1950a86a20f9469cfc6c.
const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e";
/// Largest `data.pkl` read (a state dict of thousands of tensors is well under 1 MB).
const MAX_PICKLE: u64 = 256 << 20;

/// Every tensor of the checkpoint at `path` (tied weights appear under each of their names).
pub fn read(path: &Path) -> Result<Vec<Named>> {
    read_file(path).with_context(|| format!("reading PyTorch weights {}", path.display()))
}

/// The tensors of `path` by name, for a `VarBuilder`.
pub fn load(path: &Path) -> Result<HashMap<String, Tensor>> {
    Ok(read(path)?
        .into_iter()
        .map(|n| (n.name, n.tensor))
        .collect())
}

fn read_file(path: &Path) -> Result<Vec<Named>> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len < 16 {
        bail!("not a PyTorch checkpoint ({len} bytes)");
    }
    // SAFETY: the checkpoint is not modified while it is read (as for mapped safetensors).
    let map = unsafe { memmap2::Mmap::map(&file)? };
    if map.starts_with(b"PK\x03\x04") {
        read_zip(&map)
    } else if map.starts_with(LEGACY_MAGIC) {
        read_legacy(&map)
    } else {
        bail!(
            "not a PyTorch checkpoint: neither a zip archive (torch.save since torch 1.6) nor \
             the older torch.save format"
        )
    }
}

/// Check, then interpret one pickle at the start of `data`: (value, bytes used).
fn parse_pickle(data: &[u8]) -> Result<(Object, usize)> {
    let len = pickle_guard::check(data)?;
    let mut r = &data[..len];
    let mut stack = Stack::empty();
    stack.read_loop(&mut r).context("interpreting the pickle")?;
    Ok((stack.finalize()?, len))
}

fn read_zip(bytes: &[u8]) -> Result<Vec<Named>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .context("the zip archive is truncated or damaged")?;
    let mut pkls = Vec::new();
    for n in zip.file_names() {
        let n = n.context("a file name in the archive")?;
        if n == "data.pkl" || n.ends_with("/data.pkl") {
            pkls.push(n.into_owned());
        }
    }
    let [pkl] = pkls.as_slice() else {
        bail!("expected one data.pkl in the archive, found {}", pkls.len())
    };
    let prefix = &pkl[..pkl.len() - "data.pkl".len()];
    if let Ok(f) = zip.by_name(&format!("{prefix}byteorder")) {
        let mut order = String::new();
        f.take(16).read_to_string(&mut order)?;
        if order.trim() != "little" {
            bail!("the tensors are stored {order:?}-endian; only little-endian is supported");
        }
    }
    let mut pickle = Vec::new();
    zip.by_name(pkl)?
        .take(MAX_PICKLE + 1)
        .read_to_end(&mut pickle)
        .with_context(|| format!("reading {pkl}"))?;
    if pickle.len() as u64 > MAX_PICKLE {
        bail!("{pkl} is over {MAX_PICKLE} bytes");
    }
    let (obj, _) = parse_pickle(&pickle).with_context(|| format!("in {pkl}"))?;
    let refs = tensor_refs(obj)?;
    let mut out = Vec::with_capacity(refs.len());
    // One storage in memory at a time.
    for (key, group) in by_storage(&refs)? {
        let entry_name = format!("{prefix}data/{key}");
        let mut entry = zip
            .by_name(&entry_name)
            .with_context(|| format!("storage {key} of tensor {} is missing", group[0].name))?;
        if entry.compression() != zip::CompressionMethod::Stored {
            bail!("storage {key} is compressed; torch.save stores tensors uncompressed");
        }
        let size = entry.size();
        if size > bytes.len() as u64 {
            bail!("storage {key} claims {size} bytes, more than the archive holds");
        }
        let mut buf = Vec::with_capacity(size as usize);
        entry
            .read_to_end(&mut buf)
            .with_context(|| format!("reading storage {key} (truncated or damaged)"))?;
        out.extend(group_tensors(&buf, &group)?);
    }
    Ok(out)
}

fn read_legacy(bytes: &[u8]) -> Result<Vec<Named>> {
    let mut pos = LEGACY_MAGIC.len();
    let mut next = |what: &str| -> Result<Object> {
        let (obj, n) = parse_pickle(&bytes[pos..]).with_context(|| format!("in the {what}"))?;
        pos += n;
        Ok(obj)
    };
    let version = next("protocol version")?;
    if version != Object::Int(1001) {
        bail!("unsupported legacy torch.save protocol {version:?}");
    }
    if let Object::Dict(info) = next("system information")? {
        for (k, v) in info {
            if k == Object::Unicode("little_endian".into()) && v != Object::Bool(true) {
                bail!("the tensors are stored big-endian; only little-endian is supported");
            }
        }
    }
    let refs = tensor_refs(next("state dict")?)?;
    let Object::List(keys) = next("storage list")? else {
        bail!("the storage list is not a list")
    };
    let groups = by_storage(&refs)?;
    let mut out = Vec::with_capacity(refs.len());
    let mut seen = std::collections::HashSet::new();
    for key in keys {
        let Object::Unicode(key) = key else {
            bail!("a storage key is not a string")
        };
        if !seen.insert(key.clone()) {
            bail!("storage {key} is listed twice");
        }
        let group = groups
            .get(key.as_str())
            .with_context(|| format!("storage {key} is used by no tensor"))?;
        let es = group[0].dtype.size_in_bytes() as u64;
        let header = bytes
            .get(pos..pos + 8)
            .with_context(|| format!("the file ends before storage {key} (truncated)"))?;
        let numel = u64::from_le_bytes(header.try_into()?);
        pos += 8;
        let len = numel.saturating_mul(es);
        if len > (bytes.len() - pos) as u64 {
            bail!(
                "storage {key} needs {len} bytes, {} are left (truncated)",
                bytes.len() - pos
            );
        }
        let data = &bytes[pos..pos + len as usize];
        pos += len as usize;
        out.extend(group_tensors(data, group)?);
    }
    if let Some(missing) = groups.keys().find(|k| !seen.contains(**k)) {
        bail!("storage {missing} is not in the file");
    }
    Ok(out)
}

/// How strongly a name is kept when tied tensors are stored once: the names transformers keeps
/// in its own safetensors files (`model.shared.weight`, `bert.embeddings...`) before the tied
/// aliases (`*.embed_tokens.weight`, then `lm_head.weight` / the MLM decoder); then shorter.
fn keep_rank(name: &str) -> (u8, usize, &str) {
    let alias = if name.starts_with("lm_head.") || name.contains("predictions.decoder") {
        2
    } else if name.contains("embed_tokens") {
        1
    } else {
        0
    };
    (alias, name.len(), name)
}

/// Write the tensors of the checkpoint files `bins` into one safetensors file `out` (through a
/// temporary file). Tied tensors (one stored region under several names) are written once,
/// under the name transformers' own safetensors files use. Returns the tensors written.
pub fn to_safetensors(bins: &[PathBuf], out: &Path) -> Result<usize> {
    let mut keep: HashMap<String, (String, Tensor)> = HashMap::new();
    let mut names = std::collections::HashSet::new();
    for (i, bin) in bins.iter().enumerate() {
        for n in read(bin)? {
            if !names.insert(n.name.clone()) {
                bail!("tensor {} is in more than one of {bins:?}", n.name);
            }
            let view = format!("{i}/{}", n.view);
            match keep.get(&view) {
                Some((kept, _)) if keep_rank(kept) <= keep_rank(&n.name) => {}
                _ => {
                    keep.insert(view, (n.name, n.tensor));
                }
            }
        }
    }
    let tensors: HashMap<String, Tensor> = keep.into_values().collect();
    crate::fsutil::replace_via_path(out, |tmp| {
        Ok(candle_core::safetensors::save(&tensors, tmp)?)
    })
    .with_context(|| format!("writing {}", out.display()))?;
    Ok(tensors.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_canonical_name_of_tied_weights() {
        assert!(keep_rank("model.shared.weight") < keep_rank("model.encoder.embed_tokens.weight"));
        assert!(keep_rank("model.decoder.embed_tokens.weight") < keep_rank("lm_head.weight"));
        assert!(keep_rank("shared.weight") < keep_rank("lm_head.weight"));
    }
}
