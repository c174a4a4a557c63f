# librewire — `make demo` migrates a running enclave between two QEMU hosts
# (monitor/), `make test` runs every test. Both install what they need first
# (scripts/setup.sh, idempotent).

CARGO ?= cargo
CC ?= cc
RISCV := riscv64imac-unknown-none-elf
PREFIX ?= /usr/local
# Native libraries a static librewire needs on Linux (cargo --print native-static-libs).
NATIVE_LIBS := -lpthread -ldl -lm -lrt -lgcc_s -lutil
C_WARN := -Wall -Wextra -Werror

# ring's C for bare-metal RISC-V (see docs/building.md): medany
# code model for a kernel linked at 0x80000000, picolibc for its headers.
export CC_riscv64imac_unknown_none_elf := riscv64-unknown-elf-gcc
export AR_riscv64imac_unknown_none_elf := riscv64-unknown-elf-ar
export CFLAGS_riscv64imac_unknown_none_elf := -march=rv64imac -mabi=lp64 -mcmodel=medany --specs=picolibc.specs

# aarch64 bare metal (OP-TEE-class monitors): a no_std staticlib built for the
# -linux-gnu target, so that ring assembles its aarch64 code (docs/building.md §5).
AARCH64 := aarch64-unknown-linux-gnu
export CC_aarch64_unknown_linux_gnu := aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu := aarch64-linux-gnu-ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER := aarch64-linux-gnu-gcc
A64_PICOLIBC := /usr/lib/picolibc/aarch64-linux-gnu/lib/libc.a
RV_SEMIHOST := --specs=picolibc.specs --oslib=semihost --crt0=semihost -march=rv64imac -mabi=lp64 -mcmodel=medany \
  -O1 -g $(C_WARN) -DREWIRE_BAREMETAL -Iinclude -Wl,--defsym=__flash=0x80000000 -Wl,--defsym=__flash_size=0x1000000 \
  -Wl,--defsym=__ram=0x81000000 -Wl,--defsym=__ram_size=0x4000000
# C programs run with no OS on QEMU virt: picolibc's crt0 (MMU and FP on at
# EL1), stdio and exit through semihosting; code at 0x40000000.
A64_SEMIHOST := --specs=picolibc.specs --oslib=semihost --crt0=semihost -O1 -g $(C_WARN) -DREWIRE_BAREMETAL -Iinclude \
  -Wl,--defsym=__flash=0x40000000 -Wl,--defsym=__flash_size=0x1000000 -Wl,--defsym=__ram=0x41000000 \
  -Wl,--defsym=__ram_size=0x4000000

.PHONY: demo-arm all setup setup-riscv setup-aarch64 aarch64 test-aarch64 test-riscv-c size-aarch64 bench-stack-c setup-qemu demo agent demo-inprocess monitor pyenv test-qemu verify-deep test-processes-long fuzz fuzz-brief mutants mutants-diff guards test lint test-rust test-python riscv header c-tests install install-test bench bench-aead-riscv size clean

all: test

setup:
	@scripts/setup.sh

setup-riscv:
	@scripts/setup.sh riscv

setup-qemu:
	@scripts/setup.sh riscv aarch64 qemu

setup-aarch64:
	@scripts/setup.sh aarch64

## The main job: the reference monitor (monitor/, linking librewire.a) on two
## QEMU hosts; the SDS (Python `rewire`) orders a migration of a running enclave.
## STATE=bytes sets the enclave's state size (default 1024).
STATE ?= 1024
demo: setup-qemu monitor agent pyenv
	target/pyenv/bin/python monitor/linux/demo.py --state $(STATE)

## The same on Arm: the reference monitor at EL3 (TrustZone, QEMU virt secure=on), the
## enclave at S-EL0, the host in the normal world; two aarch64 QEMU hosts.
demo-arm: setup-qemu monitor agent pyenv
	target/pyenv/bin/python monitor/linux/demo.py --arch aarch64 --state $(STATE)

## The host agent (rewire-agent/): target/debug/rewire-agent.
agent: setup
	$(CARGO) build -q -p rewire-agent

## The same protocol with software monitors in one process (no QEMU): timings per size.
demo-inprocess: setup
	$(CARGO) run --release -q -p rewire-tests --bin rewire-demo

