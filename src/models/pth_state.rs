//! The tensors of a PyTorch state dict, taken from the value candle's pickle reader built (see
//! `pth`): `name -> _rebuild_tensor_v2(persistent_load(("storage", torch.XStorage, key,
//! location, numel)), offset, size, stride, ...)` (or wrapped in `_rebuild_parameter`). Every
//! field is checked: the storage class (a supported dtype), the key, sizes and strides that fit
//! the stored bytes (no index past them, no overflow). Strided views are copied out in row-major
//! order; names viewing the same stored region (tied weights) share one tensor.

use anyhow::{bail, Context, Result};
use candle_core::pickle::Object;
use candle_core::{DType, Device, Tensor};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// A tensor of a checkpoint; `view` identifies the stored region it reads, equal for tied weights.
pub struct Named {
    pub name: String,
    pub tensor: Tensor,
    pub view: String,
}

/// Where one tensor's values are: a storage, an element offset, a shape and strides.
pub(super) struct TensorRef {
    pub(super) name: String,
    pub(super) dtype: DType,
    pub(super) key: String,
    pub(super) offset: usize,
    pub(super) shape: Vec<usize>,
    pub(super) stride: Vec<usize>,
}

/// Tensors grouped by storage key (all of one dtype), in key order.
pub(super) fn by_storage(refs: &[TensorRef]) -> Result<BTreeMap<&str, Vec<&TensorRef>>> {
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
pub(super) fn tensor_refs(obj: Object) -> Result<Vec<TensorRef>> {
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

/// The tensors of one storage; names viewing the same region (tied weights) share one tensor.
pub(super) fn group_tensors(storage: &[u8], group: &[&TensorRef]) -> Result<Vec<Named>> {
    let mut built: HashMap<String, Tensor> = HashMap::new();
    let mut out = Vec::with_capacity(group.len());
    for t in group {
        let view = format!(
            "{}/{}/{:?}/{:?}/{:?}",
            t.key, t.offset, t.shape, t.stride, t.dtype
        );
        let tensor = match built.get(&view) {
            Some(x) => x.clone(),
            None => {
                let x = tensor_of(storage, t)?;
                built.insert(view.clone(), x.clone());
                x
            }
        };
        out.push(Named {
            name: t.name.clone(),
            tensor,
            view,
        });
    }
    Ok(out)
}

/// The tensor `t` over the stored bytes of its storage, every index checked against them.
fn tensor_of(storage: &[u8], t: &TensorRef) -> Result<Tensor> {
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
    Tensor::from_raw_buffer(&bytes, t.dtype, &t.shape, &Device::Cpu)
        .with_context(|| format!("tensor {}", t.name))
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
        let v: Vec<Vec<f32>> = tensor_of(&storage, &t).unwrap().to_vec2().unwrap();
        assert_eq!(v, vec![vec![0., 2., 4.], vec![1., 3., 5.]]);
        let bad = TensorRef {
            offset: 1,
            shape: vec![2, 3],
            stride: vec![3, 1],
            ..t
        };
        assert!(tensor_of(&storage, &bad).is_err());
    }
}
