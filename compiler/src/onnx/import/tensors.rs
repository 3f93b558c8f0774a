//! TensorProto → constant values: raw little-endian bytes, typed fields and external files,
//! with every size checked against the limits before anything is allocated.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use mobilenetc_runtime::onnx::tensor_proto::{DataLocation, DataType};
use mobilenetc_runtime::onnx::TensorProto;

use crate::error::{Error, Result};
use crate::graph::shape::{checked_product, fmt};
use crate::graph::Tensor;

/// Element storage of a constant. Integer and boolean types widen to i64 (shape arithmetic),
/// float32 stays f32 (weights), double stays f64 (folded, then cast).
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
}

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    /// The elements at the given flat indices (every index is in range by construction).
    pub fn take(&self, idx: &[usize]) -> Data {
        match self {
            Data::F32(v) => Data::F32(idx.iter().map(|&i| v[i]).collect()),
            Data::F64(v) => Data::F64(idx.iter().map(|&i| v[i]).collect()),
            Data::I64(v) => Data::I64(idx.iter().map(|&i| v[i]).collect()),
        }
    }

    pub fn as_f64(&self) -> Vec<f64> {
        match self {
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }
}

/// A constant known at import: an initializer, a Constant node's value or a folded result.
#[derive(Clone, Debug, PartialEq)]
pub struct Const {
    /// The ONNX element type (`DataType as i32`), kept for Cast and for messages.
    pub dtype: i32,
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Const {
    pub fn i64s(shape: Vec<usize>, v: Vec<i64>) -> Const {
        Const { dtype: DataType::Int64 as i32, shape, data: Data::I64(v) }
    }

    pub fn f32s(t: Tensor) -> Const {
        Const { dtype: DataType::Float as i32, shape: t.shape, data: Data::F32(t.data) }
    }

    /// The values as integers (shape operands); None for float data.
    pub fn ints(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The f32 tensor, when this is float32 data.
    pub fn into_f32(self) -> std::result::Result<Tensor, Const> {
        match self.data {
            Data::F32(v) => Ok(Tensor { shape: self.shape, data: v }),
            data => Err(Const { data, ..self }),
        }
    }

    pub fn type_name(&self) -> &'static str {
        dtype_name(self.dtype)
    }
}

pub fn dtype_name(dtype: i32) -> &'static str {
    DataType::try_from(dtype).map(|d| d.as_str_name()).unwrap_or("an unknown type")
}

/// Where tensor data can come from besides the model bytes, and what may be allocated.
pub struct Source<'a> {
    /// The directory of the model file (external data is looked up next to it).
    pub dir: Option<&'a Path>,
    pub max_bytes: u64,
}

/// Byte size of one element, for the types whose values we can read.
fn elem_size(dt: DataType) -> Option<usize> {
    use DataType::*;
    Some(match dt {
        Float | Int32 | Uint32 => 4,
        Double | Int64 | Uint64 => 8,
        Int16 | Uint16 => 2,
        Int8 | Uint8 | Bool => 1,
        _ => return None,
    })
}

/// The dims of a tensor as sizes, refusing negative ones.
pub fn dims(what: &str, dims: &[i64]) -> Result<Vec<usize>> {
    dims.iter()
        .map(|&d| usize::try_from(d).map_err(|_| Error::Decode(format!("{what} has the negative dimension {d} in {dims:?}"))))
        .collect()
}

/// Checks that `numel` elements of `size` bytes fit in the limit; the error is a `Limit`.
pub fn check_bytes(what: &str, shape: &[usize], size: usize, max_bytes: u64) -> Result<usize> {
    let too_big = || Error::Limit(format!("{what} has shape {} which needs more than the limit of {max_bytes} bytes; refusing to allocate it", fmt(shape)));
    let numel = checked_product(shape).ok_or_else(too_big)?;
    let bytes = numel.checked_mul(size).ok_or_else(too_big)?;
    if bytes as u64 > max_bytes {
        return Err(too_big());
    }
    Ok(numel)
}

/// Decodes one TensorProto (an initializer or an attribute value) into a constant.
pub fn decode_tensor(t: &TensorProto, what: &str, src: &Source) -> Result<Const> {
    let dtype = t.data_type.unwrap_or(0);
    let dt = DataType::try_from(dtype).ok().filter(|d| elem_size(*d).is_some()).ok_or_else(|| {
        Error::Invalid(format!("{what} has element type {}, which mobilenetc cannot read (float32 weights and integer shape constants are supported)", dtype_name(dtype)))
    })?;
    let size = elem_size(dt).expect("filtered above");
    let shape = dims(what, &t.dims)?;
    let numel = check_bytes(what, &shape, size, src.max_bytes)?;
    if t.segment.is_some() {
        return Err(Error::Invalid(format!("{what} is a segment of a larger tensor, which is not supported")));
    }
    let external;
    let raw: Option<&[u8]> = if t.data_location == Some(DataLocation::External as i32) {
        external = read_external(t, what, numel * size, src)?;
        Some(&external)
    } else {
        t.raw_data.as_deref()
    };
    let data = match raw {
        Some(raw) => {
            if raw.len() != numel * size {
                return Err(Error::Decode(format!(
                    "{what} has {} bytes of raw_data, but shape {} of {} needs {} ({} elements × {size} bytes)",
                    raw.len(),
                    fmt(&shape),
                    dt.as_str_name(),
                    numel * size,
                    numel
                )));
            }
            from_le(dt, raw)
        }
        None => from_typed(dt, t, numel, what, &shape)?,
    };
    Ok(Const { dtype, shape, data })
}