## The reference monitors for QEMU virt: RISC-V (target/monitor) and Arm (target/monitor-arm).
monitor: riscv aarch64
	$(MAKE) -s -C monitor

pyenv: setup
	@scripts/pyenv.sh

## System tests: QEMU hosts (RISC-V, and Arm for a representative subset), kill/restart, a
## forged request at the relay, a rolled-back journal.
test-qemu: setup-qemu monitor agent pyenv
	cd target && timeout 1500 pyenv/bin/python -m pytest -q -p no:cacheprovider ../tests/system

## Deeper model check of SDS + SMS + SMT than the CI bound in `make test` (about 8 min on 2 cores).
verify-deep:
	REWIRE_MODEL_DEPTH=17 REWIRE_MODEL_FAULTS=2 REWIRE_MODEL_RETRIES=1 REWIRE_MODEL_THREADS=2 REWIRE_MODEL_PROGRESS=1 \
	  $(CARGO) test --release -p rewire-tests --test model model_check_sds_sms_smt -- --nocapture

## The multi-process fault injection, long version (about 9 min): every kill combined with every recovery kill.
test-processes-long:
	REWIRE_PROC_LONG=1 $(CARGO) test -p rewire-tests --test processes -- --nocapture

## cargo-fuzz over every decoder, both state machines and the C ABI (fuzz/README.md):
## 10 min per target (about 2 h 40 min); `make test` runs each briefly.
fuzz:
	scripts/fuzz.sh 600

fuzz-brief:
	scripts/fuzz.sh 5

## Mutation testing of rewire-core and rewire-ffi against the suites that
## attack them (cargo-mutants; docs/security.md, "Tests that notice"). All
## ~1100 mutants take hours on 2 cores: SHARD=k/n runs one shard, PART=core or
## PART=ffi one crate. `make mutants-diff` tests only the mutants in lines
## your uncommitted change touches: run it before submitting.
MUTANTS_JOBS ?= 2
mutants:
	scripts/mutants.sh -j $(MUTANTS_JOBS) $(if $(PART),--part $(PART)) $(if $(SHARD),--shard $(SHARD))

mutants-diff:
	@mkdir -p target
	git diff HEAD -- rewire-core > target/mutants-core.diff
	git diff HEAD -- rewire-ffi > target/mutants-ffi.diff
	@rc=0; \
	if [ -s target/mutants-core.diff ]; then scripts/mutants.sh --part core --in-diff target/mutants-core.diff || rc=$$?; \
	else echo "mutants-diff: no change to rewire-core"; fi; \
	if [ -s target/mutants-ffi.diff ]; then scripts/mutants.sh --part ffi --in-diff target/mutants-ffi.diff || rc=$$?; \
	else echo "mutants-diff: no change to rewire-ffi"; fi; \
	exit $$rc

## The named security guards of the monitor, deleted one at a time: each must make a test fail.
guards:
	scripts/delete-guards.py

## Everything CI checks.
test: setup-qemu lint test-rust c-tests install-test riscv test-riscv-c test-aarch64 test-python test-qemu fuzz-brief
	@echo "make test: all passed"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -q -- -D warnings
	$(CARGO) clippy -p rewire-py --all-targets -q -- -D warnings

test-rust:
	$(CARGO) test

## The Python package: abi3 wheel, pytest, mypy.stubtest (venv in target/pyenv).
test-python: setup
	rewire-py/ci.sh

## rewire-core and the C ABI's static library must build for bare-metal RISC-V at every commit.
riscv: setup-riscv
	$(CARGO) build -p rewire-core --no-default-features --target $(RISCV) --profile baremetal
	$(CARGO) build -p rewire-ffi --no-default-features --features log --target $(RISCV) --profile baremetal
	@echo "riscv: rewire-core and librewire.a build for $(RISCV)"

## rewire-core and librewire.a must build for bare-metal aarch64 at every commit.
aarch64: setup-aarch64
	$(CARGO) build -p rewire-core --no-default-features --target $(AARCH64) --profile baremetal
	$(CARGO) build -p rewire-ffi --no-default-features --features log --target $(AARCH64) --profile baremetal
	@echo "aarch64: rewire-core and librewire.a build for aarch64 bare metal"

