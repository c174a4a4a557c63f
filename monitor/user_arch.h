/* The host's and the enclave's side of the architecture layer: the call into
 * the monitor, the UART, a fence and the isolation probe (riscv/ or arm/). */
#if defined(__riscv)
#include "riscv/user_arch.h"
#elif defined(__aarch64__)
#include "arm/user_arch.h"
#else
#error "the monitor is built for riscv64 or aarch64"
#endif
