/* The Arm (EL3) half of the monitor's architecture layer (arch.h): the trap
 * frame, the world switch (SCR_EL3.NS and the EL1 system registers the host
 * and the enclave's S-EL1 regime share), the PL011, RNDRRS, the generic
 * timer, the PL031 sampled at boot, the secure GPIO power-off. Only monitor.c
 * includes it; arch.c and start.S hold the rest. */
#ifndef REWIRE_MONITOR_ARCH_ARM_H
#define REWIRE_MONITOR_ARCH_ARM_H
#include <stddef.h>
#include <stdint.h>
#include "abi.h"

#define ARCH_MON_MODE "EL3"
#define ARCH_USER_MODE "the normal world (NS-EL1)"
#define ARCH_EPC "elr"
#define ARCH_TVAL "far"

/* ------------------------------------------------------------ trap frames
 * Everything a lower EL can see of the CPU that the monitor uses: x0..x30,
 * SP_EL0, the return address and PSTATE, and the whole FP/SIMD file. start.S
 * saves all of it on every trap into EL3 and restores all of it before every
 * ERET, so the monitor's own register values (librewire's keys in NEON
 * registers included) never reach the host or the enclave; enter_enclave
 * gives the enclave a zeroed frame and leave_enclave puts the host's back. */
struct frame {
    uint64_t x[31];
    uint64_t sp_el0;
    uint64_t pc;   /* ELR_EL3 */
    uint64_t spsr; /* SPSR_EL3 */
    uint64_t q[64] __attribute__((aligned(16))); /* q0..q31 */
    uint64_t fpsr, fpcr;
}; /* start.S: FRAME_* offsets */
enum { R_ARG0 = 0, R_ARG1 = 1, R_ARG2 = 2, R_FID = 6, R_EXT = 7, R_PROBE = 9 };
extern void enter_user(struct frame *f) __attribute__((noreturn));

#define SPSR_DAIF (0xfu << 6)
#define SPSR_EL0T 0x0u
#define SPSR_EL1T 0x4u
static inline void arch_frame_init(struct frame *f, uint64_t pc, uint64_t sp, int enclave) {
    f->pc = pc;
    f->sp_el0 = sp;
    f->spsr = SPSR_DAIF | (enclave ? SPSR_EL0T : SPSR_EL1T); /* interrupts masked: both poll */
}
/* SMC and SVC return to the next instruction already. */
static inline void arch_call_done(struct frame *f) { (void)f; }
static inline int arch_fault_skip(struct frame *f, int pc_in_host) {
    (void)pc_in_host; /* A64 instructions are 4 bytes: nothing to decode */
    f->x[R_PROBE] = 1;
    f->pc += 4;
    return 1;
}
static inline uint64_t arch_sp(void) {
    uint64_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* arch.c: the EL3 MMU, the S-EL1 regime of the enclave, the world switch. */
void arch_init(void);
void arch_isolate_host(void);
void arch_isolate_enclave(uintptr_t base, size_t size); /* one slot at S-EL0, nothing else */
/* The enclave's thread register, kept across a preemption (the frame has the
 * general registers; arch_isolate_enclave zeroes TPIDR_EL0 for a fresh step). */
static inline uint64_t arch_user_tls(void) {
    uint64_t v;
    __asm__ volatile("mrs %0, tpidr_el0" : "=r"(v));
    return v;
}
static inline void arch_set_user_tls(uint64_t v) { __asm__ volatile("msr tpidr_el0, %0" ::"r"(v)); }
/* The enclave's time slice: the secure physical timer, as FIQ to EL3 (arch.c). */
void arch_timer_arm(uint64_t ms);
void arch_timer_disarm(void);
/* The boot stage's lock on the device root: nothing to lock at EL3 (README). */
static inline void arch_lock_root(uintptr_t lo, size_t len) { (void)lo; (void)len; }
static inline void arch_reopen_root(void) {}

/* ---------------------------------------------------------- console, power */
static inline void arch_con_putc(char c) {
    volatile uint32_t *uart = (volatile uint32_t *)UART_BASE;
    while (uart[0x18 / 4] & 0x20) {} /* FR.TXFF */
    uart[0] = (uint8_t)c;
}
void arch_poweroff(uint32_t code) __attribute__((noreturn));

/* ------------------------------------------------------ randomness, time */
/* RNDRRS (FEAT_RNG, reseeded before each read) in the Zkr seed format that
 * entropy.c takes: 16 bits of it as ES16, or WAIT when PSTATE.Z says the
 * read failed. entropy.c credits 2 bits per sample and runs its health tests
 * and HMAC_DRBG exactly as on RISC-V. */
static inline uint32_t arch_seed(void) {
    uint64_t v, nzcv;
    __asm__ volatile("mrs %0, s3_3_c2_c4_1\n\tmrs %1, nzcv" : "=r"(v), "=r"(nzcv));
    if (nzcv & (1u << 30)) return 1u << 30; /* Z: no random number now (WAIT) */
    return 0x80000000u | (uint16_t)v;
}
static inline uint64_t arch_counter(void) {
    uint64_t t;
    __asm__ volatile("isb\n\tmrs %0, cntpct_el0" : "=r"(t));
    return t;
}
static inline uint64_t arch_counter_hz(void) {
    uint64_t f;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(f));
    return f;
}
static inline uint64_t arch_now_ms(void) { return arch_counter() / (arch_counter_hz() / 1000); }
/* Wall time: the PL031 read once at boot, before any host code ran (the host
 * can set the RTC), plus the generic timer since then. */
extern uint64_t arch_rtc_at_boot, arch_counter_at_boot;
static inline uint64_t arch_wall_seconds(void) {
    return arch_rtc_at_boot + (arch_counter() - arch_counter_at_boot) / arch_counter_hz();
}

/* ------------------------------------------------------------------ traps */
enum { TRAP_CALL, TRAP_LOAD, TRAP_STORE, TRAP_FETCH, TRAP_TIMER, TRAP_NONE, TRAP_OTHER }; /* NONE: dealt with, resume */
void m_trap_halt(uint64_t cause, uint64_t epc, uint64_t tval) __attribute__((noreturn));
int arch_trap_kind(struct frame *f, int in_enclave, uint64_t *cause, uint64_t *addr);
#endif
