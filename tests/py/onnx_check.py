#!/usr/bin/env python3
"""onnx.checker.check_model(full_check=True) on a file: the schema, every node against its
operator's spec, and strict shape inference. Prints "ok" or exits non-zero with the reason.

Usage: onnx_check.py MODEL
"""

import sys

import onnx


def main(argv):
    if len(argv) != 1:
        raise SystemExit(__doc__)
    try:
        onnx.checker.check_model(argv[0], full_check=True)
    except Exception as e:  # the checker raises several types; report them all the same way
        raise SystemExit(f"{argv[0]}: {type(e).__name__}: {e}")
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1:])
