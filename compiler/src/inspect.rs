//! Per-layer counts (mult-adds, params) and the `inspect` report.
//!
//! # Counting convention
//!
//! The paper's (MobileNet v1, Tables 1–7), applied to any graph, whoever exported it:
//!
//! - **mult-adds** are the multiply-accumulates of conv and fully connected layers: `Conv`
//!   (`output elements · C_in/group · kH · kW`), `Gemm` (`M · N · K`), `MatMul` with a constant
//!   operand (`output elements · K`) and the fused classifier `Head`. Everything else (BatchNorm,
//!   activations, pooling, softmax, bias adds) counts zero. Counts are **per image**: the count
//!   at the graph's batch size (the leading dimension of its first input) divided by it.
//! - **params** are the constant weights and biases of those layers, plus a constant bias
//!   added by an `Add` right after a `Conv`/`Gemm`/`MatMul` (tf2onnx writes `MatMul` + `Add`).
//! - **bn_params** are BatchNorm's constant scale, bias, mean and variance, counted apart.
//!
//! A constant read by several layers is counted once, at its first reader in topological
//! order. So PyTorch-style (Conv + BN + Clip + Flatten + Gemm), tf2onnx-style (NHWC input +
//! Transpose, explicit Pad, MatMul + Add) and our constructor's graphs of the same network
//! give the same totals.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, TensorId};

/// One node of the graph with its counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerRow {
    pub name: String,
    pub op: String,
    pub output_shape: Vec<usize>,
    pub mult_adds: u64,
    pub params: u64,
    pub bn_params: u64,
}

/// The per-layer rows (topological order) and the totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub layers: Vec<LayerRow>,
    pub mult_adds: u64,
    pub params: u64,
    pub bn_params: u64,
}

/// The batch size the counts are divided by: the leading dimension of the first input.
fn batch_of(g: &Graph) -> u64 {
    g.inputs
        .first()
        .and_then(|&t| g.shape(t).first().copied())
        .filter(|&b| b > 0)
        .map_or(1, |b| b as u64)
}

/// Saturates rather than overflows on absurd shapes (the importer bounds real ones).
fn numel(shape: &[usize]) -> u64 {
    shape
        .iter()
        .fold(1u64, |acc, &d| acc.saturating_mul(d as u64))
}

/// Counts every node of `g` (which must have its shapes inferred).
pub fn count(g: &Graph) -> Result<Report> {
    let batch = batch_of(g);
    let order = g.topo_order()?;
    let producers = g.producers();
    let mut counted: BTreeSet<TensorId> = BTreeSet::new();
    let mut layers = Vec::with_capacity(order.len());
    for n in order {
        let node = g.node(n);
        let out_shape = node
            .outputs
            .first()
            .map(|&t| g.shape(t).to_vec())
            .unwrap_or_default();
        let macs = mult_adds(g, node, &out_shape)?;
        // Params: the constant operands of weighted layers, each constant once.
        let mut take = |ids: &[TensorId]| -> u64 {
            ids.iter()
                .filter(|&&t| g.is_constant(t) && counted.insert(t))
                .fold(0u64, |a, &t| a.saturating_add(numel(g.shape(t))))
        };
        let operands = node.inputs.get(1..).unwrap_or_default();
        let (params, bn_params) = match &node.op {
            Op::Conv(_) | Op::Gemm(_) | Op::Head { .. } => (take(operands), 0),
            Op::MatMul if node.inputs.iter().any(|&t| g.is_constant(t)) => (take(&node.inputs), 0),
            Op::Add if is_bias_add(g, node, &producers) => (take(&node.inputs), 0),
            Op::BatchNorm { .. } => (0, take(operands)),
            _ => (0, 0),
        };
        layers.push(LayerRow {
            name: node.name.clone(),
            op: node.op.name().to_string(),
            output_shape: out_shape,
            mult_adds: macs / batch,
            params,
            bn_params,
        });
    }
    Ok(Report {
        mult_adds: layers
            .iter()
            .fold(0u64, |a, l| a.saturating_add(l.mult_adds)),
        params: layers.iter().fold(0u64, |a, l| a.saturating_add(l.params)),
        bn_params: layers
            .iter()
            .fold(0u64, |a, l| a.saturating_add(l.bn_params)),
        layers,
    })
}

