//! ReLU and Clip (ReLU6) gradients, masked by the saved forward *output*: the gradient passes
//! where `min < y < max` (strictly), which is where `min < x < max`, so the input need not be
//! kept. At the kinks (x exactly min or max) the gradient is 0, as in PyTorch's hardtanh and
//! ReLU backward.

use super::super::Act;
use super::batchnorm::act_bounds;

/// Whether the gradient passes an output `y` of a clamp to `[lo, hi]`. (Non-short-circuit
/// `|` and `&`: no branches, so the loops using it vectorize.)
#[inline(always)]
pub(crate) fn passes(y: f32, lo: f32, hi: f32) -> bool {
    ((y > lo) | (lo == f32::NEG_INFINITY)) & ((y < hi) | (hi == f32::INFINITY))
}

/// `dy_dx[i] = act'(y[i]) · dy_dx[i]` in place.
pub fn act_backward(act: Act, y: &[f32], dy_dx: &mut [f32]) {
    assert_eq!(y.len(), dy_dx.len(), "activation backward: lengths");
    if act == Act::None {
        return;
    }
    let (lo, hi) = act_bounds(act);
    for (d, &v) in dy_dx.iter_mut().zip(y) {
        if !passes(v, lo, hi) {
            *d = 0.0;
        }
    }
}
