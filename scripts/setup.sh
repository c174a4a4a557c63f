#!/usr/bin/env bash
# Install what librewire's build and tests need on a fresh Debian machine, as
# root. Idempotent: each step checks before it installs.
# Usage: setup.sh [riscv] [aarch64] [qemu] [mold]
set -euo pipefail

need_riscv=0
need_aarch64=0
need_qemu=0
need_mold=0
for a in "$@"; do
    [ "$a" = mold ] && need_mold=1
    [ "$a" = riscv ] && need_riscv=1
    [ "$a" = aarch64 ] && need_aarch64=1
    [ "$a" = qemu ] && need_qemu=1
done

say() { echo "setup: $*"; }

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; librewire needs a Rust toolchain (rustup) on PATH" >&2
    exit 1
fi

if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup component list --installed 2>/dev/null || true)
    for c in rustfmt clippy; do
        if ! grep -q "^$c" <<<"$installed"; then
            say "rustup component add $c"
            rustup component add "$c"
        fi
    done
    if [ "$need_riscv" = 1 ] && ! rustup target list --installed | grep -qx riscv64imac-unknown-none-elf; then
        say "rustup target add riscv64imac-unknown-none-elf"
        rustup target add riscv64imac-unknown-none-elf
    fi
    # aarch64 bare metal is built for the -linux-gnu target as a no_std staticlib (docs/building.md §5).
    if [ "$need_aarch64" = 1 ] && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
        say "rustup target add aarch64-unknown-linux-gnu"
        rustup target add aarch64-unknown-linux-gnu
    fi
fi

missing=()
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
# The Python package is built and tested in a venv.
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
# bindgen (the header-vs-ABI test) loads libclang at run time.
ls /usr/lib/llvm-*/lib/libclang*.so >/dev/null 2>&1 || missing+=(libclang-dev)
if [ "$need_riscv" = 1 ]; then
    command -v riscv64-unknown-elf-gcc >/dev/null 2>&1 || missing+=(gcc-riscv64-unknown-elf)
    [ -f /usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs ] || missing+=(picolibc-riscv64-unknown-elf)
fi
# aarch64: the cross compiler ring's C and assembly need, picolibc (headers, memcpy, and the
# semihosting runtime of `make test-aarch64`), QEMU for aarch64.
if [ "$need_aarch64" = 1 ]; then
    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu)
    [ -f /usr/lib/picolibc/aarch64-linux-gnu/picolibc.specs ] || missing+=(picolibc-aarch64-linux-gnu)
    command -v qemu-system-aarch64 >/dev/null 2>&1 || missing+=(qemu-system-arm)
fi
# QEMU for bare-metal RISC-V (benchmarks; replaces Debian's newer qemu-utils, which nothing here needs).
if [ "$need_qemu" = 1 ]; then
    command -v qemu-system-riscv64 >/dev/null 2>&1 || missing+=(qemu-system-misc)
fi
# mold links the test binaries of each mutant (make mutants) in a fraction of ld's time.
if [ "$need_mold" = 1 ]; then
    command -v mold >/dev/null 2>&1 || missing+=(mold)
fi
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    say "apt-get install ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
say "ok"