/// Multiply-accumulates of one node at the graph's batch size.
fn mult_adds(g: &Graph, node: &Node, out_shape: &[usize]) -> Result<u64> {
    let known = |what: &str| -> Result<()> {
        if out_shape.is_empty() || node.inputs.len() < 2 {
            return Err(Error::shape(
                &node.name,
                node.op.name(),
                format!(
                    "cannot count {what}: the output shape is unknown (run shape inference first)"
                ),
            ));
        }
        Ok(())
    };
    let input = |i: usize| g.shape(node.inputs[i]);
    Ok(match &node.op {
        Op::Conv(_) => {
            known("mult-adds")?;
            // Weight [M, C/group, kH, kW]: each output element costs C/group·kH·kW.
            numel(out_shape).saturating_mul(numel(input(1).get(1..).unwrap_or_default()))
        }
        Op::Gemm(a) => {
            known("mult-adds")?;
            let sa = input(0);
            if sa.len() != 2 {
                return Err(Error::shape(
                    &node.name,
                    "Gemm",
                    format!("input A has shape {sa:?}, expected rank 2"),
                ));
            }
            let k = if a.trans_a { sa[0] } else { sa[1] };
            numel(out_shape).saturating_mul(k as u64)
        }
        Op::MatMul if node.inputs.iter().any(|&t| g.is_constant(t)) => {
            known("mult-adds")?;
            let k = input(0).last().copied().unwrap_or(1);
            numel(out_shape).saturating_mul(k as u64)
        }
        Op::Head { .. } => {
            known("mult-adds")?;
            // x [N, C, H, W] pooled to [N, C], then [N, C] × [C, classes].
            let c = input(0).get(1).copied().unwrap_or(1);
            numel(out_shape).saturating_mul(c as u64)
        }
        _ => 0,
    })
}

/// An `Add` of a constant to the output of a conv or fully connected layer: its bias.
fn is_bias_add(
    g: &Graph,
    node: &Node,
    producers: &std::collections::HashMap<TensorId, crate::graph::NodeId>,
) -> bool {
    if node.inputs.len() != 2 {
        return false;
    }
    let (consts, acts): (Vec<TensorId>, Vec<TensorId>) =
        node.inputs.iter().partition(|&&t| g.is_constant(t));
    if consts.len() != 1 || acts.len() != 1 {
        return false;
    }
    producers
        .get(&acts[0])
        .is_some_and(|&p| matches!(g.node(p).op, Op::Conv(_) | Op::Gemm(_) | Op::MatMul))
}

/// `1234567` → `"1,234,567"`.
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `568_740_000` → `"568.7 M"`.
pub fn millions(v: u64) -> String {
    format!("{:.1} M", v as f64 / 1e6)
}

impl Report {
    /// The one-line totals, e.g. `568.7 M mult-adds (568,740,352), 4.2 M params (4,210,088),
    /// 43,776 BatchNorm params`.
    pub fn totals_line(&self) -> String {
        format!(
            "{} mult-adds ({}), {} params ({}), {} BatchNorm params",
            millions(self.mult_adds),
            thousands(self.mult_adds),
            millions(self.params),
            thousands(self.params),
            thousands(self.bn_params)
        )
    }

