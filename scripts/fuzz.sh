#!/usr/bin/env bash
# cargo-fuzz (libFuzzer + AddressSanitizer, nightly) over every target in
# fuzz/fuzz_targets: build all once, then run each for SECONDS (default 600)
# from the committed seeds in fuzz/corpus/<target> (read only) plus a
# scratch corpus under target/fuzz/corpus/<target> (where new inputs go, so
# runs never grow the committed corpus). Prints one line per target with the
# executions run; exits non-zero if any target crashed, leaked, timed out or
# failed to run (artifacts under target/fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh [SECONDS]      e.g. `make fuzz` (600), `make test` (8)
#   FUZZ_TARGETS="message sealed" scripts/fuzz.sh 60    a subset
#
# Installs what it needs, idempotently: the nightly toolchain (minimal
# profile) and cargo-fuzz.
set -euo pipefail

secs="${1:-600}"
case "$secs" in
'' | *[!0-9]*)
	echo "usage: $0 [seconds-per-target]" >&2
	exit 2
	;;
esac

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# cargo-fuzz needs nightly rustc features (-Zsanitizer). Where no nightly
# toolchain is installed and none can be fetched (a machine with one
# toolchain), the installed one runs them under RUSTC_BOOTSTRAP=1, which
# cargo-fuzz supports.
toolchain=()
if cargo +nightly --version >/dev/null 2>&1; then
	toolchain=(+nightly)
elif echo "fuzz: installing the nightly toolchain" &&
	rustup toolchain install nightly --profile minimal; then
	toolchain=(+nightly)
else
	echo "fuzz: no nightly toolchain; using $(rustc --version) with RUSTC_BOOTSTRAP=1"
	export RUSTC_BOOTSTRAP=1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "fuzz: installing cargo-fuzz"
	cargo install cargo-fuzz --locked
fi

# Its own workspace and target dir (fuzz/target): sanitizer builds must not
# share artifacts with the main workspace's builds.
start=$(date +%s)
cargo "${toolchain[@]}" fuzz build --fuzz-dir fuzz
echo "fuzz: built every target in $(($(date +%s) - start)) s"

bin="fuzz/target/x86_64-unknown-linux-gnu/release"
scratch="target/fuzz"
targets="${FUZZ_TARGETS:-$(cargo "${toolchain[@]}" fuzz list --fuzz-dir fuzz)}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"

failed=()
for t in $targets; do
	mkdir -p "$scratch/corpus/$t" "$scratch/artifacts/$t" "$scratch/logs" "fuzz/corpus/$t"
	log="$scratch/logs/$t.log"
	rc=0
	# Per-input timeout generous for ASan on a shared 2-core machine; RSS
	# cap as libFuzzer's default. New inputs go to the first (scratch) dir.
	"$bin/$t" -max_total_time="$secs" -timeout=120 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$scratch/artifacts/$t/" \
		"$scratch/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	seeds=$(find "fuzz/corpus/$t" -type f | wc -l)
	if [ "$rc" -ne 0 ]; then
		echo "fuzz: $t: FAILED (exit $rc) after ${execs:-?} executions; log $log"
		grep -E -A20 "panicked|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|==ERROR|SUMMARY" "$log" | head -40 || tail -20 "$log"
		ls "$scratch/artifacts/$t/" 2>/dev/null | sed "s|^|fuzz:   artifact $scratch/artifacts/$t/|"
		failed+=("$t")
	else
		echo "fuzz: $t: ${execs:-0} executions in ${secs} s (${seeds} seeds)"
	fi
done

if [ "${#failed[@]}" -ne 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}"
	exit 1
fi
echo "fuzz: all targets ran ${secs} s without a crash"
