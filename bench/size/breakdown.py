#!/usr/bin/env python3
"""Group an ELF's text symbols by the crate (or C library) they come from."""
import os
import re
import subprocess
import sys
from collections import Counter

elf = sys.argv[1]
nm = subprocess.run([os.environ.get("NM", "riscv64-unknown-elf-nm"), "--size-sort", "-C", "-S", elf], capture_output=True, text=True, check=True).stdout
by = Counter()
for line in nm.splitlines():
    parts = line.split(maxsplit=3)
    if len(parts) < 4 or parts[2].lower() not in ("t", "r"):
        continue
    size, name = int(parts[1], 16), parts[3]
    name = re.sub(r"^<(impl )?", "", name)
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    if m:
        crate = m.group(1)
    elif name.startswith("ring_core_") or name.startswith("_ring") or "ring" in name:
        crate = "ring (C/asm)"
    elif name.startswith("rewire_"):
        crate = "rewire_ffi"
    else:
        crate = "other (libc, libgcc, C)"
    kind = "text" if parts[2].lower() == "t" else "rodata"
    by[(crate, kind)] += size
totals = Counter()
for (crate, kind), s in by.items():
    totals[crate] += s
for crate, s in totals.most_common(12):
    print(f"{crate:<28} {s/1024:8.1f} KiB  (text {by[(crate,'text')]/1024:.1f}, rodata {by[(crate,'rodata')]/1024:.1f})")
