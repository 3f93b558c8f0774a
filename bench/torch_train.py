#!/usr/bin/env python3
"""PyTorch peer of `mobilenetc train`: the same network, initial weights, recipe and data.

The network is read from an ONNX file written by `mobilenetc new` (the constructor that
`mobilenetc train` uses, same seed), so both trainers start from identical weights:

    mobilenetc new --alpha 1 --resolution 32 --classes 10 --seed 0 -o init.onnx
    python bench/torch_train.py init.onnx --epochs 5 --threads 2

The ONNX graph (Conv with groups, BatchNormalization, Clip(0, 6), GlobalAveragePool, Flatten,
Gemm, final Softmax) becomes a torch.nn.Sequential; the Softmax is left out because
CrossEntropyLoss takes logits (mobilenetc fuses softmax and cross-entropy the same way).
BatchNorm: ONNX momentum m (running = m·running + (1 − m)·batch) is PyTorch momentum 1 − m;
epsilon as in the file.

Recipe (mobilenetc train's defaults): Adam lr 1e-3, betas (0.9, 0.999), eps 1e-8 (PyTorch's
defaults, which mobilenetc's Adam follows), batch 128, reshuffled every epoch, no augmentation;
Fashion-MNIST from Debian's dataset-fashion-mnist, pixels / 255, 28×28 zero-padded to 32×32
(2 pixels each side, as mobilenetc's loader), grayscale replicated to 3 channels. Test accuracy
and loss in eval mode (running statistics) after every epoch.

Prints one CSV line per epoch with the header of mobilenetc's metrics.csv.
"""

import argparse
import gzip
import struct
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn as nn

FMNIST = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split, limit):
    stem = "train" if split == "train" else "t10k"
    x = read_idx(f"{FMNIST}/{stem}-images-idx3-ubyte.gz")
    y = read_idx(f"{FMNIST}/{stem}-labels-idx1-ubyte.gz").astype(np.int64)
    if limit:
        x, y = x[:limit], y[:limit]
    x = x.astype(np.float32) / 255.0
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    x = np.repeat(x[:, None], 3, axis=1)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def build(path):
    """The ONNX graph as an nn.Sequential with its initial weights (a chain of ops)."""
    model = onnx.load(path)
    init = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        a = attrs(node)
        op = node.op_type
        if op == "Conv":
            w = init[node.input[1]]
            pads = a.get("pads", [0, 0, 0, 0])
            assert pads[0] == pads[2] and pads[1] == pads[3], "symmetric pads only"
            conv = nn.Conv2d(
                w.shape[1] * a.get("group", 1), w.shape[0], tuple(w.shape[2:]),
                stride=tuple(a.get("strides", [1, 1])), padding=(pads[0], pads[1]),
                groups=a.get("group", 1), bias=len(node.input) > 2,
            )
            conv.weight.data.copy_(w)
            if len(node.input) > 2:
                conv.bias.data.copy_(init[node.input[2]])
            layers.append(conv)
        elif op == "BatchNormalization":
            c = init[node.input[1]].shape[0]
            bn = nn.BatchNorm2d(c, eps=a.get("epsilon", 1e-5), momentum=1.0 - a.get("momentum", 0.9))
            bn.weight.data.copy_(init[node.input[1]])
            bn.bias.data.copy_(init[node.input[2]])
            bn.running_mean.copy_(init[node.input[3]])
            bn.running_var.copy_(init[node.input[4]])
            layers.append(bn)
        elif op == "Clip":
            lo = float(init[node.input[1]]) if len(node.input) > 1 and node.input[1] else a.get("min")
            hi = float(init[node.input[2]]) if len(node.input) > 2 and node.input[2] else a.get("max")
            assert (lo, hi) == (0.0, 6.0), (lo, hi)
            layers.append(nn.ReLU6())
        elif op == "Relu":
            layers.append(nn.ReLU())
        elif op == "GlobalAveragePool":
            layers.append(nn.AdaptiveAvgPool2d(1))
        elif op == "Flatten":
            layers.append(nn.Flatten(a.get("axis", 1)))
        elif op == "Gemm":
            w = init[node.input[1]]
            if not a.get("transB", 0):
                w = w.t()
            fc = nn.Linear(w.shape[1], w.shape[0], bias=len(node.input) > 2)
            fc.weight.data.copy_(w)
            if len(node.input) > 2:
                fc.bias.data.copy_(init[node.input[2]])
            layers.append(fc)
        elif op == "Softmax":
            pass  # CrossEntropyLoss takes the logits.
        else:
            sys.exit(f"unsupported op {op} in {path}")
    return nn.Sequential(*layers)


def evaluate(net, x, y, batch):
    net.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            out = net(x[i : i + batch])
            total += loss_fn(out, y[i : i + batch]).item()
            correct += (out.argmax(1) == y[i : i + batch]).sum().item()
    return total / len(y), correct / len(y)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("onnx")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format (PyTorch's fastest CPU layout for convs)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    net = build(args.onnx)
    xtr, ytr = load("train", args.limit)
    xte, yte = load("test", args.limit)
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
        xtr = xtr.contiguous(memory_format=torch.channels_last)
        xte = xte.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    print(f"# torch {torch.__version__}, {args.threads} threads, {len(ytr)} training / {len(yte)} test images", flush=True)
    print("epoch,train_loss,train_acc,val_loss,val_acc,seconds,images_per_second", flush=True)
    for epoch in range(1, args.epochs + 1):
        net.train()
        order = torch.randperm(len(ytr), generator=gen)
        t0 = time.perf_counter()
        seen, loss_sum, correct = 0, 0.0, 0
        for i in range(0, len(ytr), args.batch_size):
            idx = order[i : i + args.batch_size]
            xb, yb = xtr[idx], ytr[idx]
            if args.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            out = net(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(yb)
            loss_sum += loss.item() * len(yb)
            correct += (out.argmax(1) == yb).sum().item()
        seconds = time.perf_counter() - t0
        vl, va = evaluate(net, xte, yte, 512)
        print(f"{epoch},{loss_sum / seen:.6f},{correct / seen:.6f},{vl:.6f},{va:.6f},{seconds:.3f},{seen / seconds:.1f}", flush=True)


if __name__ == "__main__":
    main()
