//! NumPy `.npy` files: the exchange format with the Python reference peers and for user inputs.
//!
//! Writes little-endian f32 (`<f4`), C order, header version 1.0 (2.0 when the header would not
//! fit in v1.0's 16-bit length). Reads versions 1.0, 2.0 and 3.0 with dtype `<f4`, and — so that
//! inputs saved by any NumPy script can be fed in — `<f8`, `|u1` and `<i8`, converted to f32.
//! Everything else (Fortran order, big-endian data, other dtypes, a malformed header, short or
//! over-long data) is a [`NpyError`], never a panic: these files come from users.

use std::fmt;
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// NumPy pads the header so that the data starts at a multiple of this (aligned loads).
const ALIGN: usize = 64;

/// An n-dimensional f32 array in C (row-major) order.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Array {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Array, NpyError> {
        let n = numel(&shape)?;
        if n != data.len() {
            return Err(NpyError::ShapeMismatch { shape, len: data.len() });
        }
        Ok(Array { shape, data })
    }
}

#[derive(Debug)]
pub enum NpyError {
    Io(std::io::Error),
    /// The file does not start with `\x93NUMPY`.
    NotNpy,
    UnsupportedVersion(u8, u8),
    BadHeader(String),
    UnsupportedDtype(String),
    FortranOrder,
    /// Fewer data bytes than the header's shape and dtype need.
    Truncated { expected: usize, got: usize },
    /// More data bytes than the header's shape and dtype account for.
    TrailingData { expected: usize, got: usize },
    /// A shape whose element count overflows, or that disagrees with the data given.
    ShapeMismatch { shape: Vec<usize>, len: usize },
}

impl fmt::Display for NpyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NpyError::Io(e) => write!(f, "{e}"),
            NpyError::NotNpy => write!(f, "not a .npy file (no \\x93NUMPY magic)"),
            NpyError::UnsupportedVersion(a, b) => {
                write!(f, "unsupported .npy format version {a}.{b} (supported: 1.0, 2.0, 3.0)")
            }
            NpyError::BadHeader(why) => write!(f, "malformed .npy header: {why}"),
            NpyError::UnsupportedDtype(d) => write!(
                f,
                "unsupported .npy dtype {d:?} (supported: '<f4', '<f8', '|u1', '<i8'; \
                 convert with arr.astype('<f4'))"
            ),
            NpyError::FortranOrder => write!(
                f,
                "Fortran-order .npy arrays are not supported (save np.ascontiguousarray(arr))"
            ),
            NpyError::Truncated { expected, got } => {
                write!(f, ".npy data truncated: header needs {expected} bytes, file has {got}")
            }
            NpyError::TrailingData { expected, got } => {
                write!(f, ".npy data too long: header needs {expected} bytes, file has {got}")
            }
            NpyError::ShapeMismatch { shape, len } => {
                write!(f, "shape {shape:?} does not describe {len} elements")
            }
        }
    }
}

impl std::error::Error for NpyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NpyError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for NpyError {
    fn from(e: std::io::Error) -> Self {
        NpyError::Io(e)
    }
}

/// The element types accepted on reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dtype {
    F32,
    F64,
    U8,
    I64,
}

impl Dtype {
    fn parse(descr: &str) -> Result<Dtype, NpyError> {
        // '|' (not applicable) is what NumPy writes for one-byte types; '=' is native order,
        // which NumPy normalizes away on save, so we only see it in hand-made files.
        Ok(match descr {
            "<f4" => Dtype::F32,
            "<f8" => Dtype::F64,
            "|u1" | "<u1" => Dtype::U8,
            "<i8" => Dtype::I64,
            _ => return Err(NpyError::UnsupportedDtype(descr.to_string())),
        })
    }
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::U8 => 1,
        }
    }
}

fn numel(shape: &[usize]) -> Result<usize, NpyError> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| NpyError::ShapeMismatch { shape: shape.to_vec(), len: 0 })
}

/// Reads a `.npy` file; errors name the file.
pub fn read(path: &Path) -> Result<Array, NpyError> {
    let bytes = std::fs::read(path).map_err(|e| {
        NpyError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    })?;
    parse(&bytes)
}