## The C example (a whole migration: SDS and two monitors) and the tests of
## the bare-metal-only entry points (tests/c/baremetal.c), linked freestanding
## against the bare-metal librewire.a and run with no OS on QEMU virt
## (picolibc; output and exit through semihosting), on both architectures.
BARE_C := examples/c/migrate.c tests/c/baremetal.c
# $(call run-bare,qemu command,elf,out): run, keep the output, require a last line OK.
define run-bare
	timeout 120 $(1) -m 256M -nographic -semihosting -kernel $(2) > $(3) 2>&1 || { cat $(3); exit 1; }
	@grep -qx OK $(3) || { cat $(3); exit 1; }
endef
test-aarch64: aarch64
	@mkdir -p target/aarch64
	for c in $(BARE_C); do aarch64-linux-gnu-gcc $(A64_SEMIHOST) -o target/aarch64/$$(basename $$c .c).elf $$c \
	  target/$(AARCH64)/baremetal/librewire.a || exit 1; done
	$(call run-bare,qemu-system-aarch64 -machine virt -cpu max,target/aarch64/migrate.elf,target/aarch64/migrate.out)
	$(call run-bare,qemu-system-aarch64 -machine virt -cpu max,target/aarch64/baremetal.elf,target/aarch64/baremetal.out)
	@echo "test-aarch64: a whole migration and the bare-metal entry points ran on aarch64 with no OS (target/aarch64/*.out)"

test-riscv-c: riscv
	@mkdir -p target/riscv-c
	for c in $(BARE_C); do riscv64-unknown-elf-gcc $(RV_SEMIHOST) -o target/riscv-c/$$(basename $$c .c).elf $$c \
	  target/$(RISCV)/baremetal/librewire.a || exit 1; done
	$(call run-bare,qemu-system-riscv64 -machine virt -bios none,target/riscv-c/migrate.elf,target/riscv-c/migrate.out)
	$(call run-bare,qemu-system-riscv64 -machine virt -bios none,target/riscv-c/baremetal.elf,target/riscv-c/baremetal.out)
	@echo "test-riscv-c: the same on riscv64 (target/riscv-c/*.out)"

## Peak stack of each librewire entry point the C example calls, on both
## architectures with no OS (bench/stack/probe.c wraps each one).
# -Wl,--wrap=NAME for main and each entry point probe.c wraps.
STACK_WRAP = -Wl,--wrap=main $$(sed -n 's/^PROBE[(][a-z_]*, \(rewire_[a-z_]*\),.*/-Wl,--wrap=\1/p' bench/stack/probe.c)
bench-stack-c: riscv aarch64
	@mkdir -p target/aarch64 target/riscv-c
	aarch64-linux-gnu-gcc $(A64_SEMIHOST) $(STACK_WRAP) -o target/aarch64/stack.elf examples/c/migrate.c bench/stack/probe.c \
	  target/$(AARCH64)/baremetal/librewire.a
	riscv64-unknown-elf-gcc $(RV_SEMIHOST) $(STACK_WRAP) -o target/riscv-c/stack.elf examples/c/migrate.c bench/stack/probe.c \
	  target/$(RISCV)/baremetal/librewire.a
	timeout 300 qemu-system-aarch64 -machine virt -cpu max -m 256M -nographic -semihosting -kernel target/aarch64/stack.elf \
	  2>&1 | grep '^stack ' > target/aarch64/stack.txt
	timeout 300 qemu-system-riscv64 -machine virt -bios none -m 256M -nographic -semihosting -kernel target/riscv-c/stack.elf \
	  2>&1 | grep '^stack ' > target/riscv-c/stack.txt
	python3 bench/stack/table.py target/riscv-c/stack.txt target/aarch64/stack.txt

## P5 on aarch64: the same minimal monitor linked against the aarch64 librewire.a.
size-aarch64: aarch64
	@mkdir -p target/aarch64
	aarch64-linux-gnu-gcc -ffreestanding -nostdlib -nostartfiles -Os -ffunction-sections -fdata-sections \
	  -Iinclude -DREWIRE_BAREMETAL -Wl,--gc-sections -Wl,--no-warn-rwx-segments -T bench/size/link.ld \
	  -o target/aarch64/size.elf bench/size/size.c target/$(AARCH64)/baremetal/librewire.a $(A64_PICOLIBC) -lgcc
	aarch64-linux-gnu-size target/aarch64/size.elf
	NM=aarch64-linux-gnu-nm python3 bench/size/breakdown.py target/aarch64/size.elf

