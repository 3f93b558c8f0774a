#!/usr/bin/env python3
"""Writes MobileNet v1 as ONNX the way other exporters write it: test fixtures for the importer.

Only onnx.helper is used (torch and tensorflow are not installed); each style reproduces the
graph shapes, names and op forms of its exporter. The network is always the paper's Table 1
body (conv 3x3/s2 then 13 depthwise-separable blocks, the last depthwise at stride 1, global
average pool, fully connected), so its layer counts match the compiler's constructor.

Styles:
  pytorch         torch.onnx.export of a torchvision-like module: opset 13, NCHW input "input"
                  [batch_size, C, R, R], Conv (no bias) + BatchNormalization (eps 1e-5) + Clip
                  with min/max initializer inputs, symmetric pads 1, GlobalAveragePool, Flatten,
                  Gemm transB=1, output "output" = logits (no softmax, like torchvision).
  tf2onnx         tf2onnx of a Keras model: opset 13, NHWC input "input_1" [unk__0, R, R, C] and a
                  Transpose to NCHW; TF 'same' padding: a Pad node (pads initializer, bottom/right
                  by 1) before every stride-2 conv, which then has no pads, and auto_pad=SAME_UPPER
                  on the stride-1 depthwise convs; Relu6 as Clip(0, 6) with initializer bounds;
                  GlobalAveragePool, then Keras Flatten's chain Shape -> Gather -> Unsqueeze ->
                  Concat -> Reshape to [N, C]; MatMul + Add; Softmax; output "predictions".
                  BatchNorm (--bn): tf2onnx/grappler folds inference BN into the conv as a bias,
                  but not always after DepthwiseConv2dNative; the default "mixed" folds BN into the
                  standard and pointwise convs (Conv with bias, no BN node) and keeps
                  BatchNormalization (eps 1e-3) after the depthwise convs. "keep" keeps every BN
                  (bias-less convs), "fold" folds every BN. The folded weights compute exactly
                  what conv + BN would, so the function is the same in all three.
  clip-attr       pytorch at opset 10 (or --opset 6..10): Clip with min/max *attributes*.
  relu6-sub       pytorch with ReLU6 written as Relu(x) then 6 - Relu(6 - r) (two Sub nodes).
  functions       pytorch with each conv+BN+ReLU6 a call of a model-local FunctionProto
                  "ConvBnRelu6" in domain "pkg.mobilenet" whose strides/pads/group are function
                  attributes referenced by the body's Conv (ref_attr_name), like
                  torch.onnx.export(..., export_modules_as_functions=...).
  constant-nodes  pytorch with every weight and Clip bound a Constant node instead of an
                  initializer (older exporters, constant-folding off).

Weights come from numpy's default_rng(seed): He-normal convs and FC, random BN statistics
(gamma ~ U(0.5, 1.5), beta ~ N(0, 0.2), mean ~ N(0, 0.2), var ~ U(0.5, 2)), so outputs are not
trivial. Unless --no-verify, the script checks the file with onnx.checker (full_check) and runs it
in onnxruntime on a random batch of 2, and fails if the output is not finite or is constant.

Beside OUT it writes OUT.json: the style, arguments, input/output names and shapes, and the
counts of conv layers, BN layers/channels, folded BN channels, and conv_biases: per conv layer
in order, the length of its bias (BN folded into it) or 0.

Usage: make_fixture.py STYLE OUT [--alpha A] [--resolution R] [--classes K] [--channels C]
                       [--seed S] [--opset N] [--bn keep|fold|mixed] [--no-verify]
"""

import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STYLES = ["pytorch", "tf2onnx", "clip-attr", "relu6-sub", "functions", "constant-nodes"]
FN_DOMAIN = "pkg.mobilenet"

# Paper Table 1 after the first conv: (depthwise stride, pointwise output channels).
# The last depthwise has stride 1 (Table 1's "s2" there is a known typo).
BLOCKS = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5 + [
    (2, 1024),
    (1, 1024),
]