    /// The per-layer table and the totals, as `mobilenetc inspect` prints them.
    pub fn to_table(&self) -> String {
        let shape = |s: &[usize]| {
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("×")
        };
        let rows: Vec<[String; 5]> = self
            .layers
            .iter()
            .map(|l| {
                let params = match (l.params, l.bn_params) {
                    (0, 0) => String::new(),
                    (p, 0) => thousands(p),
                    (_, b) => format!("({} bn)", thousands(b)),
                };
                let macs = if l.mult_adds == 0 {
                    String::new()
                } else {
                    thousands(l.mult_adds)
                };
                [
                    l.name.clone(),
                    l.op.clone(),
                    shape(&l.output_shape),
                    macs,
                    params,
                ]
            })
            .collect();
        let header = ["layer", "op", "output shape", "mult-adds", "params"];
        let mut width = header.map(|h| h.chars().count());
        for r in &rows {
            for (w, cell) in width.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: [&str; 5]| {
            let pad = |s: &str, w: usize| " ".repeat(w.saturating_sub(s.chars().count()));
            // Text columns left-aligned, number columns right-aligned; no trailing blanks.
            let text = format!(
                "{}{}  {}{}  {}{}  {}{}  {}{}",
                cells[0],
                pad(cells[0], width[0]),
                cells[1],
                pad(cells[1], width[1]),
                cells[2],
                pad(cells[2], width[2]),
                pad(cells[3], width[3]),
                cells[3],
                pad(cells[4], width[4]),
                cells[4]
            );
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line(&mut out, header);
        for r in &rows {
            line(&mut out, [&r[0], &r[1], &r[2], &r[3], &r[4]]);
        }
        let _ = writeln!(out, "total: {}", self.totals_line());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
    use crate::graph::{Activation, AutoPad, ConvAttrs, GemmAttrs, Tensor};

    fn conv(k: usize, stride: usize, pads: [usize; 4], group: usize) -> Op {
        Op::Conv(ConvAttrs {
            kernel: [k, k],
            strides: [stride; 2],
            pads,
            dilations: [1, 1],
            group,
            auto_pad: AutoPad::NotSet,
            activation: Activation::None,
        })
    }

    fn constant(g: &mut Graph, name: &str, shape: Vec<usize>) -> TensorId {
        g.add_constant(name, Tensor::zeros(shape))
    }

    /// A small network (conv 3×3 s2 → dw 3×3 → pw 1×1 → pool → FC) written two ways must
    /// count the same. By hand: conv 8·8·8·(3·9) = 13,824; dw 8·8·8·9 = 4,608; pw 8·8·16·8
    /// = 8,192; FC 16·10 = 160 → 26,784 mult-adds; params 8·27 + 8·9 + 16·8 + 16·10 + 10 = 586.
    const MACS: u64 = 13_824 + 4_608 + 8_192 + 160;
    const PARAMS: u64 = 216 + 72 + 128 + 160 + 10;

    fn pytorch_style(batch: usize) -> Graph {
        let mut g = Graph::new("pt");
        let x = g.add_input("x", vec![batch, 3, 16, 16]);
        let w0 = constant(&mut g, "w0", vec![8, 3, 3, 3]);
        let (_, y) = g.add_op(
            "c0",
            conv(3, 2, [1; 4], 1),
            vec![x, w0],
            vec![batch, 8, 8, 8],
        );
        let bn: Vec<_> = (0..4)
            .map(|i| constant(&mut g, &format!("bn{i}"), vec![8]))
            .collect();
        let (_, y) = g.add_op(
            "bn",
            Op::BatchNorm {
                epsilon: 1e-5,
                momentum: 0.9,
            },
            vec![y, bn[0], bn[1], bn[2], bn[3]],
            vec![batch, 8, 8, 8],
        );
        let (_, y) = g.add_op(
            "r",
            Op::Clip { min: 0.0, max: 6.0 },
            vec![y],
            vec![batch, 8, 8, 8],
        );
        let w1 = constant(&mut g, "w1", vec![8, 1, 3, 3]);
        let (_, y) = g.add_op(
            "dw",
            conv(3, 1, [1; 4], 8),
            vec![y, w1],
            vec![batch, 8, 8, 8],
        );
        let w2 = constant(&mut g, "w2", vec![16, 8, 1, 1]);
        let (_, y) = g.add_op(
            "pw",
            conv(1, 1, [0; 4], 1),
            vec![y, w2],
            vec![batch, 16, 8, 8],
        );
        let (_, y) = g.add_op("gap", Op::GlobalAveragePool, vec![y], vec![batch, 16, 1, 1]);
        let (_, y) = g.add_op("flat", Op::Flatten { axis: 1 }, vec![y], vec![batch, 16]);
        let wf = constant(&mut g, "wf", vec![10, 16]);
        let bf = constant(&mut g, "bf", vec![10]);
        let (_, y) = g.add_op(
            "fc",
            Op::Gemm(GemmAttrs {
                trans_b: true,
                ..Default::default()
            }),
            vec![y, wf, bf],
            vec![batch, 10],
        );
        g.outputs.push(y);
        g
    }

    fn tf2onnx_style() -> Graph {
        let mut g = Graph::new("tf");
        let x = g.add_input("x", vec![1, 16, 16, 3]);
        let (_, y) = g.add_op(
            "to_nchw",
            Op::Transpose {
                perm: vec![0, 3, 1, 2],
            },
            vec![x],
            vec![1, 3, 16, 16],
        );
        let (_, y) = g.add_op(
            "pad",
            Op::Pad {
                pads: vec![0, 0, 0, 0, 0, 0, 1, 1],
                value: 0.0,
            },
            vec![y],
            vec![1, 3, 17, 17],
        );
        let w0 = constant(&mut g, "w0", vec![8, 3, 3, 3]);
        let (_, y) = g.add_op("c0", conv(3, 2, [0; 4], 1), vec![y, w0], vec![1, 8, 8, 8]);
        let b0 = constant(&mut g, "b0", vec![8]);
        let (_, y) = g.add_op("c0_bias", Op::Add, vec![y, b0], vec![1, 8, 8, 8]);
        let (_, y) = g.add_op("r", Op::Relu, vec![y], vec![1, 8, 8, 8]);
        let w1 = constant(&mut g, "w1", vec![8, 1, 3, 3]);
        let (_, y) = g.add_op("dw", conv(3, 1, [1; 4], 8), vec![y, w1], vec![1, 8, 8, 8]);
        let w2 = constant(&mut g, "w2", vec![16, 8, 1, 1]);
        let (_, y) = g.add_op("pw", conv(1, 1, [0; 4], 1), vec![y, w2], vec![1, 16, 8, 8]);
        let (_, y) = g.add_op("gap", Op::GlobalAveragePool, vec![y], vec![1, 16, 1, 1]);
        let (_, y) = g.add_op(
            "reshape",
            Op::Reshape {
                shape: vec![-1, 16],
                allowzero: false,
            },
            vec![y],
            vec![1, 16],
        );
        let wf = constant(&mut g, "wf", vec![16, 10]);
        let (_, y) = g.add_op("mm", Op::MatMul, vec![y, wf], vec![1, 10]);
        let bf = constant(&mut g, "bf", vec![10]);
        let (_, y) = g.add_op("mm_bias", Op::Add, vec![y, bf], vec![1, 10]);
        // A non-bias Add (two activations) counts nothing.
        let (_, y) = g.add_op("residual", Op::Add, vec![y, y], vec![1, 10]);
        g.outputs.push(y);
        g
    }

    #[test]
    fn exporter_styles_count_alike() {
        let pt = count(&pytorch_style(1)).unwrap();
        assert_eq!((pt.mult_adds, pt.params, pt.bn_params), (MACS, PARAMS, 32));
        let tf = count(&tf2onnx_style()).unwrap();
        // tf2onnx's conv bias (8) is a param PyTorch's BN-followed conv does not have.
        assert_eq!(
            (tf.mult_adds, tf.params, tf.bn_params),
            (MACS, PARAMS + 8, 0)
        );
        let row =
            |r: &Report, name: &str| r.layers.iter().find(|l| l.name == name).unwrap().clone();
        assert_eq!(row(&tf, "mm_bias").params, 10);
        assert_eq!(row(&tf, "residual").params, 0);
        assert_eq!(row(&tf, "mm").mult_adds, 160);
        assert_eq!(row(&pt, "dw").mult_adds, 4_608);
        assert_eq!(row(&pt, "bn").bn_params, 32);
    }

    #[test]
    fn counts_are_per_image() {
        let r = count(&pytorch_style(4)).unwrap();
        assert_eq!((r.mult_adds, r.params), (MACS, PARAMS));
    }

    #[test]
    fn fused_head_counts_like_pool_and_fc() {
        let mut g = Graph::new("h");
        let x = g.add_input("x", vec![2, 16, 4, 4]);
        let w = constant(&mut g, "w", vec![10, 16]);
        let b = constant(&mut g, "b", vec![10]);
        let (_, y) = g.add_op(
            "head",
            Op::Head { softmax: true },
            vec![x, w, b],
            vec![2, 10],
        );
        g.outputs.push(y);
        let r = count(&g).unwrap();
        assert_eq!((r.mult_adds, r.params), (160, 170));
    }

    #[test]
    fn shared_weights_count_once() {
        let mut g = Graph::new("s");
        let x = g.add_input("x", vec![1, 4]);
        let w = constant(&mut g, "w", vec![4, 4]);
        let (_, y) = g.add_op("a", Op::MatMul, vec![x, w], vec![1, 4]);
        let (_, y) = g.add_op("b", Op::MatMul, vec![y, w], vec![1, 4]);
        g.outputs.push(y);
        let r = count(&g).unwrap();
        assert_eq!((r.mult_adds, r.params), (32, 16));
    }

    #[test]
    fn unknown_shape_is_an_error_naming_the_node() {
        let mut g = Graph::new("u");
        let x = g.add_input("x", vec![1, 3, 8, 8]);
        let w = constant(&mut g, "w", vec![4, 3, 1, 1]);
        let (_, y) = g.add_op("c", conv(1, 1, [0; 4], 1), vec![x, w], vec![]);
        g.outputs.push(y);
        let e = count(&g).unwrap_err().to_string();
        assert!(e.contains("'c'") && e.contains("shape"), "{e}");
    }

    #[test]
    fn malformed_nodes_are_errors_not_panics() {
        let mut g = Graph::new("m");
        let x = g.add_input("x", vec![1, 3, 8, 8]);
        let (_, y) = g.add_op(
            "bare_conv",
            conv(1, 1, [0; 4], 1),
            vec![x],
            vec![1, 3, 8, 8],
        );
        let (_, y) = g.add_op(
            "bare_bn",
            Op::BatchNorm {
                epsilon: 1e-5,
                momentum: 0.9,
            },
            vec![y],
            vec![1, 3, 8, 8],
        );
        g.outputs.push(y);
        assert!(count(&g).unwrap_err().to_string().contains("bare_conv"));
        // Absurd shapes saturate instead of overflowing.
        let mut g = Graph::new("big");
        let x = g.add_input("x", vec![1, 1 << 20, 1 << 20, 1 << 20]);
        let w = constant_shape_only(&mut g, "w", vec![1 << 20, 1 << 20, 1 << 20, 1 << 20]);
        let (_, y) = g.add_op(
            "c",
            conv(1, 1, [0; 4], 1),
            vec![x, w],
            vec![1, 1 << 20, 1 << 20, 1 << 20],
        );
        g.outputs.push(y);
        assert_eq!(count(&g).unwrap().mult_adds, u64::MAX);
    }

    /// A constant whose data is not allocated (counting reads only shapes).
    fn constant_shape_only(g: &mut Graph, name: &str, shape: Vec<usize>) -> TensorId {
        let id = g.add_tensor(name, shape);
        g.constants.insert(
            id,
            Tensor {
                shape: vec![0],
                data: vec![],
            },
        );
        id
    }

    #[test]
    fn mobilenet_224_matches_the_paper_and_json_has_the_fields() {
        let r = count(&mobilenet_v1(&MobileNetConfig::default()).unwrap()).unwrap();
        assert_eq!(r.mult_adds, 568_740_352, "{}", r.totals_line());
        assert_eq!(r.params, 4_210_088);
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert!(v["mult_adds"].is_u64() && v["params"].is_u64() && v["bn_params"].is_u64());
        let first = &v["layers"][0];
        assert_eq!(first["name"], "conv0");
        assert_eq!(first["op"], "Conv");
        assert_eq!(first["output_shape"], serde_json::json!([1, 32, 112, 112]));
        assert_eq!(first["mult_adds"], 112 * 112 * 32 * 27);
        assert_eq!(first["params"], 864);
        let table = r.to_table();
        assert!(
            table.contains("block13_pw") && table.contains("568.7 M mult-adds"),
            "{table}"
        );
    }

    #[test]
    fn number_formatting() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(4_210_088), "4,210,088");
        assert_eq!(millions(568_740_352), "568.7 M");
    }
}