## P5: link a minimal bare-metal monitor against librewire.a with --gc-sections and report its text:
## target/size.elf from an archive without the `log` feature (the size-minimal build, P5), and
## target/size-log.elf from the standard one (rewire_set_log delivers the core's events).
RUST_LLD_DIR := bench/size/lld
# $(call rv-size-link,archive,elf)
rv-size-link = riscv64-unknown-elf-gcc -march=rv64imac_zicsr -mabi=lp64 -mcmodel=medany -ffreestanding -nostdlib \
	  -nostartfiles -Os -ffunction-sections -fdata-sections -Iinclude -DREWIRE_BAREMETAL -B $(RUST_LLD_DIR)/ -mno-relax \
	  -Wl,--gc-sections -T bench/size/link.ld -o $(2) bench/size/size.c $(1) \
	  /usr/lib/picolibc/riscv64-unknown-elf/lib/rv64imac/lp64/libc.a -lgcc
size: riscv
	$(CARGO) build -q -p rewire-ffi --no-default-features --target $(RISCV) --profile baremetal --target-dir target/nolog
	$(call rv-size-link,target/nolog/$(RISCV)/baremetal/librewire.a,target/size.elf)
	$(call rv-size-link,target/$(RISCV)/baremetal/librewire.a,target/size-log.elf)
	riscv64-unknown-elf-size target/size.elf target/size-log.elf
	python3 bench/size/breakdown.py target/size.elf

## Performance goals P1-P5, each against its baseline in one run (see tests/benches/ratios.rs),
## and the AEAD choice on bare-metal RISC-V.
bench: size size-aarch64 bench-aead-riscv bench-stack bench-stack-c
	REWIRE_P5_TEXT=$$(riscv64-unknown-elf-size target/size.elf | awk 'NR==2 {print $$1}') \
	  $(CARGO) bench -q -p rewire-tests --bench ratios

## P8: peak stack of every monitor ecall (librewire entry point) on riscv64 bare metal, under
## QEMU: monitor-stack.elf paints its stacks; a 1 KiB and a 1 MiB migration and a recovery.
bench-stack: setup-qemu monitor pyenv
	cd target && timeout 900 pyenv/bin/python ../monitor/linux/stack.py
	cd target && timeout 900 pyenv/bin/python ../monitor/linux/stack.py --arch aarch64

## ring's ChaCha20-Poly1305 vs AES-256-GCM on riscv64imac, bare metal under QEMU:
## retired instructions (minstret) to seal 16 KiB.
bench-aead-riscv: setup-qemu
	$(CARGO) build -q -p rewire-bench-aead-riscv --target $(RISCV) --profile baremetal
	riscv64-unknown-elf-gcc -march=rv64imac_zicsr -mabi=lp64 -mcmodel=medany -ffreestanding -nostdlib -nostartfiles \
	  -O2 -B $(RUST_LLD_DIR)/ -mno-relax -Wl,--gc-sections -T bench/aead-riscv/link.ld -o target/aead-riscv.elf \
	  bench/aead-riscv/start.S bench/aead-riscv/harness.c target/$(RISCV)/baremetal/librewire_bench_aead_riscv.a -lgcc
	timeout 120 qemu-system-riscv64 -machine virt -bios none -nographic -icount shift=0 -kernel target/aead-riscv.elf

## Regenerate include/rewire.h (a test fails when the committed copy is stale).
header:
	$(CARGO) build -q -p rewire-ffi
	cp "$$(ls -t target/debug/build/rewire-ffi-*/out/rewire.h | head -1)" include/rewire.h

