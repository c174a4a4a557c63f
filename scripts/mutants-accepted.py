#!/usr/bin/env python3
"""Check a cargo-mutants missed.txt against .cargo/mutants-accepted.txt.

Prints every missed mutant the list does not explain and exits 1 if there is
one (0 otherwise). Usage: scripts/mutants-accepted.py MISSED.TXT [LIST]
"""
import re
import sys


def load(path):
    rules = []
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        count, _, rx = line.partition(" ")
        if not count.isdigit() or not rx:
            sys.exit(f"{path}:{n}: expected '<count> <regex>'")
        rules.append([int(count), re.compile(rx), rx])
    return rules


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    missed_path = sys.argv[1]
    rules = load(sys.argv[2] if len(sys.argv) == 3 else ".cargo/mutants-accepted.txt")
    try:
        missed = [l.rstrip("\n") for l in open(missed_path, encoding="utf-8") if l.strip()]
    except FileNotFoundError:
        missed = []
    unexplained = []
    accepted = 0
    for name in missed:
        bare = re.sub(r"^([^:]+):\d+:\d+:", r"\1:", name)
        for rule in rules:
            if rule[0] > 0 and rule[1].fullmatch(bare):
                rule[0] -= 1
                accepted += 1
                break
        else:
            unexplained.append(name)
    print(f"mutants: missed {len(missed)}: {accepted} accepted "
          f"(.cargo/mutants-accepted.txt), {len(unexplained)} unexplained")
    for name in unexplained:
        print(f"mutants: UNEXPLAINED {name}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
