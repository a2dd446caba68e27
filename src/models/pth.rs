//! PyTorch checkpoints (`pytorch_model.bin`) read without running any of their code: the zip
//! format of `torch.save` since torch 1.6 and the older single-stream format (many checkpoints
//! converted in 2020, opus-mt among them, predate 1.6).
//!
//! Each pickle is first checked by [`super::pickle_guard`] (a whitelist of the tensor classes,
//! bounded objects), then interpreted by candle's restricted reader (`candle_core::pickle::Stack`,
//! which only builds values), and the tensors are taken from the resulting value here, with every
//! field checked (storage class, key, offset, shape, stride within the stored bytes), instead of
//! through candle's `PthTensors`, which skips what it cannot read and can panic on malformed
//! arguments. Errors name the file, and the tensor or storage at fault.

use super::pickle_guard;
use anyhow::{bail, Context, Result};
use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The first pickle of the pre-1.6 format: protocol 2, the magic number 0x1950a86a20f9469cfc6c.
const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e";
/// Largest `data.pkl` read (a state dict of thousands of tensors is well under 1 MB).
const MAX_PICKLE: u64 = 256 << 20;

/// A tensor of a checkpoint; `view` identifies the stored region it reads, equal for tied weights.
pub struct Named {
    pub name: String,
    pub tensor: Tensor,
    pub view: String,
}

/// Where one tensor's values are: a storage, an element offset, a shape and strides.
struct TensorRef {
    name: String,
    dtype: DType,
    key: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

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
        for t in group {
            out.push(named(&buf, t)?);
        }
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
    for key in keys {
        let Object::Unicode(key) = key else {
            bail!("a storage key is not a string")
        };
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
        for t in group {
            out.push(named(data, t)?);
        }
    }
    if out.len() != refs.len() {
        bail!("{} tensors have no stored values", refs.len() - out.len());
    }
    Ok(out)
}

/// Tensors grouped by storage key (all of one dtype), in key order.
fn by_storage(refs: &[TensorRef]) -> Result<BTreeMap<&str, Vec<&TensorRef>>> {
    let mut groups: BTreeMap<&str, Vec<&TensorRef>> = BTreeMap::new();
    for r in refs {
        let g = groups.entry(&r.key).or_default();
        if let Some(first) = g.first() {
            if first.dtype != r.dtype {
                bail!(
                    "tensors {} and {} read storage {} as {:?} and {:?}",
                    first.name,
                    r.name,
                    r.key,
                    first.dtype,
                    r.dtype
                );
            }
        }
        g.push(r);
    }
    Ok(groups)
}

/// The tensors of a state dict (a dict of name -> tensor; other values are skipped).
fn tensor_refs(obj: Object) -> Result<Vec<TensorRef>> {
    let Object::Dict(entries) = obj else {
        bail!("the pickle is not a state dict (a dict of tensors)")
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        let Object::Unicode(name) = k else {
            bail!("a state dict key is not a string: {k:?}")
        };
        if let Some(r) = tensor_ref(&name, v).with_context(|| format!("tensor {name}"))? {
            out.push(r);
        }
    }
    if out.is_empty() {
        bail!("the state dict holds no tensors");
    }
    Ok(out)
}

fn tensor_ref(name: &str, v: Object) -> Result<Option<TensorRef>> {
    let Object::Reduce { callable, args } = v else {
        return Ok(None);
    };
    let Object::Class {
        module_name,
        class_name,
    } = *callable
    else {
        return Ok(None);
    };
    let Object::Tuple(args) = *args else {
        bail!("{module_name}.{class_name} arguments are not a tuple")
    };
    match (module_name.as_str(), class_name.as_str()) {
        ("torch._utils", "_rebuild_tensor_v2") => rebuild_tensor(name, args).map(Some),
        ("torch._utils", "_rebuild_parameter") => match args.into_iter().next() {
            Some(inner) => tensor_ref(name, inner),
            None => bail!("_rebuild_parameter without a tensor"),
        },
        _ => Ok(None),
    }
}

fn uint(o: &Object, what: &str) -> Result<usize> {
    match o {
        Object::Int(i) if *i >= 0 => Ok(*i as usize),
        Object::Long(i) if *i >= 0 => Ok(usize::try_from(*i)?),
        _ => bail!("{what} is not a non-negative integer: {o:?}"),
    }
}

