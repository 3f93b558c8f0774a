//! Softmax (and LogSoftmax) over one axis of a row-major tensor viewed as `[outer, axis, inner]`.

/// Softmax over the middle dimension of `[outer, axis, inner]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Softmax {
    pub outer: usize,
    pub axis: usize,
    pub inner: usize,
    /// LogSoftmax instead of Softmax.
    pub log: bool,
}

impl Softmax {
    /// Softmax over `axis` of a tensor of `shape` (negative axes count from the end).
    pub fn for_shape(shape: &[usize], axis: isize, log: bool) -> Option<Softmax> {
        let r = shape.len() as isize;
        let a = if axis < 0 { axis + r } else { axis };
        if a < 0 || a >= r {
            return None;
        }
        let a = a as usize;
        Some(Softmax { outer: shape[..a].iter().product(), axis: shape[a], inner: shape[a + 1..].iter().product(), log })
    }

    pub const fn len(&self) -> usize {
        self.outer * self.axis * self.inner
    }

    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs the softmax; `input` and `out` may be the same data (use [`Softmax::run_inplace`]).
    pub fn run(&self, input: &[f32], out: &mut [f32]) {
        assert_eq!(input.len(), self.len(), "softmax: input length");
        out.copy_from_slice(input);
        self.run_inplace(out);
    }

    pub fn run_inplace(&self, x: &mut [f32]) {
        assert_eq!(x.len(), self.len(), "softmax: length");
        let (a, inner) = (self.axis, self.inner);
        for o in 0..self.outer {
            for i in 0..inner {
                let base = o * a * inner + i;
                softmax_strided(&mut x[base..], a, inner, self.log);
            }
        }
    }
}

/// Softmax of `len` values at stride `stride` from the start of `x`, max-subtracted for range.
#[inline]
pub(crate) fn softmax_strided(x: &mut [f32], len: usize, stride: usize, log: bool) {
    let mut max = f32::NEG_INFINITY;
    for j in 0..len {
        max = max.max(x[j * stride]);
    }
    let mut sum = 0.0f32;
    for j in 0..len {
        let e = (x[j * stride] - max).exp();
        if !log {
            x[j * stride] = e;
        }
        sum += e;
    }
    if log {
        let l = sum.ln();
        for j in 0..len {
            x[j * stride] = x[j * stride] - max - l;
        }
    } else {
        let inv = 1.0 / sum;
        for j in 0..len {
            x[j * stride] *= inv;
        }
    }
}
