//! Global average pool gradient: every pixel of a channel gets `dy / (h·w)`.

/// `dx [n, hw, c]` (NHWC) from `dy [n, c]`.
pub fn global_avg_pool_backward(n: usize, hw: usize, c: usize, dy: &[f32], dx: &mut [f32]) {
    assert_eq!(dy.len(), n * c, "global average pool backward: dy length");
    assert_eq!(dx.len(), n * hw * c, "global average pool backward: dx length");
    let inv = 1.0 / hw as f32;
    for b in 0..n {
        let g = &dy[b * c..(b + 1) * c];
        for px in dx[b * hw * c..(b + 1) * hw * c].chunks_exact_mut(c) {
            for (o, &v) in px.iter_mut().zip(g) {
                *o = v * inv;
            }
        }
    }
}
