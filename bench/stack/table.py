#!/usr/bin/env python3
"""The peak-stack table of `make bench-stack-c`: one column per architecture."""
import sys


def load(path):
    out = {}
    with open(path) as f:
        for line in f:
            _, name, peak, calls = line.split()
            out[name] = (int(peak), int(calls))
    return out


def kib(n):
    # 0: nothing overwritten below the probe's 512-byte margin under the wrapper.
    return "<0.5K" if n == 0 else f"{n / 1024:.1f}K"


rv, a64 = load(sys.argv[1]), load(sys.argv[2])
if not rv or not a64:
    sys.exit("bench-stack-c: no figures (did the program run?)")
print(f"{'entry point':34} {'riscv64':>9} {'aarch64':>9} {'calls':>6}")
for name in sorted(set(rv) | set(a64), key=lambda n: -max(rv.get(n, (0, 0))[0], a64.get(n, (0, 0))[0])):
    r, a = rv.get(name, (0, 0)), a64.get(name, (0, 0))
    print(f"{name:34} {kib(r[0]):>9} {kib(a[0]):>9} {max(r[1], a[1]):6}")
