/* The monitor's architecture layer: static inline functions for what differs
 * between the RISC-V M-mode monitor (riscv/) and the Arm EL3 monitor (arm/):
 * the trap frame, isolation (PMP or TrustZone + the S-EL1 regime), console,
 * entropy source, clocks, poweroff. monitor.c includes it; everything else in
 * monitor.c is shared. user_arch.h is the host's and the enclave's side. */
#if defined(__riscv)
#include "riscv/arch.h"
#elif defined(__aarch64__)
#include "arm/arch.h"
#else
#error "the monitor is built for riscv64 or aarch64"
#endif