/// Decodes the bytes of a `.npy` file.
pub fn parse(bytes: &[u8]) -> Result<Array, NpyError> {
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(NpyError::NotNpy);
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, header_start) = match (major, minor) {
        (1, 0) => (2, 10),
        (2, 0) | (3, 0) => (4, 12),
        _ => return Err(NpyError::UnsupportedVersion(major, minor)),
    };
    if bytes.len() < header_start {
        return Err(NpyError::BadHeader("file ends inside the header length".into()));
    }
    let header_len = bytes[8..8 + len_bytes]
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | b as usize);
    let data_start = header_start
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            NpyError::BadHeader(format!(
                "header length {header_len} runs past the end of the {}-byte file",
                bytes.len()
            ))
        })?;
    // Version 1.0/2.0 headers are latin-1, 3.0 UTF-8; the keys and values we accept are ASCII.
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| NpyError::BadHeader("header is not ASCII text".into()))?;
    let h = Header::parse(header)?;
    if h.fortran_order {
        return Err(NpyError::FortranOrder);
    }
    let n = numel(&h.shape)?;
    let data = &bytes[data_start..];
    let expected = n
        .checked_mul(h.dtype.size())
        .ok_or_else(|| NpyError::ShapeMismatch { shape: h.shape.clone(), len: 0 })?;
    if data.len() < expected {
        return Err(NpyError::Truncated { expected, got: data.len() });
    }
    if data.len() > expected {
        return Err(NpyError::TrailingData { expected, got: data.len() });
    }
    let values: Vec<f32> = match h.dtype {
        Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        Dtype::F64 => {
            data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect()
        }
        Dtype::I64 => {
            data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32).collect()
        }
        Dtype::U8 => data.iter().map(|&b| b as f32).collect(),
    };
    Ok(Array { shape: h.shape, data: values })
}

