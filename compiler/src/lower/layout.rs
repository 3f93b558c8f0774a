//! Physical layouts of lowered tensors.
//!
//! A 4-D tensor of logical (ONNX) shape `[n, c, h, w]` is stored either row-major in that shape
//! or channels-last as `[n, h, w, c]`. Every other rank is row-major.

/// How a lowered tensor's bytes are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    RowMajor,
    /// Logical NCHW stored as NHWC.
    Nhwc,
}

/// NCHW → NHWC as a transpose permutation (output dim d is input dim PERM[d]).
pub const TO_NHWC: [usize; 4] = [0, 2, 3, 1];
/// NHWC → NCHW.
pub const TO_NCHW: [usize; 4] = [0, 3, 1, 2];

/// Whether both layouts of a 4-D shape are the same bytes (one channel, or one pixel).
pub fn trivial(shape: &[usize]) -> bool {
    shape.len() == 4 && (shape[1] == 1 || shape[2] * shape[3] == 1)
}

/// The storage shape of a logical shape in a layout.
pub fn physical(shape: &[usize], layout: Layout) -> Vec<usize> {
    match layout {
        Layout::Nhwc if shape.len() == 4 => permute(shape, &TO_NHWC),
        _ => shape.to_vec(),
    }
}

/// `out[d] = xs[perm[d]]`.
pub fn permute<T: Copy>(xs: &[T], perm: &[usize]) -> Vec<T> {
    perm.iter().map(|&p| xs[p]).collect()
}

/// The position in NHWC storage of logical NCHW axis `axis`.
pub fn nhwc_axis(axis: usize) -> usize {
    [0, 3, 1, 2][axis]
}

/// Transposes row-major data of `shape` by `perm` (for constants, at compile time).
pub fn transpose_data(data: &[f32], shape: &[usize], perm: &[usize]) -> Vec<f32> {
    let r = shape.len();
    let out_shape = permute(shape, perm);
    let mut in_strides = vec![1; r];
    for d in (0..r.saturating_sub(1)).rev() {
        in_strides[d] = in_strides[d + 1] * shape[d + 1];
    }
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; r];
    for _ in 0..data.len() {
        out.push(data[(0..r).map(|d| idx[d] * in_strides[perm[d]]).sum::<usize>()]);
        for d in (0..r).rev() {
            idx[d] += 1;
            if idx[d] < out_shape[d] {
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
    fn nchw_to_nhwc_moves_channels_last() {
        // [1, 2, 1, 3]: channel 0 = 0 1 2, channel 1 = 3 4 5.
        let x: Vec<f32> = (0..6).map(|i| i as f32).collect();
        assert_eq!(transpose_data(&x, &[1, 2, 1, 3], &TO_NHWC), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let back = transpose_data(&transpose_data(&x, &[1, 2, 1, 3], &TO_NHWC), &[1, 1, 3, 2], &TO_NCHW);
        assert_eq!(back, x);
    }

    #[test]
    fn trivial_shapes_share_bytes() {
        assert!(trivial(&[2, 1, 5, 5]));
        assert!(trivial(&[2, 7, 1, 1]));
        assert!(!trivial(&[1, 2, 1, 2]));
        assert!(!trivial(&[1, 2]));
    }
}
