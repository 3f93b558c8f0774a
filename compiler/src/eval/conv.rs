//! Convolution and pooling over NCHW activations.

use super::Ctx;
use crate::error::Result;
use crate::graph::{AutoPad, ConvAttrs, PoolAttrs, Tensor};

/// One spatial axis of a conv or pool window.
struct Axis {
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    /// Explicit (begin, end) pads, used when `auto_pad` is NOTSET.
    pads: (usize, usize),
}

/// The output size of one spatial axis and its begin/end padding, `auto_pad` resolved as ONNX
/// defines it (SAME_UPPER puts the odd cell at the end, SAME_LOWER at the beginning).
fn axis_geometry(ctx: &Ctx, axis: Axis, auto_pad: AutoPad, ceil_mode: bool) -> Result<(usize, usize, usize)> {
    let Axis { input, kernel, stride, dilation, pads } = axis;
    if stride == 0 || dilation == 0 || kernel == 0 {
        return Err(ctx.err(format!("kernel {kernel}, stride {stride} and dilation {dilation} must all be positive")));
    }
    let extent = (kernel - 1) * dilation + 1;
    let (begin, end) = match auto_pad {
        AutoPad::NotSet => pads,
        AutoPad::Valid => (0, 0),
        AutoPad::SameUpper | AutoPad::SameLower => {
            let out = input.div_ceil(stride);
            let total = ((out.saturating_sub(1)) * stride + extent).saturating_sub(input);
            let small = total / 2;
            if auto_pad == AutoPad::SameUpper {
                (small, total - small)
            } else {
                (total - small, small)
            }
        }
    };
    let padded = input + begin + end;
    if padded < extent {
        return Err(ctx.err(format!("the kernel extent {extent} exceeds the padded input size {padded}")));
    }
    let mut out = if ceil_mode { (padded - extent).div_ceil(stride) + 1 } else { (padded - extent) / stride + 1 };
    // With ceil_mode, a last window that would start inside the end padding is dropped
    // (the rule of PyTorch and onnxruntime).
    if ceil_mode && (out - 1) * stride >= input + begin {
        out -= 1;
    }
    Ok((out, begin, end))
}

fn nchw(ctx: &Ctx, x: &Tensor, what: &str) -> Result<[usize; 4]> {
    match x.shape[..] {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(ctx.err(format!("{what} must be 4-D NCHW, got shape {:?}", x.shape))),
    }
}

/// ONNX Conv, 2-D, any group; the fused epilogue applied last.
pub(super) fn conv(ctx: &Ctx, a: &ConvAttrs, args: &[&Tensor]) -> Result<Tensor> {
    ctx.arity(args, 2, 3)?;
    let (x, w) = (args[0], args[1]);
    let [n, c, h, wd] = nchw(ctx, x, "the input")?;
    let [m, cg, kh, kw] = nchw(ctx, w, "the weight")?;
    let group = a.group;
    if group == 0 || c % group != 0 || m % group != 0 || cg != c / group {
        return Err(ctx.err(format!("input {:?}, weight {:?} and group {group} disagree (weight must be [M, C/group, kH, kW] with M divisible by group)", x.shape, w.shape)));
    }
    if [kh, kw] != a.kernel && a.kernel != [0, 0] {
        return Err(ctx.err(format!("kernel_shape {:?} disagrees with the weight {:?}", a.kernel, w.shape)));
    }
    let bias = match args.get(2) {
        Some(b) if b.data.len() != m => return Err(ctx.err(format!("bias has shape {:?}, expected [{m}]", b.shape))),
        Some(b) => Some(&b.data),
        None => None,
    };
    let (oh, pt, _) = axis_geometry(ctx, Axis { input: h, kernel: kh, stride: a.strides[0], dilation: a.dilations[0], pads: (a.pads[0], a.pads[2]) }, a.auto_pad, false)?;
    let (ow, pl, _) = axis_geometry(ctx, Axis { input: wd, kernel: kw, stride: a.strides[1], dilation: a.dilations[1], pads: (a.pads[1], a.pads[3]) }, a.auto_pad, false)?;
    let mg = m / group;
    let mut y = Tensor::zeros(vec![n, m, oh, ow]);
    for b in 0..n {
        for oc in 0..m {
            let g0 = oc / mg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(0.0, |b| b[oc] as f64);
                    for ic in 0..cg {
                        let ci = g0 * cg + ic;
                        for ky in 0..kh {
                            let iy = (oy * a.strides[0] + ky * a.dilations[0]) as isize - pt as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = (ox * a.strides[1] + kx * a.dilations[1]) as isize - pl as isize;
                                if ix < 0 || ix >= wd as isize {
                                    continue;
                                }
                                let xv = x.data[((b * c + ci) * h + iy as usize) * wd + ix as usize] as f64;
                                let wv = w.data[((oc * cg + ic) * kh + ky) * kw + kx] as f64;
                                acc += xv * wv;
                            }
                        }
                    }
                    y.data[((b * m + oc) * oh + oy) * ow + ox] = a.activation.apply(acc as f32);
                }
            }
        }
    }
    Ok(y)
}

