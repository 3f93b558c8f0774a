//! A saved optimizer state and its byte encoding (for checkpoints).
//!
//! Encoding, little-endian: magic `MNCOPT01`, kind (u32 length + UTF-8), step (u64), buffer
//! count (u32), then per buffer: name (u32 length + UTF-8), value count (u64), f32 values.

use super::OptimError;

/// The step count and named per-slot buffers (`"{slot}.momentum"`, `"{slot}.m"`, `"{slot}.v"`).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimState {
    /// `"sgd"` or `"adam"`.
    pub kind: String,
    pub step: u64,
    pub buffers: Vec<(String, Vec<f32>)>,
}

const MAGIC: &[u8; 8] = b"MNCOPT01";

impl OptimState {
    pub fn encode(&self) -> Vec<u8> {
        let total: usize = self
            .buffers
            .iter()
            .map(|(n, b)| 12 + n.len() + 4 * b.len())
            .sum();
        let mut out = Vec::with_capacity(32 + self.kind.len() + total);
        out.extend_from_slice(MAGIC);
        put_str(&mut out, &self.kind);
        out.extend_from_slice(&self.step.to_le_bytes());
        out.extend_from_slice(&(self.buffers.len() as u32).to_le_bytes());
        for (name, buf) in &self.buffers {
            put_str(&mut out, name);
            out.extend_from_slice(&(buf.len() as u64).to_le_bytes());
            for v in buf {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<OptimState, OptimError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(8)? != MAGIC {
            return Err(OptimError::State(
                "not an optimizer state (bad magic)".into(),
            ));
        }
        let kind = r.string()?;
        let step = r.u64()?;
        let n = r.u32()? as usize;
        let mut buffers = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let name = r.string()?;
            let len = r.u64()? as usize;
            let raw = r.take(
                len.checked_mul(4)
                    .ok_or_else(|| OptimError::State("buffer too large".into()))?,
            )?;
            buffers.push((
                name,
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ));
        }
        if r.pos != bytes.len() {
            return Err(OptimError::State(format!(
                "{} unexpected bytes after the state",
                bytes.len() - r.pos
            )));
        }
        Ok(OptimState {
            kind,
            step,
            buffers,
        })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], OptimError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                OptimError::State(format!(
                    "truncated: needs {n} bytes at offset {}, has {}",
                    self.pos,
                    self.bytes.len() - self.pos
                ))
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, OptimError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, OptimError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn string(&mut self) -> Result<String, OptimError> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| OptimError::State("name is not UTF-8".into()))
    }
}
