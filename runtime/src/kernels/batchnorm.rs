//! BatchNormalization in inference mode, per channel of a `[outer, c, inner]` view:
//! NHWC is `outer = n·h·w, inner = 1`; row-major NCHW is `outer = n, inner = h·w`.
//! (Lowering usually folds it into the preceding conv; this is the standalone op.)

use super::Act;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm {
    pub outer: usize,
    pub c: usize,
    pub inner: usize,
    pub eps: f32,
    pub act: Act,
}

impl BatchNorm {
    pub const fn len(&self) -> usize {
        self.outer * self.c * self.inner
    }

    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub const fn packed_len(&self) -> usize {
        2 * self.c
    }

    /// Folds (scale, bias, mean, var) into `[mul; c]` then `[add; c]`:
    /// `y = x·mul + add` with `mul = scale / sqrt(var + eps)`, `add = bias − mean·mul`.
    pub fn pack(&self, scale: &[f32], bias: &[f32], mean: &[f32], var: &[f32]) -> Vec<f32> {
        let c = self.c;
        assert!(scale.len() == c && bias.len() == c && mean.len() == c && var.len() == c, "batchnorm: parameter lengths");
        let mut p = vec![0.0; 2 * c];
        for i in 0..c {
            let mul = (scale[i] as f64 / (var[i] as f64 + self.eps as f64).sqrt()) as f32;
            p[i] = mul;
            p[c + i] = (bias[i] as f64 - mean[i] as f64 * mul as f64) as f32;
        }
        p
    }

    pub fn run(&self, input: &[f32], packed: &[f32], out: &mut [f32]) {
        assert_eq!(input.len(), self.len(), "batchnorm: input length");
        assert_eq!(out.len(), self.len(), "batchnorm: output length");
        assert_eq!(packed.len(), self.packed_len(), "batchnorm: packed length");
        let (c, inner, act) = (self.c, self.inner, self.act);
        let (mul, add) = packed.split_at(c);
        if inner == 1 {
            for (o, x) in out.chunks_exact_mut(c).zip(input.chunks_exact(c)) {
                for i in 0..c {
                    o[i] = act.apply(x[i] * mul[i] + add[i]);
                }
            }
        } else {
            for (o, x) in out.chunks_exact_mut(inner).zip(input.chunks_exact(inner)).enumerate().map(|(t, p)| (t % c, p)) {
                let (ob, xb) = x;
                for (d, &s) in ob.iter_mut().zip(xb) {
                    *d = act.apply(s * mul[o] + add[o]);
                }
            }
        }
    }
}
