# librewire — `make demo` runs an in-process migration, `make test` runs every
# test. Both install what they need first (scripts/setup.sh, idempotent).

CARGO ?= cargo
RISCV := riscv64imac-unknown-none-elf

# ring's C for bare-metal RISC-V (see ../shared/design/toolchain.md): medany
# code model for a kernel linked at 0x80000000, picolibc for its headers.
export CC_riscv64imac_unknown_none_elf := riscv64-unknown-elf-gcc
export AR_riscv64imac_unknown_none_elf := riscv64-unknown-elf-ar
export CFLAGS_riscv64imac_unknown_none_elf := -march=rv64imac -mabi=lp64 -mcmodel=medany --specs=picolibc.specs

.PHONY: all setup setup-riscv demo test lint test-rust riscv clean

all: test

setup:
	@scripts/setup.sh

setup-riscv:
	@scripts/setup.sh riscv

## The main job: a real migration between two software monitors, step by step.
demo: setup
	$(CARGO) run --release -q -p rewire-tests --bin rewire-demo

## Everything CI checks.
test: setup-riscv lint test-rust riscv
	@echo "make test: all passed"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -q -- -D warnings

test-rust:
	$(CARGO) test --workspace

## rewire-core must build for bare-metal RISC-V at every commit.
riscv: setup-riscv
	$(CARGO) build -p rewire-core --no-default-features --target $(RISCV) --release
	@echo "riscv: rewire-core builds for $(RISCV)"

clean:
	$(CARGO) clean
