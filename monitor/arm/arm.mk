# The Arm reference monitor (included by monitor/Makefile): `make -C monitor arm`
# once target/aarch64-unknown-linux-gnu/baremetal/librewire.a is built (top-level
# `make aarch64`). Same shared C as the RISC-V monitor, arm/ for the rest.
A64_LIB := $(ROOT)/target/aarch64-unknown-linux-gnu/baremetal/librewire.a
A64_OUT := $(ROOT)/target/monitor-arm
A64_CC := aarch64-linux-gnu-gcc
A64_PICOLIBC := /usr/lib/picolibc/aarch64-linux-gnu
#: the secure flash (counter, fuses) is at address 0.
A64_CFLAGS := -ffreestanding -nostdlib -nostartfiles -static -fno-pie -fno-pic -Os -g -Wall -Wextra -Werror -fno-builtin \
  -fno-tree-loop-distribute-patterns -ffunction-sections -fdata-sections \
  -mno-outline-atomics -fno-stack-protector -isystem $(A64_PICOLIBC)/include -I. -I$(REWIRE_INC) -DREWIRE_BAREMETAL
# The host (NS-EL1, its MMU off: device memory, no unaligned access) and the
# enclave (S-EL0, FP/SIMD disabled) use general registers only.
A64_USER_CFLAGS := -mgeneral-regs-only -mstrict-align
A64_H := $(SHARED_H) arm/arch.h arm/user_arch.h arm/platform.h
A64_OBJS := $(A64_OUT)/start.o $(A64_OUT)/arch.o $(A64_OUT)/monitor.o $(A64_OUT)/flash.o $(A64_OUT)/sha256.o $(A64_OUT)/entropy.o
A64_LINK := $(A64_CC) $(A64_CFLAGS) -no-pie -Wl,--gc-sections -Wl,--build-id=none -Wl,--no-warn-rwx-segments -T arm/link.ld

arm: $(A64_OUT)/monitor.elf $(A64_OUT)/monitor-faulty.elf $(A64_OUT)/monitor-deadseed.elf $(A64_OUT)/monitor-hostile.elf \
  $(A64_OUT)/monitor-stack.elf

$(A64_OUT)/%.o: %.c $(A64_H) | $(A64_OUT)
	$(A64_CC) $(A64_CFLAGS) -c -o $@ $<
$(A64_OUT)/arch.o: arm/arch.c $(A64_H) | $(A64_OUT)
	$(A64_CC) $(A64_CFLAGS) -c -o $@ $<
$(A64_OUT)/host.o $(A64_OUT)/enclave.o: $(A64_OUT)/%.o: %.c $(A64_H) | $(A64_OUT)
	$(A64_CC) $(A64_CFLAGS) $(A64_USER_CFLAGS) -c -o $@ $<
$(A64_OUT)/hostile/host.o: host.c $(A64_H) | $(A64_OUT)
	mkdir -p $(A64_OUT)/hostile
	$(A64_CC) $(A64_CFLAGS) $(A64_USER_CFLAGS) -DHOSTILE_FLASH_CMD -c -o $@ $<
$(A64_OUT)/start.o: arm/start.S | $(A64_OUT)
	$(A64_CC) $(A64_CFLAGS) -c -o $@ $<
$(A64_OUT):
	mkdir -p $@
$(A64_OUT)/faulty/monitor.o $(A64_OUT)/deadseed/monitor.o $(A64_OUT)/stack/monitor.o: $(A64_OUT)/%/monitor.o: monitor.c $(A64_H) | $(A64_OUT)
	mkdir -p $(A64_OUT)/$*
	$(A64_CC) $(A64_CFLAGS) $(FAULT_$*) -c -o $@ $<

# The host and the enclave must not call anything outside their own region.
$(A64_OUT)/monitor.elf: $(A64_OBJS) $(A64_OUT)/host.o $(A64_OUT)/enclave.o arm/link.ld $(A64_LIB)
	@for o in host enclave; do u=$$(aarch64-linux-gnu-nm -u $(A64_OUT)/$$o.o); \
	  if [ -n "$$u" ]; then echo "$$o.o calls outside its region: $$u"; exit 1; fi; done
	@sh pic.sh aarch64-linux-gnu-readelf $(A64_OUT)/enclave.o
	$(A64_LINK) -Wl,-Map=$(A64_OUT)/monitor.map -o $@ $(A64_OBJS) $(A64_OUT)/host.o $(A64_OUT)/enclave.o \
	  $(A64_LIB) $(A64_PICOLIBC)/lib/libc.a -lgcc
	aarch64-linux-gnu-size $@
$(A64_OUT)/monitor-hostile.elf: $(A64_OBJS) $(A64_OUT)/hostile/host.o $(A64_OUT)/spin/enclave.o arm/link.ld $(A64_LIB)
	@for o in hostile/host spin/enclave; do u=$$(aarch64-linux-gnu-nm -u $(A64_OUT)/$$o.o); \
	  if [ -n "$$u" ]; then echo "$$o.o calls outside its region: $$u"; exit 1; fi; done
	@sh pic.sh aarch64-linux-gnu-readelf $(A64_OUT)/spin/enclave.o
	$(A64_LINK) -o $@ $(A64_OBJS) $(A64_OUT)/hostile/host.o $(A64_OUT)/spin/enclave.o $(A64_LIB) $(A64_PICOLIBC)/lib/libc.a -lgcc
$(A64_OUT)/monitor-faulty.elf $(A64_OUT)/monitor-deadseed.elf $(A64_OUT)/monitor-stack.elf: $(A64_OUT)/monitor-%.elf: $(filter-out $(A64_OUT)/monitor.o,$(A64_OBJS)) $(A64_OUT)/%/monitor.o $(A64_OUT)/host.o $(A64_OUT)/enclave.o arm/link.ld $(A64_LIB)
	$(A64_LINK) -o $@ $(filter-out $(A64_OUT)/monitor.o,$(A64_OBJS)) $(A64_OUT)/$*/monitor.o $(A64_OUT)/host.o \
	  $(A64_OUT)/enclave.o $(A64_LIB) $(A64_PICOLIBC)/lib/libc.a -lgcc
# The hostile host's test enclave (a step that never ends, long steps, an FP
# read, a forbidden instruction; monitor/Makefile).
$(A64_OUT)/spin/enclave.o: enclave.c $(A64_H) | $(A64_OUT)
	mkdir -p $(A64_OUT)/spin
	$(A64_CC) $(A64_CFLAGS) $(A64_USER_CFLAGS) -DENCLAVE_SPIN -c -o $@ $<