/// Encodes `data` of `shape` as a `.npy` file (`<f4`, C order).
pub fn to_bytes(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, NpyError> {
    if numel(shape)? != data.len() {
        return Err(NpyError::ShapeMismatch { shape: shape.to_vec(), len: data.len() });
    }
    let shape_str = match shape {
        [d] => format!("({d},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_str}, }}");
    // Pad with spaces and end with '\n' so the data starts on an ALIGN boundary.
    let pad = |prefix: usize| {
        let unpadded = prefix + dict.len() + 1;
        unpadded.next_multiple_of(ALIGN) - unpadded
    };
    let (version, prefix) = if 10 + dict.len() + 1 + pad(10) <= 10 + u16::MAX as usize {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let header_len = dict.len() + pad(prefix) + 1;
    let mut out = Vec::with_capacity(prefix + header_len + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        let len = u32::try_from(header_len)
            .map_err(|_| NpyError::BadHeader("shape too long for a .npy header".into()))?;
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad(prefix)));
    out.push(b'\n');
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// Writes `data` of `shape` as a `.npy` file (`<f4`, C order).
pub fn write(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), NpyError> {
    let bytes = to_bytes(shape, data)?;
    let mut f = std::fs::File::create(path).map_err(|e| {
        NpyError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    })?;
    f.write_all(&bytes)?;
    Ok(())
}

/// The three keys of a `.npy` header dict.
struct Header {
    dtype: Dtype,
    fortran_order: bool,
    shape: Vec<usize>,
}

impl Header {
    /// Parses the Python dict literal NumPy writes, e.g.
    /// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` followed by padding.
    fn parse(text: &str) -> Result<Header, NpyError> {
        let mut p = Lexer { s: text.trim_end_matches(['\n', ' ', '\0']).as_bytes(), i: 0 };
        let mut descr = None;
        let mut fortran = None;
        let mut shape = None;
        p.expect(b'{')?;
        loop {
            p.skip_ws();
            if p.eat(b'}') {
                break;
            }
            let key = p.string()?;
            p.expect(b':')?;
            match key.as_str() {
                "descr" => descr = Some(p.string()?),
                "fortran_order" => fortran = Some(p.boolean()?),
                "shape" => shape = Some(p.tuple()?),
                other => return Err(NpyError::BadHeader(format!("unexpected key {other:?}"))),
            }
            p.skip_ws();
            if !p.eat(b',') {
                p.expect(b'}')?;
                break;
            }
        }
        p.skip_ws();
        if p.i != p.s.len() {
            return Err(NpyError::BadHeader("text after the header dict".into()));
        }
        let missing = |k: &str| NpyError::BadHeader(format!("missing key '{k}'"));
        let descr = descr.ok_or_else(|| missing("descr"))?;
        let fortran_order = fortran.ok_or_else(|| missing("fortran_order"))?;
        let shape = shape.ok_or_else(|| missing("shape"))?;
        // Fortran order is reported before the dtype: it is the more useful message.
        if fortran_order {
            return Ok(Header { dtype: Dtype::F32, fortran_order, shape });
        }
        Ok(Header { dtype: Dtype::parse(&descr)?, fortran_order, shape })
    }
}

/// A tiny cursor over the header's Python literal syntax.
struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), NpyError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(NpyError::BadHeader(format!("expected '{}' at byte {}", c as char, self.i)))
        }
    }
    fn string(&mut self) -> Result<String, NpyError> {
        self.skip_ws();
        let quote = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(NpyError::BadHeader(format!("expected a string at byte {}", self.i))),
        };
        let start = self.i + 1;
        let len = self.s[start..]
            .iter()
            .position(|&b| b == quote)
            .ok_or_else(|| NpyError::BadHeader("unterminated string".into()))?;
        self.i = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }
    fn boolean(&mut self) -> Result<bool, NpyError> {
        self.skip_ws();
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s[self.i..].starts_with(word) {
                self.i += word.len();
                return Ok(value);
            }
        }
        Err(NpyError::BadHeader(format!("expected True or False at byte {}", self.i)))
    }
    fn tuple(&mut self) -> Result<Vec<usize>, NpyError> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            if self.eat(b')') {
                return Ok(dims);
            }
            self.skip_ws();
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            // Also skips a Python 2 long suffix ('3L'), which old NumPy wrote.
            let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            let d = digits.parse::<usize>().map_err(|_| {
                NpyError::BadHeader(format!("expected a dimension at byte {start}"))
            })?;
            if self.s.get(self.i) == Some(&b'L') {
                self.i += 1;
            }
            dims.push(d);
            if !self.eat(b',') {
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files written by NumPy 2.4 (runtime/testdata/npy/make.py made them).
    const NP_F32_2X3: &[u8] = include_bytes!("../testdata/npy/f32_2x3.npy");
    const NP_F64_4: &[u8] = include_bytes!("../testdata/npy/f64_4.npy");
    const NP_U8_2X2: &[u8] = include_bytes!("../testdata/npy/u8_2x2.npy");
    const NP_I64_3: &[u8] = include_bytes!("../testdata/npy/i64_3.npy");
    const NP_F32_SCALAR: &[u8] = include_bytes!("../testdata/npy/f32_scalar.npy");
    const NP_F32_V2: &[u8] = include_bytes!("../testdata/npy/f32_v2.npy");
    const NP_F32_FORTRAN: &[u8] = include_bytes!("../testdata/npy/f32_fortran.npy");
    const NP_F32_BE: &[u8] = include_bytes!("../testdata/npy/f32_be.npy");
    const NP_I32: &[u8] = include_bytes!("../testdata/npy/i32_2.npy");

    #[test]
    fn reads_numpy_f32() {
        let a = parse(NP_F32_2X3).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![0.0, 1.5, -2.25, 3.0e-8, 1.0e10, -0.0]);
    }

    #[test]
    fn reads_numpy_converted_dtypes() {
        assert_eq!(parse(NP_F64_4).unwrap(), Array { shape: vec![4], data: vec![0.1f64 as f32, -2.5, 1e300f64 as f32, 7.0] });
        assert_eq!(parse(NP_U8_2X2).unwrap(), Array { shape: vec![2, 2], data: vec![0.0, 1.0, 128.0, 255.0] });
        assert_eq!(parse(NP_I64_3).unwrap(), Array { shape: vec![3], data: vec![-1.0, 0.0, 1234567.0] });
    }

    #[test]
    fn reads_numpy_scalar_and_v2_header() {
        assert_eq!(parse(NP_F32_SCALAR).unwrap(), Array { shape: vec![], data: vec![42.5] });
        let a = parse(NP_F32_V2).unwrap();
        assert_eq!(a.shape, vec![3]);
        assert_eq!(a.data, vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn refuses_fortran_big_endian_and_other_dtypes() {
        assert!(matches!(parse(NP_F32_FORTRAN), Err(NpyError::FortranOrder)));
        assert!(matches!(parse(NP_F32_BE), Err(NpyError::UnsupportedDtype(d)) if d == ">f4"));
        assert!(matches!(parse(NP_I32), Err(NpyError::UnsupportedDtype(d)) if d == "<i4"));
    }

    #[test]
    fn writes_what_numpy_writes() {
        // Same header text, padding and data as NumPy's own file for this array.
        let ours = to_bytes(&[2, 3], &[0.0, 1.5, -2.25, 3.0e-8, 1.0e10, -0.0]).unwrap();
        assert_eq!(ours, NP_F32_2X3);
        assert_eq!(to_bytes(&[], &[42.5]).unwrap(), NP_F32_SCALAR);
    }

    #[test]
    fn round_trips_shapes() {
        for shape in [vec![], vec![0], vec![1], vec![5], vec![2, 3, 4, 5], vec![1, 0, 3]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let bytes = to_bytes(&shape, &data).unwrap();
            let start = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
            assert_eq!(start % ALIGN, 0, "data of {shape:?} not aligned");
            assert_eq!(parse(&bytes).unwrap(), Array { shape, data });
        }
    }

    #[test]
    fn long_header_uses_version_2() {
        // 30 000 dimensions of 1 ("1, " each) do not fit in a 65 535-byte v1.0 header.
        let shape = vec![1usize; 30_000];
        let bytes = to_bytes(&shape, &[7.0]).unwrap();
        assert_eq!(&bytes[6..8], &[2, 0]);
        assert_eq!(parse(&bytes).unwrap(), Array { shape, data: vec![7.0] });
    }

    #[test]
    fn refuses_truncated_and_long_data() {
        let good = to_bytes(&[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        let short = &good[..good.len() - 3];
        assert!(matches!(parse(short), Err(NpyError::Truncated { expected: 16, got: 13 })));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(parse(&long), Err(NpyError::TrailingData { expected: 16, got: 17 })));
        // Cut inside the header and inside the magic.
        for cut in [0, 3, 7, 9, 20, 60] {
            assert!(parse(&good[..cut]).is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn refuses_bad_headers() {
        let with_header = |h: &str| {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&[1, 0]);
            b.extend_from_slice(&(h.len() as u16).to_le_bytes());
            b.extend_from_slice(h.as_bytes());
            b
        };
        for h in [
            "",
            "{",
            "{'descr': '<f4', 'fortran_order': False}\n",
            "{'descr': '<f4', 'shape': (1,)}\n",
            "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}\n",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (a,)}\n",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}\n",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}\n",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk\n",
            "{'descr: '<f4'}\n",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999)}\n",
        ] {
            let e = parse(&with_header(h)).expect_err(h);
            assert!(!e.to_string().is_empty());
        }
        // Header length pointing past the end.
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[1, 0, 0xff, 0xff, b'{']);
        assert!(matches!(parse(&b), Err(NpyError::BadHeader(_))));
        // Unknown versions and not-npy input.
        let mut v9 = to_bytes(&[1], &[1.0]).unwrap();
        v9[6] = 9;
        assert!(matches!(parse(&v9), Err(NpyError::UnsupportedVersion(9, 0))));
        assert!(matches!(parse(b"PK\x03\x04 not npy"), Err(NpyError::NotNpy)));
    }

    #[test]
    fn write_refuses_inconsistent_shape() {
        assert!(matches!(to_bytes(&[2, 2], &[1.0]), Err(NpyError::ShapeMismatch { .. })));
        assert!(Array::new(vec![3], vec![1.0, 2.0]).is_err());
    }

    #[test]
    fn file_round_trip_and_missing_file_error_names_path() {
        let dir = std::env::temp_dir().join(format!("npy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.npy");
        write(&p, &[3], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(read(&p).unwrap().data, vec![1.0, 2.0, 3.0]);
        let missing = dir.join("nope.npy");
        let e = read(&missing).unwrap_err();
        assert!(e.to_string().contains("nope.npy"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest::proptest! {
        /// Arbitrary bytes after a valid prefix never panic, whatever they claim.
        #[test]
        fn never_panics_on_garbage(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..200), version in 0u8..4, cut in 0usize..300) {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&[version, 0]);
            b.extend_from_slice(&tail);
            let _ = parse(&b);
            let good = to_bytes(&[3, 2], &[1.0; 6]).unwrap();
            let _ = parse(&good[..cut.min(good.len())]);
            let mut flipped = good.clone();
            for (i, t) in tail.iter().enumerate() {
                let at = (i * 7 + *t as usize) % flipped.len();
                flipped[at] ^= t;
            }
            let _ = parse(&flipped);
        }
    }
}