fn uints(o: &Object, what: &str) -> Result<Vec<usize>> {
    let Object::Tuple(items) = o else {
        bail!("{what} is not a tuple: {o:?}")
    };
    items.iter().map(|i| uint(i, what)).collect()
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks, ...)`, where
/// storage is `persistent_load(("storage", torch.XStorage, key, location, numel[, view]))`.
fn rebuild_tensor(name: &str, args: Vec<Object>) -> Result<TensorRef> {
    let [storage, offset, size, stride, ..] = args.as_slice() else {
        bail!(
            "_rebuild_tensor_v2 takes at least 4 arguments, got {}",
            args.len()
        )
    };
    let Object::PersistentLoad(pid) = storage else {
        bail!("the storage argument is not a persistent id")
    };
    let Object::Tuple(pid) = pid.as_ref() else {
        bail!("the storage id is not a tuple")
    };
    let [tag, class, key, _location, _numel, rest @ ..] = pid.as_slice() else {
        bail!("the storage id has {} fields, expected 5 or 6", pid.len())
    };
    if *tag != Object::Unicode("storage".into()) {
        bail!("the persistent id is not a storage: {tag:?}");
    }
    if rest.iter().any(|v| *v != Object::None) {
        bail!("storage views (checkpoints of torch before 1.0) are not supported");
    }
    let dtype = match class {
        Object::Class {
            module_name,
            class_name,
        } if module_name == "torch" => match class_name.as_str() {
            "FloatStorage" => DType::F32,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "DoubleStorage" => DType::F64,
            "LongStorage" => DType::I64,
            "ByteStorage" => DType::U8,
            other => bail!("unsupported storage type torch.{other}"),
        },
        other => bail!("the storage type is not a torch class: {other:?}"),
    };
    let Object::Unicode(key) = key else {
        bail!("the storage key is not a string")
    };
    let shape = uints(size, "size")?;
    let stride = uints(stride, "stride")?;
    if shape.len() != stride.len() {
        bail!("{} sizes but {} strides", shape.len(), stride.len());
    }
    Ok(TensorRef {
        name: name.to_string(),
        dtype,
        key: key.clone(),
        offset: uint(offset, "storage offset")?,
        shape,
        stride,
    })
}

/// The tensor `t` over the stored bytes of its storage, every index checked against them.
fn named(storage: &[u8], t: &TensorRef) -> Result<Named> {
    let es = t.dtype.size_in_bytes();
    if !storage.len().is_multiple_of(es) {
        bail!(
            "storage {} of tensor {} is {} bytes, not a whole number of {:?} values",
            t.key,
            t.name,
            storage.len(),
            t.dtype
        );
    }
    let numel = storage.len() / es;
    let overflow = || anyhow::anyhow!("tensor {}: its size overflows", t.name);
    let count = t
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(overflow)?;
    let bytes: Cow<[u8]> = if count == 0 {
        Cow::Borrowed(&[])
    } else {
        let mut last = t.offset;
        for (&d, &s) in t.shape.iter().zip(&t.stride) {
            last = (d - 1)
                .checked_mul(s)
                .and_then(|x| last.checked_add(x))
                .ok_or_else(overflow)?;
        }
        if last >= numel {
            bail!(
                "tensor {} reads element {last} of storage {}, which holds {numel}",
                t.name,
                t.key
            );
        }
        if is_row_major(&t.shape, &t.stride) {
            Cow::Borrowed(&storage[t.offset * es..(t.offset + count) * es])
        } else {
            Cow::Owned(gather(storage, es, t, count))
        }
    };
    let tensor = Tensor::from_raw_buffer(&bytes, t.dtype, &t.shape, &Device::Cpu)
        .with_context(|| format!("tensor {}", t.name))?;
    Ok(Named {
        name: t.name.clone(),
        tensor,
        view: format!(
            "{}/{}/{:?}/{:?}/{:?}",
            t.key, t.offset, t.shape, t.stride, t.dtype
        ),
    })
}

fn is_row_major(shape: &[usize], stride: &[usize]) -> bool {
    let mut want = 1usize;
    for (&d, &s) in shape.iter().zip(stride).rev() {
        if d != 1 && s != want {
            return false;
        }
        want = want.saturating_mul(d);
    }
    true
}

/// Copy a strided tensor's values in row-major order (indices were bounds-checked).
fn gather(storage: &[u8], es: usize, t: &TensorRef, count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * es);
    let mut idx = vec![0usize; t.shape.len()];
    for _ in 0..count {
        let pos = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
        out.extend_from_slice(&storage[pos * es..(pos + 1) * es]);
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < t.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
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
    let tmp = out.with_extension("safetensors.partial");
    candle_core::safetensors::save(&tensors, &tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("renaming to {}", out.display()))?;
    Ok(tensors.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_major_and_gather() {
        assert!(is_row_major(&[2, 3], &[3, 1]));
        assert!(is_row_major(&[1, 3], &[7, 1]));
        assert!(!is_row_major(&[2, 3], &[1, 2]));
        // A transposed 2x3 view of [0..6] (f32): values 0 2 4 / 1 3 5.
        let storage: Vec<u8> = (0..6u32).flat_map(|v| (v as f32).to_le_bytes()).collect();
        let t = TensorRef {
            name: "t".into(),
            dtype: DType::F32,
            key: "0".into(),
            offset: 0,
            shape: vec![2, 3],
            stride: vec![1, 2],
        };
        let n = named(&storage, &t).unwrap();
        let v: Vec<Vec<f32>> = n.tensor.to_vec2().unwrap();
        assert_eq!(v, vec![vec![0., 2., 4.], vec![1., 3., 5.]]);
        let bad = TensorRef {
            offset: 1,
            shape: vec![2, 3],
            stride: vec![3, 1],
            ..t
        };
        assert!(named(&storage, &bad).is_err());
    }

    #[test]
    fn keeps_the_canonical_name_of_tied_weights() {
        assert!(keep_rank("model.shared.weight") < keep_rank("model.encoder.embed_tokens.weight"));
        assert!(keep_rank("model.decoder.embed_tokens.weight") < keep_rank("lm_head.weight"));
        assert!(keep_rank("shared.weight") < keep_rank("lm_head.weight"));
    }
}