## The C example and the C negative tests under valgrind and AddressSanitizer.
C_PROGS := examples/c/migrate.c tests/c/negative.c
c-tests: setup
	$(CARGO) build -q -p rewire-ffi
	@mkdir -p target/c
	@set -e; for src in $(C_PROGS); do \
	  n=$$(basename $$src .c); \
	  $(CC) -O1 -g $(C_WARN) -Iinclude -o target/c/$$n $$src target/debug/librewire.a $(NATIVE_LIBS); \
	  if ! valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
	      target/c/$$n > target/c/$$n.valgrind.log 2>&1; then cat target/c/$$n.valgrind.log; exit 1; fi; \
	  echo "c-tests: $$n: valgrind clean (0 errors, 0 leaks)"; \
	  $(CC) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all $(C_WARN) \
	    -Iinclude -o target/c/$$n-asan $$src target/debug/librewire.a $(NATIVE_LIBS); \
	  if ! ASAN_OPTIONS=detect_leaks=1 target/c/$$n-asan > target/c/$$n.asan.log 2>&1; then \
	    cat target/c/$$n.asan.log; exit 1; fi; \
	  echo "c-tests: $$n: AddressSanitizer + UBSan clean"; \
	done
	@# The bare-metal-only entry points (rewire_init_with, allocator hooks, calls before
	@# init, on_panic with its message): the no_std archive built for x86_64 Linux, linked
	@# with the C library, so that valgrind and ASan can watch them (tests/c/baremetal.c).
	$(CARGO) build -q -p rewire-ffi --no-default-features --features log --target x86_64-unknown-linux-gnu --profile baremetal
	$(CC) -O1 -g $(C_WARN) -DREWIRE_BAREMETAL -Iinclude -o target/c/baremetal tests/c/baremetal.c \
	  target/x86_64-unknown-linux-gnu/baremetal/librewire.a
	@valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
	  target/c/baremetal > target/c/baremetal.valgrind.log 2>&1 && grep -qx OK target/c/baremetal.valgrind.log \
	  || { cat target/c/baremetal.valgrind.log; exit 1; }
	@echo "c-tests: baremetal: valgrind clean (0 errors, 0 leaks)"
	$(CC) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all $(C_WARN) \
	  -DREWIRE_BAREMETAL -Iinclude -o target/c/baremetal-asan tests/c/baremetal.c \
	  target/x86_64-unknown-linux-gnu/baremetal/librewire.a
	@ASAN_OPTIONS=detect_leaks=1 target/c/baremetal-asan > target/c/baremetal.asan.log 2>&1 \
	  && grep -qx OK target/c/baremetal.asan.log || { cat target/c/baremetal.asan.log; exit 1; }
	@echo "c-tests: baremetal: AddressSanitizer + UBSan clean"

## Install the header, the libraries and a pkg-config file under PREFIX.
install:
	$(CARGO) build --release -q -p rewire-ffi
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/rewire.h $(DESTDIR)$(PREFIX)/include/rewire.h
	install -m 644 target/release/librewire.a $(DESTDIR)$(PREFIX)/lib/librewire.a
	v=$$(sed -n 's/^#define REWIRE_VERSION "\(.*\)"/\1/p' include/rewire.h); \
	soname=$$(readelf -d target/release/librewire.so | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p'); \
	test -n "$$soname" && \
	install -m 755 target/release/librewire.so $(DESTDIR)$(PREFIX)/lib/librewire.so.$$v && \
	ln -sf librewire.so.$$v $(DESTDIR)$(PREFIX)/lib/$$soname && \
	ln -sf $$soname $(DESTDIR)$(PREFIX)/lib/librewire.so
	v=$$(sed -n 's/^#define REWIRE_VERSION "\(.*\)"/\1/p' include/rewire.h); \
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e "s|@VERSION@|$$v|" -e 's|@NATIVE_LIBS@|$(NATIVE_LIBS)|' \
	  rewire-ffi/rewire.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/rewire.pc
	@echo "installed librewire under $(DESTDIR)$(PREFIX)"

## Install into a scratch prefix and build the C example against it through pkg-config only.
install-test:
	rm -rf target/prefix
	$(MAKE) -s install PREFIX=$(CURDIR)/target/prefix
	$(MAKE) -s -C examples/c clean
	PKG_CONFIG_PATH=$(CURDIR)/target/prefix/lib/pkgconfig $(MAKE) -s -C examples/c PKG=1
	readelf -d examples/c/migrate | grep -q 'NEEDED.*\[librewire\.so\.0\.' || \
	  { echo "install-test: the example does not name librewire's SONAME"; exit 1; }
	LD_LIBRARY_PATH=$(CURDIR)/target/prefix/lib examples/c/migrate > target/prefix/migrate.log
	tail -1 target/prefix/migrate.log
	$(MAKE) -s -C examples/c clean
	@echo "install-test: examples/c built with pkg-config --cflags --libs rewire against the installed copy, and ran"

clean:
	$(CARGO) clean
	$(MAKE) -s -C examples/c clean