def width(c, alpha):
    """Channels after the width multiplier (Keras: int(c * alpha)); never below 1."""
    return max(1, int(c * alpha + 1e-6))


def layer_plan(alpha, channels):
    """[(kind, in_c, out_c, kernel, stride, group)] for every conv of the body."""
    first = width(32, alpha)
    plan = [("conv", channels, first, 3, 2, 1)]
    c = first
    for stride, out in BLOCKS:
        o = width(out, alpha)
        plan.append(("dw", c, c, 3, stride, c))
        plan.append(("pw", c, o, 1, 1, 1))
        c = o
    return plan, c


class Builder:
    """Collects nodes and constants; constants become initializers or Constant nodes."""

    def __init__(self, rng, constant_nodes=False):
        self.rng = rng
        self.nodes = []
        self.inits = []
        self.constant_nodes = constant_nodes
        self.counter = 0

    def const(self, name, array):
        t = numpy_helper.from_array(np.asarray(array), name)
        if self.constant_nodes:
            self.nodes.append(helper.make_node("Constant", [], [name], name=name + "_Constant", value=t))
        else:
            self.inits.append(t)
        return name

    def node(self, op, inputs, outputs=None, name=None, domain=None, **attrs):
        self.counter += 1
        name = name or f"/{op}_{self.counter}"
        outputs = outputs or [name + "_output_0"]
        kw = {"domain": domain} if domain else {}
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **kw, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def he_normal(self, shape, fan_in):
        return (self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    def bn_stats(self, c):
        r = self.rng
        return (
            r.uniform(0.5, 1.5, c).astype(np.float32),  # gamma
            r.normal(0.0, 0.2, c).astype(np.float32),  # beta
            r.normal(0.0, 0.2, c).astype(np.float32),  # running mean
            r.uniform(0.5, 2.0, c).astype(np.float32),  # running var
        )


def fold_bn(w, gamma, beta, mean, var, eps):
    """Conv weight and bias equal to conv followed by inference BatchNorm."""
    s = gamma / np.sqrt(var.astype(np.float64) + eps)
    w2 = (w.astype(np.float64) * s[:, None, None, None]).astype(np.float32)
    b2 = (beta - mean * s).astype(np.float32)
    return w2, b2


def relu6(b, x, style, prefix, opset):
    """ReLU6 in the form the style's exporter writes."""
    if style == "clip-attr":
        return b.node("Clip", [x], name=prefix + "/Clip", min=0.0, max=6.0)
    if style == "relu6-sub":
        six = "six" if "six" in [t.name for t in b.inits] else b.const("six", np.array(6.0, np.float32))
        r = b.node("Relu", [x], name=prefix + "/Relu")
        a = b.node("Sub", [six, r], name=prefix + "/Sub")
        r2 = b.node("Relu", [a], name=prefix + "/Relu_1")
        return b.node("Sub", [six, r2], name=prefix + "/Sub_1")
    if style == "constant-nodes":
        lo = b.const(prefix + "/Constant_output_0", np.array(0.0, np.float32))
        hi = b.const(prefix + "/Constant_1_output_0", np.array(6.0, np.float32))
        return b.node("Clip", [x, lo, hi], name=prefix + "/Clip")
    # pytorch and tf2onnx share one pair of bound initializers.
    names = {t.name for t in b.inits}
    lo = "clip_min" if "clip_min" in names else b.const("clip_min", np.array(0.0, np.float32))
    hi = "clip_max" if "clip_max" in names else b.const("clip_max", np.array(6.0, np.float32))
    return b.node("Clip", [x, lo, hi], name=prefix + "/Clip")


def conv_bn_relu6_function(opset):
    """The model-local function newer PyTorch exporters write per module: Conv + BN + ReLU6."""
    strides = helper.make_attribute_ref("strides", onnx.AttributeProto.INTS)
    pads = helper.make_attribute_ref("pads", onnx.AttributeProto.INTS)
    group = helper.make_attribute_ref("group", onnx.AttributeProto.INT)
    conv = helper.make_node("Conv", ["X", "W"], ["c"], name="conv")
    conv.attribute.extend([strides, pads, group])
    nodes = [
        conv,
        helper.make_node("BatchNormalization", ["c", "scale", "B", "mean", "var"], ["n"], name="bn", epsilon=1e-5),
        helper.make_node("Constant", [], ["lo"], name="lo", value=numpy_helper.from_array(np.array(0.0, np.float32))),
        helper.make_node("Constant", [], ["hi"], name="hi", value=numpy_helper.from_array(np.array(6.0, np.float32))),
        helper.make_node("Clip", ["n", "lo", "hi"], ["Y"], name="relu6"),
    ]
    return helper.make_function(
        FN_DOMAIN,
        "ConvBnRelu6",
        ["X", "W", "scale", "B", "mean", "var"],
        ["Y"],
        nodes,
        [helper.make_opsetid("", opset)],
        attributes=["strides", "pads", "group"],
    )


def build_pytorch_like(args, style):
    """pytorch, clip-attr, relu6-sub, functions, constant-nodes."""
    b = Builder(np.random.default_rng(args.seed), constant_nodes=(style == "constant-nodes"))
    plan, last_c = layer_plan(args.alpha, args.channels)
    x = "input"
    bn_channels = 0
    for i, (kind, cin, cout, k, stride, group) in enumerate(plan):
        p = f"model.{i}"
        w = b.const(f"{p}.0.weight", b.he_normal((cout, cin // group, k, k), cin // group * k * k))
        gamma, beta, mean, var = b.bn_stats(cout)
        bn_in = [
            b.const(f"{p}.1.weight", gamma),
            b.const(f"{p}.1.bias", beta),
            b.const(f"{p}.1.running_mean", mean),
            b.const(f"{p}.1.running_var", var),
        ]
        bn_channels += cout
        pad = k // 2
        if style == "functions":
            x = b.node(
                "ConvBnRelu6",
                [x, w] + bn_in,
                name=f"/model/{i}/ConvBnRelu6",
                domain=FN_DOMAIN,
                strides=[stride, stride],
                pads=[pad] * 4,
                group=group,
            )
            continue
        conv_attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group, dilations=[1, 1])
        x = b.node("Conv", [x, w], name=f"/model/{i}/Conv", **conv_attrs)
        x = b.node("BatchNormalization", [x] + bn_in, name=f"/model/{i}/BatchNormalization", epsilon=1e-5, momentum=0.9)
        x = relu6(b, x, style, f"/model/{i}", args.opset)
    x = b.node("GlobalAveragePool", [x], name="/avgpool/GlobalAveragePool")
    x = b.node("Flatten", [x], name="/Flatten", axis=1)
    fc_w = b.const("fc.weight", b.he_normal((args.classes, last_c), last_c))
    fc_b = b.const("fc.bias", b.rng.normal(0.0, 0.1, args.classes).astype(np.float32))
    b.node("Gemm", [x, fc_w, fc_b], ["output"], name="/fc/Gemm", alpha=1.0, beta=1.0, transB=1)

    r = args.resolution
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", args.channels, r, r])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", args.classes])
    graph = helper.make_graph(b.nodes, "main_graph", [inp], [out], b.inits)
    opsets = [helper.make_opsetid("", args.opset)]
    functions = []
    if style == "functions":
        opsets.append(helper.make_opsetid(FN_DOMAIN, 1))
        functions.append(conv_bn_relu6_function(args.opset))
    model = helper.make_model(graph, opset_imports=opsets, functions=functions, producer_name="pytorch", producer_version="2.5.1")
    counts = dict(conv_layers=len(plan), bn_layers=len(plan), bn_channels=bn_channels, folded_bn_channels=0, conv_biases=[0] * len(plan))
    return model, ("input", ["batch", args.channels, r, r]), ("output", ["batch", args.classes]), counts


def build_tf2onnx(args):
    b = Builder(np.random.default_rng(args.seed))
    plan, last_c = layer_plan(args.alpha, args.channels)
    r = args.resolution
    x = b.node("Transpose", ["input_1"], name="StatefulPartitionedCall/mobilenet/input_1_transpose", perm=[0, 3, 1, 2])
    pads = b.const("const_pads_bottom_right", np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64))
    bn_layers = bn_channels = folded = 0
    conv_biases = []
    for i, (kind, cin, cout, k, stride, group) in enumerate(plan):
        scope = {"conv": "conv1", "dw": f"conv_dw_{(i + 1) // 2}", "pw": f"conv_pw_{i // 2}"}[kind]
        p = f"StatefulPartitionedCall/mobilenet/{scope}"
        w = b.he_normal((cout, cin // group, k, k), cin // group * k * k)
        gamma, beta, mean, var = b.bn_stats(cout)
        fold = args.bn == "fold" or (args.bn == "mixed" and kind != "dw")
        conv_in = [x]
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], group=group, dilations=[1, 1])
        if stride == 2:
            # TF 'same' at stride 2 pads only bottom/right; Keras writes ZeroPadding2D + 'valid'.
            conv_in = [b.node("Pad", [x, pads], name=f"{p}_pad/Pad", mode="constant")]
            attrs["pads"] = [0, 0, 0, 0]
        elif k == 3:
            attrs["auto_pad"] = "SAME_UPPER"
        if fold:
            w, bias = fold_bn(w, gamma, beta, mean, var, 1e-3)
            conv_in += [b.const(f"{p}/Conv2D/ReadVariableOp:0", w), b.const(f"{p}/BiasAdd/ReadVariableOp:0", bias)]
            folded += cout
            conv_biases.append(cout)
        else:
            conv_in.append(b.const(f"{p}/Conv2D/ReadVariableOp:0", w))
            conv_biases.append(0)
        x = b.node("Conv", conv_in, name=f"{p}/Conv2D", **attrs)
        if not fold:
            bn_in = [
                b.const(f"{p}_bn/ReadVariableOp:0", gamma),
                b.const(f"{p}_bn/ReadVariableOp_1:0", beta),
                b.const(f"{p}_bn/FusedBatchNormV3/ReadVariableOp:0", mean),
                b.const(f"{p}_bn/FusedBatchNormV3/ReadVariableOp_1:0", var),
            ]
            x = b.node("BatchNormalization", [x] + bn_in, name=f"{p}_bn/FusedBatchNormV3", epsilon=1e-3, momentum=0.99)
            bn_layers += 1
            bn_channels += cout
        x = relu6(b, x, "tf2onnx", f"{p}_relu/Relu6", args.opset)
    x = b.node("GlobalAveragePool", [x], name="StatefulPartitionedCall/mobilenet/global_average_pooling2d/Mean")
    # Keras Flatten after the pool: the batch size read at run time, then Reshape to [N, -1].
    p = "StatefulPartitionedCall/mobilenet/flatten"
    shape = b.node("Shape", [x], name=f"{p}/Shape")
    n = b.node("Gather", [shape, b.const(f"{p}/strided_slice/stack:0", np.array(0, np.int64))], name=f"{p}/strided_slice", axis=0)
    n1 = b.node("Unsqueeze", [n, b.const(f"{p}/Unsqueeze/axes:0", np.array([0], np.int64))], name=f"{p}/Unsqueeze")
    target = b.node("Concat", [n1, b.const(f"{p}/Reshape/shape_1:0", np.array([-1], np.int64))], name=f"{p}/Reshape/shape", axis=0)
    x = b.node("Reshape", [x, target], name=f"{p}/Reshape")
    p = "StatefulPartitionedCall/mobilenet/predictions"
    fc_w = b.const(f"{p}/MatMul/ReadVariableOp:0", b.he_normal((last_c, args.classes), last_c))
    fc_b = b.const(f"{p}/BiasAdd/ReadVariableOp:0", b.rng.normal(0.0, 0.1, args.classes).astype(np.float32))
    x = b.node("MatMul", [x, fc_w], name=f"{p}/MatMul")
    x = b.node("Add", [x, fc_b], name=f"{p}/BiasAdd")
    b.node("Softmax", [x], ["predictions"], name=f"{p}/Softmax", axis=-1)

    inp = helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["unk__0", r, r, args.channels])
    out = helper.make_tensor_value_info("predictions", TensorProto.FLOAT, ["unk__1", args.classes])
    graph = helper.make_graph(b.nodes, "tf2onnx", [inp], [out], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", args.opset)], producer_name="tf2onnx", producer_version="1.16.1 15c810")
    counts = dict(conv_layers=len(plan), bn_layers=bn_layers, bn_channels=bn_channels, folded_bn_channels=folded, conv_biases=conv_biases)
    return model, ("input_1", ["batch", r, r, args.channels]), ("predictions", ["batch", args.classes]), counts


def verify(path, in_name, in_shape, rng):
    """onnx.checker full check (with strict shape inference) and one onnxruntime run."""
    onnx.checker.check_model(path, full_check=True)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    shape = [2 if isinstance(d, str) else d for d in in_shape]
    x = rng.standard_normal(shape).astype(np.float32)
    (y,) = sess.run(None, {in_name: x})
    if not np.all(np.isfinite(y)):
        raise SystemExit(f"{path}: onnxruntime output is not finite")
    if float(np.std(y)) < 1e-6:
        raise SystemExit(f"{path}: onnxruntime output is constant ({y.ravel()[:4]}...): weights too degenerate")
    if float(np.max(np.abs(y[0] - y[1]))) < 1e-6:
        raise SystemExit(f"{path}: onnxruntime output does not depend on the input: weights too degenerate")
    return y


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("style", choices=STYLES)
    ap.add_argument("out")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--opset", type=int, default=None)
    ap.add_argument("--bn", choices=["keep", "fold", "mixed"], default="mixed", help="tf2onnx only")
    ap.add_argument("--no-verify", action="store_true")
    args = ap.parse_args(argv)
    if args.opset is None:
        args.opset = 10 if args.style == "clip-attr" else 13
    if args.style == "clip-attr" and not 6 <= args.opset <= 10:
        ap.error("clip-attr needs --opset 6..10 (Clip bounds became inputs at opset 11)")
    if args.style != "clip-attr" and args.opset < 13:
        ap.error(f"{args.style} needs --opset >= 13 (Unsqueeze axes input, Clip bound inputs)")
    if args.resolution < 32 or args.alpha <= 0 or args.classes < 1 or args.channels < 1:
        ap.error("need resolution >= 32, alpha > 0, classes >= 1, channels >= 1")

    if args.style == "tf2onnx":
        model, (in_name, in_shape), (out_name, out_shape), counts = build_tf2onnx(args)
    else:
        model, (in_name, in_shape), (out_name, out_shape), counts = build_pytorch_like(args, args.style)
    model.ir_version = 8 if args.opset >= 13 else 5

    # Write to a temporary name, verify, then rename: a reader never sees a half-written file.
    tmp = f"{args.out}.{os.getpid()}.tmp"
    onnx.save(model, tmp)
    onnx_in_shape = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if not args.no_verify:
        try:
            y = verify(tmp, in_name, onnx_in_shape, np.random.default_rng(args.seed + 1))
        except BaseException:
            os.remove(tmp)
            raise
        print(f"{args.out}: checker ok, onnxruntime output {list(y.shape)} std {float(np.std(y)):.4g}", file=sys.stderr)
    meta = dict(
        style=args.style,
        alpha=args.alpha,
        resolution=args.resolution,
        classes=args.classes,
        channels=args.channels,
        seed=args.seed,
        opset=args.opset,
        bn=args.bn if args.style == "tf2onnx" else "keep",
        input=dict(name=in_name, shape=in_shape, layout="NHWC" if args.style == "tf2onnx" else "NCHW"),
        output=dict(name=out_name, shape=out_shape, softmax=args.style == "tf2onnx"),
        **counts,
    )
    with open(tmp + ".json", "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(tmp + ".json", args.out + ".json")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
