#!/usr/bin/env bash
# Mutation testing of rewire-core and rewire-ffi against the suites that
# attack them (docs/security.md, "Tests that notice"; settings in
# .cargo/mutants.toml). Installs cargo-mutants and mold if missing.
#
#   scripts/mutants.sh                    every mutant, rewire-core then rewire-ffi (make mutants)
#   scripts/mutants.sh --part core        rewire-core only (--part ffi: rewire-ffi only)
#   scripts/mutants.sh --shard 1/4        one shard of four of each part (run them anywhere)
#   scripts/mutants.sh --in-diff FILE     only mutants in lines FILE's diff touches
#                                         (make mutants-diff: your change, before submitting)
#   scripts/mutants.sh --part core -f rewire-core/src/monitor/target.rs   one file
#
# Other arguments go to cargo mutants. Results: mutants.out/ (rewire-core)
# and mutants.ffi/ (rewire-ffi), each with caught.txt, missed.txt,
# timeout.txt, unviable.txt. Exit 0 when every missed mutant is one of the
# accepted ones (.cargo/mutants-accepted.txt), 2 when one is not.
set -euo pipefail
cd "$(dirname "$0")/.."

part=all
args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --part)
        part="${2:?--part needs core, ffi or all}"
        shift 2
        ;;
    --part=*)
        part="${1#--part=}"
        shift
        ;;
    *)
        args+=("$1")
        shift
        ;;
    esac
done
case "$part" in
core | ffi | all) ;;
*)
    echo "mutants: --part must be core, ffi or all, not '$part'" >&2
    exit 64
    ;;
esac

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "mutants: installing cargo-mutants 27.1.0"
    cargo install --locked cargo-mutants@27.1.0
fi

scripts/setup.sh mold >/dev/null
# Most of a mutant's time is rebuilding and linking the test binaries; mold
# links them several times faster than ld. (The mutants profile has a target
# directory of its own, so the flag rebuilds nothing else.)
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-fuse-ld=mold"

# cargo-mutants builds each mutant in a copy of the tree; with a shared
# CARGO_TARGET_DIR a mutated crate can be left where the real tree's builds
# would take it for fresh (workspace paths hash relative), so it gets a
# target directory of its own.
unset CARGO_TARGET_DIR

# Counts, then every missed mutant checked against the accepted list
# (.cargo/mutants-accepted.txt: equivalent or unobservable, each explained in
# docs/security.md). Sets r: 0 when every missed mutant is accepted
# (timeouts count as caught), 2 when one is not, cargo-mutants' own code
# for anything else (1 usage, 4 the tree does not build or pass).
summary() {
    local out=$1
    for f in caught missed timeout unviable; do
        local n=0
        [ -f "$out/$f.txt" ] && n=$(wc -l <"$out/$f.txt")
        printf 'mutants: %-9s %s\n' "$f" "$n"
    done
    case "$r" in
    0 | 2 | 3)
        if scripts/mutants-accepted.py "$out/missed.txt"; then r=0; else r=2; fi
        ;;
    esac
}

rc=0
if [ "$part" != ffi ]; then
    # The packages and test targets each mutant is tested with, from the config.
    read -r -a sel < <(python3 - <<'PY'
import tomllib
c = tomllib.load(open(".cargo/mutants.toml", "rb"))
args = []
for p in c["test_package"]:
    args += ["-p", p]
print(" ".join(args + c["additional_cargo_args"]))
PY
)
    # cargo-mutants 27.1 runs its baseline with the mutated package's tests
    # only, ignoring test_package; so the baseline is run here, and skipped there.
    echo "mutants: rewire-core baseline (unmutated tree): cargo test --profile mutants ${sel[*]}"
    cargo test -q --profile mutants "${sel[@]}" >/dev/null
    start=$(date +%s)
    set +e
    cargo mutants --package rewire-core --baseline skip --timeout 180 --build-timeout 600 ${args[@]+"${args[@]}"}
    r=$?
    set -e
    echo "mutants: rewire-core finished in $(($(date +%s) - start)) s (cargo-mutants exit $r)"
    summary mutants.out
    [ "$r" -gt "$rc" ] && rc=$r
fi

if [ "$part" != core ]; then
    # rewire-ffi: its own tests (the C ABI's argument and state checks,
    # driven from C and from Rust), not rewire-core's configuration.
    # --no-config: .cargo/mutants.toml selects rewire-core's suites.
    # baremetal.rs compiles only for target_os = "none" (no test here can
    # build it; the QEMU reference monitor runs it).
    start=$(date +%s)
    set +e
    cargo mutants --no-config --package rewire-ffi --exclude rewire-ffi/src/baremetal.rs \
        --profile mutants --timeout 300 --build-timeout 600 --output mutants.ffi ${args[@]+"${args[@]}"}
    r=$?
    set -e
    echo "mutants: rewire-ffi finished in $(($(date +%s) - start)) s (cargo-mutants exit $r)"
    summary mutants.ffi/mutants.out
    [ "$r" -gt "$rc" ] && rc=$r
fi
exit $rc