/// Visits each pooling window: `f(batch·channel plane, out index, in-bounds values, cells of
/// the window inside the padded extent)`.
fn pool(ctx: &Ctx, a: &PoolAttrs, args: &[&Tensor], mut reduce: impl FnMut(&[f64], usize) -> f64) -> Result<Tensor> {
    ctx.arity(args, 1, 1)?;
    let x = args[0];
    let [n, c, h, w] = nchw(ctx, x, "the input")?;
    let [kh, kw] = a.kernel;
    let (oh, pt, pb) = axis_geometry(ctx, Axis { input: h, kernel: kh, stride: a.strides[0], dilation: a.dilations[0], pads: (a.pads[0], a.pads[2]) }, a.auto_pad, a.ceil_mode)?;
    let (ow, pl, pr) = axis_geometry(ctx, Axis { input: w, kernel: kw, stride: a.strides[1], dilation: a.dilations[1], pads: (a.pads[1], a.pads[3]) }, a.auto_pad, a.ceil_mode)?;
    let mut y = Tensor::zeros(vec![n, c, oh, ow]);
    let mut window = Vec::with_capacity(kh * kw);
    for plane in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                window.clear();
                let mut padded_cells = 0;
                for ky in 0..kh {
                    let iy = (oy * a.strides[0] + ky * a.dilations[0]) as isize - pt as isize;
                    for kx in 0..kw {
                        let ix = (ox * a.strides[1] + kx * a.dilations[1]) as isize - pl as isize;
                        let in_padded = iy < (h + pb) as isize && ix < (w + pr) as isize;
                        if in_padded {
                            padded_cells += 1;
                        }
                        if iy >= 0 && iy < h as isize && ix >= 0 && ix < w as isize {
                            window.push(x.data[(plane * h + iy as usize) * w + ix as usize] as f64);
                        }
                    }
                }
                y.data[(plane * oh + oy) * ow + ox] = reduce(&window, padded_cells) as f32;
            }
        }
    }
    Ok(y)
}

pub(super) fn average_pool(ctx: &Ctx, a: &PoolAttrs, args: &[&Tensor]) -> Result<Tensor> {
    let include_pad = a.count_include_pad;
    pool(ctx, a, args, |vals, padded_cells| {
        let count = if include_pad { padded_cells } else { vals.len() };
        if count == 0 {
            0.0
        } else {
            vals.iter().sum::<f64>() / count as f64
        }
    })
}

pub(super) fn max_pool(ctx: &Ctx, a: &PoolAttrs, args: &[&Tensor]) -> Result<Tensor> {
    // Padding never wins a max; a window entirely in padding gives -inf, as in onnxruntime.
    pool(ctx, a, args, |vals, _| vals.iter().copied().fold(f64::NEG_INFINITY, f64::max))
}

/// Mean over every axis after the first two: [N, C, ...] → [N, C, 1, ...].
pub(super) fn global_average_pool(ctx: &Ctx, args: &[&Tensor]) -> Result<Tensor> {
    ctx.arity(args, 1, 1)?;
    let x = args[0];
    if x.shape.len() < 3 {
        return Err(ctx.err(format!("the input must be [N, C, spatial...], got shape {:?}", x.shape)));
    }
    let planes = x.shape[0] * x.shape[1];
    let area: usize = x.shape[2..].iter().product();
    let mut shape = x.shape.clone();
    shape[2..].iter_mut().for_each(|d| *d = 1);
    let data = (0..planes).map(|p| (x.data[p * area..(p + 1) * area].iter().map(|&v| v as f64).sum::<f64>() / area as f64) as f32).collect();
    Ok(Tensor::new(shape, data))
}
