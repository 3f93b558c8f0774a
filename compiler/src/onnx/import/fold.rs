//! Evaluation of the static sub-graphs exporters write around reshapes (`Shape → Gather →
//! Unsqueeze → Concat → Reshape`, Constant nodes, int64/f32 arithmetic): each function takes
//! constant operands and returns the constant result, so the chain disappears at import.
//! Every result size is checked against the limit before it is allocated.

use mobilenetc_runtime::onnx::tensor_proto::DataType;

use super::tensors::{check_bytes, dtype_name, Const, Data};
use crate::graph::shape::{broadcast, fmt, reshape_target};

/// A folding failure: the message is wrapped into an error naming the node by the caller.
pub type FoldResult<T> = std::result::Result<T, FoldError>;

#[derive(Debug)]
pub enum FoldError {
    /// The operands are wrong for the op.
    Bad(String),
    /// The result would exceed the byte limit.
    Limit(String),
}

fn bad<T>(m: impl Into<String>) -> FoldResult<T> {
    Err(FoldError::Bad(m.into()))
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Checks a result shape against the limit (8 bytes per element: folded data is i64 or f64 at
/// most) and returns its element count.
fn room(shape: &[usize], max_bytes: u64) -> FoldResult<usize> {
    check_bytes("a folded constant", shape, 8, max_bytes).map_err(|e| FoldError::Limit(e.to_string()))
}

fn norm_axis(axis: i64, rank: usize) -> FoldResult<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a >= rank as i64 {
        return bad(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(a as usize)
}

/// `Shape` (with the opset-15 start/end window).
pub fn shape(of: &[usize], start: i64, end: Option<i64>) -> Const {
    let r = of.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
    let v: Vec<i64> = if s < e { of[s..e].iter().map(|&d| d as i64).collect() } else { vec![] };
    Const::i64s(vec![v.len()], v)
}

pub fn gather(data: &Const, indices: &Const, axis: i64, max_bytes: u64) -> FoldResult<Const> {
    let a = norm_axis(axis, data.shape.len())?;
    let Some(idx) = indices.ints() else { return bad(format!("indices must be integers, found {}", indices.type_name())) };
    let d = data.shape[a] as i64;
    let mut resolved = Vec::with_capacity(idx.len());
    for &i in idx {
        let j = if i < 0 { i + d } else { i };
        if j < 0 || j >= d {
            return bad(format!("index {i} is out of range for axis {a} of size {d}"));
        }
        resolved.push(j as usize);
    }
    let out_shape: Vec<usize> = data.shape[..a].iter().chain(&indices.shape).chain(&data.shape[a + 1..]).copied().collect();
    room(&out_shape, max_bytes)?;
    let outer: usize = data.shape[..a].iter().product();
    let inner: usize = data.shape[a + 1..].iter().product();
    let mut flat = Vec::new();
    for o in 0..outer {
        for &j in &resolved {
            for k in 0..inner {
                flat.push((o * data.shape[a] + j) * inner + k);
            }
        }
    }
    Ok(Const { dtype: data.dtype, shape: out_shape, data: data.data.take(&flat) })
}

/// Unsqueeze: axes refer to the output's rank.
pub fn unsqueeze(c: &Const, axes: &[i64]) -> FoldResult<Const> {
    let r = c.shape.len() + axes.len();
    let mut set = vec![false; r];
    for &a in axes {
        let a = norm_axis(a, r)?;
        if std::mem::replace(&mut set[a], true) {
            return bad(format!("axes {axes:?} repeat an axis"));
        }
    }
    let mut dims = c.shape.iter();
    let shape = set.iter().map(|&new| if new { 1 } else { *dims.next().expect("rank adds up") }).collect();
    Ok(Const { shape, ..c.clone() })
}

/// The shape after Squeeze; all 1-dims when `axes` is None.
pub fn squeeze_shape(shape: &[usize], axes: Option<&[i64]>) -> FoldResult<Vec<usize>> {
    let mut drop = vec![false; shape.len()];
    match axes {
        None => shape.iter().enumerate().for_each(|(i, &d)| drop[i] = d == 1),
        Some(axes) => {
            for &a in axes {
                let i = norm_axis(a, shape.len())?;
                if shape[i] != 1 {
                    return bad(format!("cannot squeeze axis {a} of shape {}: its size is {}, not 1", fmt(shape), shape[i]));
                }
                drop[i] = true;
            }
        }
    }
    Ok(shape.iter().zip(&drop).filter(|(_, &d)| !d).map(|(&s, _)| s).collect())
}

/// The shape after Unsqueeze.
pub fn unsqueeze_shape(shape: &[usize], axes: &[i64]) -> FoldResult<Vec<usize>> {
    let probe = Const::i64s(shape.to_vec(), vec![]);
    Ok(unsqueeze(&probe, axes)?.shape)
}

pub fn concat(parts: &[Const], axis: i64, max_bytes: u64) -> FoldResult<Const> {
    let first = &parts[0];
    let a = norm_axis(axis, first.shape.len())?;
    let mut out_shape = first.shape.clone();
    out_shape[a] = 0;
    for p in parts {
        if p.shape.len() != first.shape.len() || p.shape.iter().zip(&first.shape).enumerate().any(|(i, (x, y))| i != a && x != y) {
            return bad(format!("operands {} disagree outside axis {a}", parts.iter().map(|p| fmt(&p.shape)).collect::<Vec<_>>().join(", ")));
        }
        if std::mem::discriminant(&p.data) != std::mem::discriminant(&first.data) {
            return bad(format!("operands mix {} and {}", first.type_name(), p.type_name()));
        }
        out_shape[a] += p.shape[a];
    }
    room(&out_shape, max_bytes)?;
    let outer: usize = first.shape[..a].iter().product();
    let mut data = match &first.data {
        Data::F32(_) => Data::F32(vec![]),
        Data::F64(_) => Data::F64(vec![]),
        Data::I64(_) => Data::I64(vec![]),
    };
    for o in 0..outer {
        for p in parts {
            let block: usize = p.shape[a..].iter().product();
            let idx: Vec<usize> = (o * block..(o + 1) * block).collect();
            match (&mut data, p.data.take(&idx)) {
                (Data::F32(d), Data::F32(s)) => d.extend(s),
                (Data::F64(d), Data::F64(s)) => d.extend(s),
                (Data::I64(d), Data::I64(s)) => d.extend(s),
                _ => unreachable!("same kind checked above"),
            }
        }
    }
    Ok(Const { dtype: first.dtype, shape: out_shape, data })
}

pub fn cast(c: &Const, to: i32) -> FoldResult<Const> {
    use DataType::*;
    let dt = DataType::try_from(to).map_err(|_| FoldError::Bad(format!("'to' = {to} is not an ONNX type")))?;
    let data = match dt {
        Float => Data::F32(c.data.as_f64().iter().map(|&v| v as f32).collect()),
        Double => Data::F64(c.data.as_f64()),
        Bool => Data::I64(c.data.as_f64().iter().map(|&v| (v != 0.0) as i64).collect()),
        Int64 | Int32 | Int16 | Int8 | Uint8 | Uint16 | Uint32 | Uint64 => {
            // Float → int truncates toward zero (C casts, as onnxruntime does).
            let wide: Vec<i64> = match &c.data {
                Data::I64(v) => v.clone(),
                d => d.as_f64().iter().map(|&v| v as i64).collect(),
            };
            let wrap = |v: i64| -> i64 {
                match dt {
                    Int32 => v as i32 as i64,
                    Int16 => v as i16 as i64,
                    Int8 => v as i8 as i64,
                    Uint8 => v as u8 as i64,
                    Uint16 => v as u16 as i64,
                    Uint32 => v as u32 as i64,
                    _ => v,
                }
            };
            Data::I64(wide.into_iter().map(wrap).collect())
        }
        _ => return bad(format!("casting to {} is not supported", dtype_name(to))),
    };
    Ok(Const { dtype: to, shape: c.shape.clone(), data })
}

/// ONNX Slice (opset 10+ semantics; older attribute forms are mapped to it by the caller).
pub fn slice(c: &Const, starts: &[i64], ends: &[i64], axes: Option<&[i64]>, steps: Option<&[i64]>, max_bytes: u64) -> FoldResult<Const> {
    let r = c.shape.len();
    let default_axes: Vec<i64> = (0..starts.len() as i64).collect();
    let axes = axes.unwrap_or(&default_axes);
    let ones = vec![1; starts.len()];
    let steps = steps.unwrap_or(&ones);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return bad(format!("starts {starts:?}, ends {ends:?}, axes {axes:?} and steps {steps:?} must have the same length"));
    }
    // Per axis: the selected indices.
    let mut pick: Vec<Vec<usize>> = c.shape.iter().map(|&d| (0..d).collect()).collect();
    let mut seen = vec![false; r];
    for i in 0..starts.len() {
        let a = norm_axis(axes[i], r)?;
        if std::mem::replace(&mut seen[a], true) {
            return bad(format!("axes {axes:?} repeat an axis"));
        }
        let d = c.shape[a] as i64;
        let step = steps[i];
        if step == 0 {
            return bad("a step is 0");
        }
        let fix = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let (mut s, mut e) = (fix(starts[i]), fix(ends[i]));
        let mut v = Vec::new();
        if step > 0 {
            s = s.clamp(0, d);
            e = e.clamp(0, d);
            while s < e {
                v.push(s as usize);
                s += step;
            }
        } else {
            s = s.clamp(0, d - 1);
            e = e.clamp(-1, d - 1);
            while s > e {
                v.push(s as usize);
                s += step;
            }
        }
        pick[a] = v;
    }
    let out_shape: Vec<usize> = pick.iter().map(|p| p.len()).collect();
    let n = room(&out_shape, max_bytes)?;
    let st = strides(&c.shape);
    let mut flat = Vec::with_capacity(n);
    let mut idx = vec![0usize; r];
    for _ in 0..n {
        flat.push(idx.iter().enumerate().map(|(k, &i)| pick[k][i] * st[k]).sum());
        for k in (0..r).rev() {
            idx[k] += 1;
            if idx[k] < out_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    Ok(Const { dtype: c.dtype, shape: out_shape, data: c.data.take(&flat) })
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

/// Elementwise arithmetic with numpy broadcasting, in the operands' own type (integer division
/// truncates, as onnxruntime's does).
pub fn arith(op: Arith, a: &Const, b: &Const, max_bytes: u64) -> FoldResult<Const> {
    if std::mem::discriminant(&a.data) != std::mem::discriminant(&b.data) {
        return bad(format!("operands are {} and {}; ONNX requires one type", a.type_name(), b.type_name()));
    }
    let shape = broadcast(&a.shape, &b.shape).ok_or_else(|| FoldError::Bad(format!("cannot broadcast {} with {}", fmt(&a.shape), fmt(&b.shape))))?;
    let n = room(&shape, max_bytes)?;
    let index = |s: &[usize]| -> Vec<usize> {
        let st = strides(s);
        let off = shape.len() - s.len();
        let ost = strides(&shape);
        (0..n).map(|f| (0..s.len()).map(|k| if s[k] == 1 { 0 } else { (f / ost[k + off]) % shape[k + off] * st[k] }).sum()).collect()
    };
    let (ia, ib) = (index(&a.shape), index(&b.shape));
    let data = match (&a.data, &b.data) {
        (Data::I64(x), Data::I64(y)) => {
            let mut out = Vec::with_capacity(n);
            for (&i, &j) in ia.iter().zip(&ib) {
                let (p, q) = (x[i], y[j]);
                out.push(match op {
                    Arith::Add => p.wrapping_add(q),
                    Arith::Sub => p.wrapping_sub(q),
                    Arith::Mul => p.wrapping_mul(q),
                    Arith::Div if q == 0 => return bad("integer division by zero"),
                    Arith::Div => p.wrapping_div(q),
                });
            }
            Data::I64(out)
        }
        (Data::F32(x), Data::F32(y)) => Data::F32(ia.iter().zip(&ib).map(|(&i, &j)| float(op, x[i] as f64, y[j] as f64) as f32).collect()),
        (x, y) => {
            let (x, y) = (x.as_f64(), y.as_f64());
            Data::F64(ia.iter().zip(&ib).map(|(&i, &j)| float(op, x[i], y[j])).collect())
        }
    };
    Ok(Const { dtype: a.dtype, shape, data })
}

fn float(op: Arith, p: f64, q: f64) -> f64 {
    match op {
        Arith::Add => p + q,
        Arith::Sub => p - q,
        Arith::Mul => p * q,
        Arith::Div => p / q,
    }
}

pub fn constant_of_shape(shape: &Const, value: Option<Const>, max_bytes: u64) -> FoldResult<Const> {
    let Some(dims) = shape.ints().filter(|_| shape.shape.len() == 1) else {
        return bad(format!("the shape input must be a 1-D integer tensor, found {} {}", shape.type_name(), fmt(&shape.shape)));
    };
    let dims: Vec<usize> = dims.iter().map(|&d| usize::try_from(d).map_err(|_| FoldError::Bad(format!("shape {dims:?} has a negative dim")))).collect::<FoldResult<_>>()?;
    let n = room(&dims, max_bytes)?;
    let value = value.unwrap_or(Const { dtype: DataType::Float as i32, shape: vec![1], data: Data::F32(vec![0.0]) });
    if value.data.len() != 1 {
        return bad("'value' must hold exactly one element");
    }
    Ok(Const { dtype: value.dtype, shape: dims, data: value.data.take(&vec![0; n]) })
}

pub fn reshape(c: &Const, target: &[i64], allowzero: bool) -> FoldResult<Const> {
    let shape = reshape_target(&c.shape, target, allowzero).map_err(FoldError::Bad)?;
    Ok(Const { shape, ..c.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn ints(shape: &[usize], v: &[i64]) -> Const {
        Const::i64s(shape.to_vec(), v.to_vec())
    }

    #[test]
    fn the_reshape_chain_exporters_write() {
        // x: [2, 3, 4, 5] → Shape → Gather(0) → Unsqueeze(0) → Concat([-1]) = [2, -1].
        let s = shape(&[2, 3, 4, 5], 0, None);
        assert_eq!(s, ints(&[4], &[2, 3, 4, 5]));
        let g = gather(&s, &ints(&[], &[0]), 0, MB).unwrap();
        assert_eq!(g, ints(&[], &[2]));
        let u = unsqueeze(&g, &[0]).unwrap();
        assert_eq!(u, ints(&[1], &[2]));
        let c = concat(&[u, ints(&[1], &[-1])], 0, MB).unwrap();
        assert_eq!(c, ints(&[2], &[2, -1]));
        assert_eq!(shape(&[2, 3, 4, 5], 1, Some(-1)), ints(&[2], &[3, 4]));
        assert_eq!(shape(&[2, 3, 4, 5], -10, Some(10)), ints(&[4], &[2, 3, 4, 5]));
    }

    #[test]
    fn gather_slice_squeeze() {
        let m = ints(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(gather(&m, &ints(&[2], &[2, -3]), 1, MB).unwrap(), ints(&[2, 2], &[3, 1, 6, 4]));
        assert!(gather(&m, &ints(&[1], &[3]), 1, MB).is_err());
        assert_eq!(slice(&m, &[1], &[i64::MAX], Some(&[1]), None, MB).unwrap(), ints(&[2, 2], &[2, 3, 5, 6]));
        assert_eq!(slice(&m, &[-1], &[i64::MIN], Some(&[1]), Some(&[-1]), MB).unwrap(), ints(&[2, 3], &[3, 2, 1, 6, 5, 4]));
        assert_eq!(slice(&m, &[0, 0], &[1, 3], None, Some(&[1, 2]), MB).unwrap(), ints(&[1, 2], &[1, 3]));
        assert_eq!(squeeze_shape(&[1, 3, 1, 2], None).unwrap(), [3, 2]);
        assert_eq!(squeeze_shape(&[1, 3, 1, 2], Some(&[-2])).unwrap(), [1, 3, 2]);
        assert!(squeeze_shape(&[1, 3], Some(&[1])).is_err());
        assert_eq!(unsqueeze_shape(&[3, 4], &[0, 3]).unwrap(), [1, 3, 4, 1]);
    }

    #[test]
    fn arithmetic_cast_and_constant_of_shape() {
        let a = ints(&[2], &[7, -7]);
        assert_eq!(arith(Arith::Div, &a, &ints(&[], &[2]), MB).unwrap(), ints(&[2], &[3, -3]));
        assert!(arith(Arith::Div, &a, &ints(&[], &[0]), MB).is_err());
        assert_eq!(arith(Arith::Mul, &ints(&[2, 1], &[1, 2]), &ints(&[3], &[1, 10, 100]), MB).unwrap(), ints(&[2, 3], &[1, 10, 100, 2, 20, 200]));
        let f = Const { dtype: 1, shape: vec![2], data: Data::F32(vec![2.5, -2.5]) };
        assert_eq!(cast(&f, DataType::Int64 as i32).unwrap(), ints(&[2], &[2, -2]));
        assert!(arith(Arith::Add, &f, &a, MB).is_err());
        let z = constant_of_shape(&ints(&[2], &[2, 3]), None, MB).unwrap();
        assert_eq!((z.shape, z.data), (vec![2, 3], Data::F32(vec![0.0; 6])));
        assert!(matches!(constant_of_shape(&ints(&[2], &[1 << 20, 1 << 20]), None, MB), Err(FoldError::Limit(_))));
        assert_eq!(reshape(&ints(&[2, 3], &[1, 2, 3, 4, 5, 6]), &[-1], false).unwrap(), ints(&[6], &[1, 2, 3, 4, 5, 6]));
    }
}
