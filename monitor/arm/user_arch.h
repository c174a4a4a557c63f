/* How the Arm host program (normal world, NS-EL1, MMU off) and the enclave
 * (secure EL0) reach the monitor: the host with SMC #0, the enclave with
 * SVC #0 (SMC is undefined at EL0; the S-EL1 vector forwards it to EL3).
 * the SBI register convention in Arm's registers: x7 = extension, x6 =
 * function, x0..x2 = arguments; x0 = error, x1 = value back (not SMCCC's
 * function id in w0: one ABI, abi.h, for both monitors). */
#ifndef REWIRE_MONITOR_USER_ARCH_ARM_H
#define REWIRE_MONITOR_USER_ARCH_ARM_H
#include <stdint.h>
#include "abi.h"

#define HOST_MODE "NS-EL1" /* where the host program runs */
struct sbiret { long error, value; };
static inline struct sbiret sbi_call(long ext, long fid, long a0, long a1, long a2) {
    register long r0 __asm__("x0") = a0;
    register long r1 __asm__("x1") = a1;
    register long r2 __asm__("x2") = a2;
    register long r6 __asm__("x6") = fid;
    register long r7 __asm__("x7") = ext;
#ifdef USER_ENCLAVE
    __asm__ volatile("svc #0" : "+r"(r0), "+r"(r1) : "r"(r2), "r"(r6), "r"(r7) : "memory");
#else
    __asm__ volatile("smc #0" : "+r"(r0), "+r"(r1) : "r"(r2), "r"(r6), "r"(r7) : "memory");
#endif
    return (struct sbiret){r0, r1};
}
static inline void user_fence(void) { __asm__ volatile("dmb sy" ::: "memory"); }
/* Tests only (host.c, enclave.c under HOSTILE_FLASH_CMD / ENCLAVE_SPIN): the
 * FP register d5 written by the host and read by the enclave; an instruction
 * EL3 traps from the secure world (PACGA); the thread register. Raw
 * encodings: these files are built with -mgeneral-regs-only. */
static inline void user_fp_set(uint64_t v) {
    register uint64_t x0 __asm__("x0") = v;
    __asm__ volatile(".inst 0x9e670005" ::"r"(x0)); /* fmov d5, x0 */
}
static inline uint64_t user_fp_get(void) {
    register uint64_t x0 __asm__("x0");
    __asm__ volatile(".inst 0x9e6600a0" : "=r"(x0)); /* fmov x0, d5 */
    return x0;
}
static inline uint64_t user_forbidden(void) {
    register uint64_t x0 __asm__("x0");
    __asm__ volatile(".inst 0x9ac23020" : "=r"(x0)::"x1", "x2"); /* pacga x0, x1, x2 */
    return x0;
}
static inline void user_tls_set(uint64_t v) { __asm__ volatile("msr tpidr_el0, %0" ::"r"(v)); }
static inline uint64_t user_tls(void) {
    uint64_t v;
    __asm__ volatile("mrs %0, tpidr_el0" : "=r"(v));
    return v;
}
static inline void user_putc(char c) {
    volatile uint32_t *uart = (volatile uint32_t *)UART_BASE;
    while (uart[0x18 / 4] & 0x20) {} /* FR.TXFF */
    uart[0] = (uint8_t)c;
}
/* Load 8 bytes at addr; *faulted = 1 when the access was denied: x9 set and
 * the load skipped, by the monitor when the abort is routed to EL3
 * (SCR_EL3.EA), or by the host's own EL1 vectors below (QEMU 7.2 takes a
 * synchronous external abort from NS-EL1 at NS-EL1 whatever SCR_EL3.EA says). */
static inline long user_probe(uintptr_t addr, long *faulted) {
    register long x0 __asm__("x0") = (long)addr;
    register long x9 __asm__("x9") = 0;
    __asm__ volatile("ldr x0, [x0]" : "+r"(x0), "+r"(x9)::"memory", "cc");
    *faulted = x9;
    return x0;
}
/* The hostile host's register check (host.c, F_ABUSE_REQ): every general
 * register but x0..x2, x6, x7 (the call's), x29 (the frame pointer) and SP, and
 * every SIMD register, set to a pattern; then SMC n(a0, a1, a2); the number
 * of 64-bit register halves that came back changed. 0: the world switch
 * restored the host's registers and left nothing of the monitor's in them. */
static inline long user_call_register_check(long ext, long fid, long a0, long a1, long a2) {
    register long r0 __asm__("x0") = a0;
    register long r1 __asm__("x1") = a1;
    register long r2 __asm__("x2") = a2;
    register long r6 __asm__("x6") = fid;
    register long r7 __asm__("x7") = ext;
    __asm__ volatile(
        ".irp i,3,4,5,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,30\n"
        "mov x\\i, #(0x100 + \\i)\n"
        ".endr\n"
        ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "movi v\\i\\().16b, #(0x40 + \\i)\n"
        ".endr\n"
        "smc #0\n"
        "mov x2, #0\n"
        ".irp i,3,4,5,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,30\n"
        "cmp x\\i, #(0x100 + \\i)\n"
        "cinc x2, x2, ne\n"
        ".endr\n"
        ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "mov x4, #(0x40 + \\i)\n"
        "orr x4, x4, x4, lsl #8\n"
        "orr x4, x4, x4, lsl #16\n"
        "orr x4, x4, x4, lsl #32\n"
        "umov x3, v\\i\\().d[0]\n"
        "cmp x3, x4\n"
        "cinc x2, x2, ne\n"
        "umov x3, v\\i\\().d[1]\n"
        "cmp x3, x4\n"
        "cinc x2, x2, ne\n"
        ".endr\n"
        : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r6), "+r"(r7)
        :
        : "x3", "x4", "x5", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17", "x18",
          "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x30", "v0", "v1", "v2", "v3",
          "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18",
          "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31", "cc",
          "memory");
    return r2;
}

#ifdef USER_ENCLAVE
static inline void user_init(void) {}
#else
/* The host's EL1 vectors (an OS has its own): a data abort at EL1 (its probe
 * of secure memory) sets x9 and skips the load; anything else powers off
 * through the monitor. Only x9 (and the flags) change. */
__asm__(".pushsection .text.host_vectors, \"ax\"\n"
        ".balign 2048\n"
        "host_vectors:\n"
        ".rept 16\n"
        ".balign 128\n"
        "b host_fault\n"
        ".endr\n"
        "host_fault:\n"
        "mrs x9, esr_el1\n"
        "ubfx x9, x9, #26, #6\n"
        "cmp x9, #0x25\n" /* data abort from EL1 */
        "b.ne 1f\n"
        "mrs x9, elr_el1\n"
        "add x9, x9, #4\n"
        "msr elr_el1, x9\n"
        "mov x9, #1\n"
        "eret\n"
        "1: movz x7, #0x5354\n" /* SBI_EXT_SRST (0x53525354): system reset, as a failure */
        "movk x7, #0x5352, lsl #16\n"
        "mov x6, #0\n"
        "mov x0, #0\n"
        "mov x1, #1\n"
        "smc #0\n"
        "b 1b\n"
        ".popsection\n");
static inline void user_init(void) {
    extern char host_vectors[];
    __asm__ volatile("msr vbar_el1, %0\n\tisb" ::"r"(host_vectors));
    /* FP/SIMD on at NS-EL1 (CPACR_EL1.FPEN), as an OS has it: the monitor must restore them too. */
    __asm__ volatile("msr cpacr_el1, %0\n\tisb" ::"r"(3ul << 20));
}
#endif
#endif
