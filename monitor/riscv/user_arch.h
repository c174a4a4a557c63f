/* How the RISC-V host program (S-mode) and enclave (U-mode) reach the
 * monitor and the UART: an SBI call, ecall with a7 = extension, a6 =
 * function, a0..a2 = arguments; a0 = error, a1 = value back. */
#ifndef REWIRE_MONITOR_USER_ARCH_RISCV_H
#define REWIRE_MONITOR_USER_ARCH_RISCV_H
#include <stdint.h>
#include "abi.h"

#define HOST_MODE "S-mode" /* where the host program runs */
struct sbiret { long error, value; };
static inline struct sbiret sbi_call(long ext, long fid, long a0, long a1, long a2) {
    register long r0 __asm__("a0") = a0;
    register long r1 __asm__("a1") = a1;
    register long r2 __asm__("a2") = a2;
    register long r6 __asm__("a6") = fid;
    register long r7 __asm__("a7") = ext;
    __asm__ volatile("ecall" : "+r"(r0), "+r"(r1) : "r"(r2), "r"(r6), "r"(r7) : "memory");
    return (struct sbiret){r0, r1};
}
static inline void user_fence(void) { __asm__ volatile("fence rw, rw" ::: "memory"); }
static inline void user_putc(char c) {
    volatile uint8_t *uart = (volatile uint8_t *)UART_BASE;
    while (!(uart[5] & 0x20)) {}
    uart[0] = (uint8_t)c;
}
static inline void user_init(void) {}
/* Tests only (host.c, enclave.c under HOSTILE_FLASH_CMD / ENCLAVE_SPIN): the
 * FP register f5 written by the host (FS turned on first, as an OS does) and
 * read by the enclave; an instruction U-mode may not run (csrr a0, mstatus);
 * the thread pointer. Raw encodings: these files are built without F/D. */
static inline void user_fp_set(uint64_t v) {
    register uint64_t t0 __asm__("t0") = v;
    __asm__ volatile("csrs sstatus, %0" ::"r"(1ul << 13));
    __asm__ volatile(".4byte 0xf20282d3" ::"r"(t0)); /* fmv.d.x f5, t0 */
}
static inline uint64_t user_fp_get(void) {
    register uint64_t a0 __asm__("a0");
    __asm__ volatile(".4byte 0xe2028553" : "=r"(a0)); /* fmv.x.d a0, f5 */
    return a0;
}
static inline uint64_t user_forbidden(void) {
    register uint64_t a0 __asm__("a0");
    __asm__ volatile(".4byte 0x30002573" : "=r"(a0)); /* csrr a0, mstatus */
    return a0;
}
static inline void user_tls_set(uint64_t v) { __asm__ volatile("mv tp, %0" ::"r"(v)); }
static inline uint64_t user_tls(void) {
    uint64_t v;
    __asm__ volatile("mv %0, tp" : "=r"(v));
    return v;
}
/* The hostile host's register check (host.c, F_ABUSE_REQ): every register
 * but a0..a2, a6, a7 (the call's), zero, sp, gp, tp and s0 (the frame
 * pointer) set to a pattern; then the SBI call (ext, fid)(a0, a1, a2); the
 * number of registers that came back changed. 0: the trap path restored the
 * host's registers and left nothing of the monitor's in them. */
static inline long user_call_register_check(long ext, long fid, long a0, long a1, long a2) {
    register long r0 __asm__("a0") = a0;
    register long r1 __asm__("a1") = a1;
    register long r2 __asm__("a2") = a2;
    register long r6 __asm__("a6") = fid;
    register long r7 __asm__("a7") = ext;
    __asm__ volatile(
        ".irp i,1,5,6,7,9,13,14,15,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "li x\\i, 0x100 + \\i\n"
        ".endr\n"
        "ecall\n"
        "li a2, 0\n"
        ".irp i,1,5,6,7,9,13,14,15,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "addi x\\i, x\\i, -(0x100 + \\i)\n"
        "snez x\\i, x\\i\n"
        "add a2, a2, x\\i\n"
        ".endr\n"
        : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r6), "+r"(r7)
        :
        : "ra", "t0", "t1", "t2", "s1", "a3", "a4", "a5", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9",
          "s10", "s11", "t3", "t4", "t5", "t6", "memory");
    return r2;
}
/* Load 8 bytes at addr; *faulted = 1 when the monitor denied it (it sets t6 and skips the load). */
static inline long user_probe(uintptr_t addr, long *faulted) {
    register long a0 __asm__("a0") = (long)addr;
    register long t6 __asm__("t6") = 0;
    __asm__ volatile("ld a0, 0(a0)" : "+r"(a0), "+r"(t6)::"memory");
    *faulted = t6;
    return a0;
}
#endif