fn from_le(dt: DataType, raw: &[u8]) -> Data {
    use DataType::*;
    fn chunks<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        raw.chunks_exact(N).map(|c| c.try_into().expect("exact chunk"))
    }
    match dt {
        Float => Data::F32(chunks::<4>(raw).map(f32::from_le_bytes).collect()),
        Double => Data::F64(chunks::<8>(raw).map(f64::from_le_bytes).collect()),
        Int64 => Data::I64(chunks::<8>(raw).map(i64::from_le_bytes).collect()),
        Uint64 => Data::I64(chunks::<8>(raw).map(|b| u64::from_le_bytes(b) as i64).collect()),
        Int32 => Data::I64(chunks::<4>(raw).map(|b| i32::from_le_bytes(b) as i64).collect()),
        Uint32 => Data::I64(chunks::<4>(raw).map(|b| u32::from_le_bytes(b) as i64).collect()),
        Int16 => Data::I64(chunks::<2>(raw).map(|b| i16::from_le_bytes(b) as i64).collect()),
        Uint16 => Data::I64(chunks::<2>(raw).map(|b| u16::from_le_bytes(b) as i64).collect()),
        Int8 => Data::I64(raw.iter().map(|&b| b as i8 as i64).collect()),
        Uint8 => Data::I64(raw.iter().map(|&b| b as i64).collect()),
        Bool => Data::I64(raw.iter().map(|&b| (b != 0) as i64).collect()),
        _ => unreachable!("elem_size filters the types"),
    }
}

/// Reads the typed field ONNX assigns to each element type.
fn from_typed(dt: DataType, t: &TensorProto, numel: usize, what: &str, shape: &[usize]) -> Result<Data> {
    use DataType::*;
    let (field, len, data) = match dt {
        Float => ("float_data", t.float_data.len(), Data::F32(t.float_data.clone())),
        Double => ("double_data", t.double_data.len(), Data::F64(t.double_data.clone())),
        Int64 => ("int64_data", t.int64_data.len(), Data::I64(t.int64_data.clone())),
        Uint32 | Uint64 => ("uint64_data", t.uint64_data.len(), Data::I64(t.uint64_data.iter().map(|&v| v as i64).collect())),
        Bool => ("int32_data", t.int32_data.len(), Data::I64(t.int32_data.iter().map(|&v| (v != 0) as i64).collect())),
        _ => ("int32_data", t.int32_data.len(), Data::I64(t.int32_data.iter().map(|&v| v as i64).collect())),
    };
    if len != numel {
        return Err(Error::Decode(format!("{what} has {len} values in {field} (and no raw_data), but its shape {} of {} needs {numel}", fmt(shape), dt.as_str_name())));
    }
    Ok(data)
}

