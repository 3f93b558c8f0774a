//! How tests compare a result with the oracle's.

use crate::graph::Tensor;

/// The largest element-wise difference relative to the reference's scale:
/// max |a − r| / max(max |r|, 1e-30). Infinity if the shapes differ or a value is NaN where the
/// other is not. Relative to the tensor's scale rather than to each element, so a near-zero
/// element after cancellation does not dominate.
pub fn max_rel_diff(a: &Tensor, reference: &Tensor) -> f64 {
    if a.shape != reference.shape || a.data.len() != reference.data.len() {
        return f64::INFINITY;
    }
    let scale = reference.data.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs())).max(1e-30);
    let mut worst = 0.0f64;
    for (&x, &r) in a.data.iter().zip(&reference.data) {
        let d = if x == r { 0.0 } else if x.is_nan() || r.is_nan() { f64::INFINITY } else { (x as f64 - r as f64).abs() };
        worst = worst.max(d / scale);
    }
    worst
}
