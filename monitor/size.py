#!/usr/bin/env python3
"""Split monitor.elf's code (text + rodata) by where it comes from, from the lld link map:
the monitor's own C, the host program, the enclave, librewire.a, and libc/libgcc."""
import re
import sys
from collections import Counter

GROUPS = [
    ("monitor C (start.S, monitor.c, flash.c, sha256.c, entropy.c)", re.compile(r"/(start|monitor|flash|sha256|entropy)\.o$")),
    ("host program (S-mode, untrusted)", re.compile(r"/host\.o$")),
    ("enclave (U-mode; Arm S-EL0)", re.compile(r"/enclave\.o$")),
    ("librewire.a (rewire-core, rustls, ring, coset, alloc/core)", re.compile(r"librewire\.a")),
    ("picolibc + libgcc", re.compile(r"libc\.a|libgcc")),
]
line_re = re.compile(r"^\s*[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+(\S.*):\((\.[^)]*)\)\s*$")
by = Counter()
for line in open(sys.argv[1]):
    m = line_re.match(line)
    if not m or not m.group(3).startswith((".text", ".rodata", ".srodata")):
        continue
    size, src = int(m.group(1), 16), m.group(2)
    for name, pat in GROUPS:
        if pat.search(src):
            by[name] += size
            break
    else:
        by["other"] += size
total = sum(by.values())
for name, _ in GROUPS + [("other", None)]:
    if by[name]:
        label = "merged constants (strings, literal pools; any source)" if name == "other" else name
        print(f"{label:62} {by[name]:8d} B  {100 * by[name] / total:5.1f} %")
print(f"{'total code + read-only data':62} {total:8d} B")
