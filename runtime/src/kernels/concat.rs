//! Concat along any axis of row-major tensors, viewed as `[outer, axis_i · inner]` each.

/// Concatenation of inputs whose shapes differ only on the concat axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concat<'a> {
    /// Product of the dims before the axis.
    pub outer: usize,
    /// Product of the dims after the axis.
    pub inner: usize,
    /// Each input's size on the axis.
    pub axis_lens: &'a [usize],
}

impl Concat<'_> {
    pub fn output_len(&self) -> usize {
        self.outer * self.inner * self.axis_lens.iter().sum::<usize>()
    }

    pub fn run(&self, inputs: &[&[f32]], out: &mut [f32]) {
        assert_eq!(inputs.len(), self.axis_lens.len(), "concat: input count");
        assert_eq!(out.len(), self.output_len(), "concat: output length");
        let row: usize = self.axis_lens.iter().sum::<usize>() * self.inner;
        let mut off = 0;
        for (x, &a) in inputs.iter().zip(self.axis_lens) {
            let seg = a * self.inner;
            assert_eq!(x.len(), self.outer * seg, "concat: input length");
            for o in 0..self.outer {
                out[o * row + off..o * row + off + seg].copy_from_slice(&x[o * seg..(o + 1) * seg]);
            }
            off += seg;
        }
    }
}