/// Reads data stored outside the model (`data_location = EXTERNAL`): a file named relative
/// to the model's directory, with an optional offset and length.
fn read_external(t: &TensorProto, what: &str, want: usize, src: &Source) -> Result<Vec<u8>> {
    let key = |k: &str| t.external_data.iter().find(|e| e.key.as_deref() == Some(k)).and_then(|e| e.value.clone());
    let location = key("location").ok_or_else(|| Error::Decode(format!("{what} is stored externally but names no location")))?;
    let Some(dir) = src.dir else {
        return Err(Error::Invalid(format!(
            "{what} stores its data in the external file '{location}'; import the model from its file (not from bytes) so that the data can be read next to it"
        )));
    };
    let rel = Path::new(&location);
    // The location must stay inside the model's directory: a model must not read arbitrary files.
    if rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(Error::Invalid(format!("{what}: external data location '{location}' must be a relative path inside the model's directory")));
    }
    let num = |k: &str| -> Result<Option<u64>> {
        key(k).map(|v| v.trim().parse::<u64>().map_err(|_| Error::Decode(format!("{what}: external data {k} '{v}' is not a number")))).transpose()
    };
    let offset = num("offset")?.unwrap_or(0);
    let length = num("length")?;
    if let Some(len) = length {
        if len != want as u64 {
            return Err(Error::Decode(format!("{what}: external data length is {len} bytes but its shape needs {want}")));
        }
    }
    let path = dir.join(rel);
    let mut f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    let size = f.metadata().map_err(|e| Error::io(&path, e))?.len();
    if offset.checked_add(want as u64).is_none_or(|end| end > size) {
        return Err(Error::Decode(format!("{what}: external file '{}' has {size} bytes, too few for {want} bytes at offset {offset}", path.display())));
    }
    f.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(&path, e))?;
    let mut buf = vec![0u8; want];
    f.read_exact(&mut buf).map_err(|e| Error::io(&path, e))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> Source<'static> {
        Source { dir: None, max_bytes: 1 << 20 }
    }

    fn tensor(dt: DataType, dims: &[i64]) -> TensorProto {
        TensorProto { data_type: Some(dt as i32), dims: dims.to_vec(), name: Some("w".into()), ..Default::default() }
    }

    #[test]
    fn raw_and_typed_fields_agree() {
        let vals = [1.5f32, -2.0, 0.25, 8.0, 3.0, -0.5];
        let mut raw = tensor(DataType::Float, &[2, 3]);
        raw.raw_data = Some(vals.iter().flat_map(|v| v.to_le_bytes()).collect());
        let mut typed = tensor(DataType::Float, &[2, 3]);
        typed.float_data = vals.to_vec();
        let a = decode_tensor(&raw, "w", &src()).unwrap();
        assert_eq!(a, decode_tensor(&typed, "w", &src()).unwrap());
        assert_eq!(a.data, Data::F32(vals.to_vec()));

        let mut i = tensor(DataType::Int64, &[3]);
        i.raw_data = Some([7i64, -1, 0].iter().flat_map(|v| v.to_le_bytes()).collect());
        assert_eq!(decode_tensor(&i, "s", &src()).unwrap().data, Data::I64(vec![7, -1, 0]));
        let mut i = tensor(DataType::Int32, &[2]);
        i.int32_data = vec![-3, 4];
        assert_eq!(decode_tensor(&i, "s", &src()).unwrap().data, Data::I64(vec![-3, 4]));
        let mut d = tensor(DataType::Double, &[]);
        d.double_data = vec![6.0];
        let c = decode_tensor(&d, "s", &src()).unwrap();
        assert_eq!((c.shape.len(), c.data), (0, Data::F64(vec![6.0])));
    }

    #[test]
    fn length_mismatch_and_limits() {
        let mut t = tensor(DataType::Float, &[2, 3]);
        t.raw_data = Some(vec![0; 20]);
        let e = decode_tensor(&t, "initializer 'w'", &src()).unwrap_err().to_string();
        assert!(e.contains("20 bytes") && e.contains("needs 24"), "{e}");
        let mut t = tensor(DataType::Float, &[2, 3]);
        t.float_data = vec![1.0];
        assert!(decode_tensor(&t, "w", &src()).unwrap_err().to_string().contains("float_data"));
        let t = tensor(DataType::Float, &[1 << 20, 1 << 20]);
        assert!(matches!(decode_tensor(&t, "w", &src()), Err(Error::Limit(_))));
        let t = tensor(DataType::Float, &[i64::MAX, i64::MAX]);
        assert!(matches!(decode_tensor(&t, "w", &src()), Err(Error::Limit(_))));
        let t = tensor(DataType::Float, &[-1]);
        assert!(matches!(decode_tensor(&t, "w", &src()), Err(Error::Decode(_))));
        let t = tensor(DataType::Float16, &[1]);
        assert!(decode_tensor(&t, "w", &src()).unwrap_err().to_string().contains("FLOAT16"));
    }

    #[test]
    fn external_data_next_to_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = [9.0f32, 1.0, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.path().join("w.bin"), [&[0u8; 4][..], &bytes].concat()).unwrap();
        let mut t = tensor(DataType::Float, &[3]);
        t.data_location = Some(DataLocation::External as i32);
        let kv = |k: &str, v: &str| mobilenetc_runtime::onnx::StringStringEntryProto { key: Some(k.into()), value: Some(v.into()) };
        t.external_data = vec![kv("location", "w.bin"), kv("offset", "4"), kv("length", "12")];
        let s = Source { dir: Some(dir.path()), max_bytes: 1 << 20 };
        assert_eq!(decode_tensor(&t, "w", &s).unwrap().data, Data::F32(vec![9.0, 1.0, 2.0]));
        let e = decode_tensor(&t, "w", &src()).unwrap_err().to_string();
        assert!(e.contains("external file 'w.bin'") && e.contains("import the model from its file"), "{e}");
        t.external_data[0] = kv("location", "../etc/passwd");
        assert!(decode_tensor(&t, "w", &s).unwrap_err().to_string().contains("inside the model's directory"));
        t.external_data = vec![kv("location", "w.bin"), kv("offset", "8")];
        assert!(decode_tensor(&t, "w", &s).unwrap_err().to_string().contains("too few"));
    }
}
