#!/usr/bin/env bash
# Mutation testing of rewire-core against the suites that attack the
# protocol (docs/security.md, "Tests that notice"; settings in
# .cargo/mutants.toml). Installs cargo-mutants if missing.
#
#   scripts/mutants.sh                    every mutant (make mutants)
#   scripts/mutants.sh --shard 1/4        one shard of four (run them anywhere)
#   scripts/mutants.sh --in-diff FILE     only mutants in lines FILE's diff touches
#                                         (make mutants-diff: your change, before submitting)
#   scripts/mutants.sh -f rewire-core/src/monitor/target.rs   one file
#
# Results: mutants.out/ (caught.txt, missed.txt, timeout.txt, unviable.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "mutants: installing cargo-mutants 27.1.0"
    cargo install --locked cargo-mutants@27.1.0
fi

# The packages and test targets each mutant is tested with, from the config.
read -r -a sel < <(python3 - <<'PY'
import tomllib
c = tomllib.load(open(".cargo/mutants.toml", "rb"))
args = []
for p in c["test_package"]:
    args += ["-p", p]
print(" ".join(args + c["additional_cargo_test_args"]))
PY
)

# cargo-mutants 27.1 runs its baseline with the mutated package's tests only,
# ignoring test_package; so the baseline is run here, and skipped there.
echo "mutants: baseline (unmutated tree): cargo test --profile mutants ${sel[*]}"
cargo test -q --profile mutants "${sel[@]}" >/dev/null

start=$(date +%s)
set +e
# cargo-mutants builds each mutant in a copy of the tree; with a shared
# CARGO_TARGET_DIR a mutated rewire-core can be left where the real tree's
# builds would take it for fresh (workspace paths hash relative), so it gets
# a target directory of its own.
unset CARGO_TARGET_DIR
cargo mutants --package rewire-core --baseline skip --timeout 180 --build-timeout 600 "$@"
rc=$?
set -e
echo "mutants: finished in $(( $(date +%s) - start )) s (exit $rc; 0 = none missed, 2 = some missed)"
for f in caught missed timeout unviable; do
    printf 'mutants: %-9s %s\n' "$f" "$(wc -l < mutants.out/$f.txt 2>/dev/null || echo 0)"
done
exit $rc
