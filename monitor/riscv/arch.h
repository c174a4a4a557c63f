/* The RISC-V (M-mode) half of the monitor's architecture layer (arch.h):
 * the trap frame, PMP, the UART, the seed CSR, time, poweroff. Only
 * monitor.c includes it. */
#ifndef REWIRE_MONITOR_ARCH_RISCV_H
#define REWIRE_MONITOR_ARCH_RISCV_H
#include <stdint.h>
#include "abi.h"

#define ARCH_MON_MODE "M-mode"
#define ARCH_USER_MODE "S-mode"
#define ARCH_EPC "mepc"
#define ARCH_TVAL "mtval"

/* ------------------------------------------------------------ trap frames */
/* mode: the privilege the frame returns to (start.S sets mstatus.MPP from
 * it): 1 = S (the host), 0 = U (an enclave). Never M: start.S takes bit 0. */
struct frame { uint64_t x[32]; uint64_t pc; uint64_t mode; }; /* x[0] unused */
enum { R_RA = 1, R_SP = 2, R_ARG0 = 10, R_ARG1 = 11, R_ARG2 = 12, R_FID = 16, R_EXT = 17, R_PROBE = 31 };
extern void enter_user(struct frame *f) __attribute__((noreturn));

/* A fresh context at pc with stack sp: the host in S-mode, an enclave in U-mode. */
static inline void arch_frame_init(struct frame *f, uint64_t pc, uint64_t sp, int enclave) {
    f->pc = pc;
    f->x[R_SP] = sp;
    f->mode = enclave ? 0 : 1;
}
/* The ecall is done: return past it. */
static inline void arch_call_done(struct frame *f) { f->pc += 4; }
/* A load/store of the host's the fence denied: tell its probe (R_PROBE = 1)
 * and skip the instruction, which M-mode reads at pc: only when pc is a
 * physical address in the host region (pc_in_host) and the host runs without
 * translation (satp bare). Otherwise 0: the monitor will not decode it. */
static inline int arch_fault_skip(struct frame *f, int pc_in_host) {
    uint64_t satp;
    __asm__ volatile("csrr %0, satp" : "=r"(satp));
    if (!pc_in_host || (satp >> 60) != 0) return 0;
    uint16_t lo = *(volatile uint16_t *)f->pc;
    f->x[R_PROBE] = 1;
    f->pc += (lo & 3) == 3 ? 4 : 2;
    return 1;
}
static inline uint64_t arch_sp(void) {
    uint64_t sp;
    __asm__ volatile("mv %0, sp" : "=r"(sp));
    return sp;
}

/* ------------------------------------------------------------------ PMP */
#define PMP_R 1
#define PMP_W 2
#define PMP_X 4
#define PMP_TOR (1 << 3)
#define PMP_NAPOT (3 << 3)
#define PMP_L 0x80
static inline uint64_t napot(uintptr_t base, size_t size) { return (base + size / 2 - 1) >> 2; }
/* Entries 0-1 hold the boot stage's lock on the device root (lock_root):
 * entry 1 a locked TOR over the root's 32 bytes, entry 0 (whose address is
 * the range's base) locked OFF, so that nothing can turn it into a
 * higher-priority window onto the root; entries 2-4 are the S/U-mode windows,
 * rewritten at each switch. */
#define PMP_ROOT_LOCK ((uint64_t)PMP_L | (uint64_t)(PMP_TOR | PMP_L) << 8)
/* The host's satp while an enclave runs: U-mode would otherwise be
 * translated through the host's page tables (the enclave runs bare). And the
 * host's mstatus.FS/VS: an enclave runs with the FP and vector units off, so
 * that it can neither read the registers the host left in them nor leave its
 * own there (they are not in the frame); using them faults the enclave. */
#define MSTATUS_FS_VS (3ul << 13 | 3ul << 9)
static uint64_t host_satp, host_fs_vs;
static inline void arch_isolate_host(void) {
    __asm__ volatile("csrs mstatus, %0" ::"r"(host_fs_vs));
    __asm__ volatile("csrw satp, %0; sfence.vma" ::"r"(host_satp));
    __asm__ volatile("csrw pmpaddr2, %0" ::"r"(napot(MMIO_BASE, MMIO_SIZE)));
    __asm__ volatile("csrw pmpaddr3, %0" ::"r"(napot(HOST_BASE, HOST_SIZE)));
    __asm__ volatile("csrw pmpaddr4, %0" ::"r"(napot(FLASH_HOST, FLASH_HOST_SIZE)));
    uint64_t cfg = PMP_ROOT_LOCK | (uint64_t)(PMP_NAPOT | PMP_R | PMP_W) << 16 |
                   (uint64_t)(PMP_NAPOT | PMP_R | PMP_W | PMP_X) << 24 | (uint64_t)(PMP_NAPOT | PMP_R | PMP_W) << 32;
    __asm__ volatile("csrw pmpcfg0, %0; sfence.vma" ::"r"(cfg));
}
/* One slot, [base, base + size), and nothing else. */
static inline void arch_isolate_enclave(uintptr_t base, size_t size) {
    uint64_t mstatus;
    __asm__ volatile("csrr %0, mstatus" : "=r"(mstatus));
    host_fs_vs = mstatus & MSTATUS_FS_VS;
    __asm__ volatile("csrc mstatus, %0" ::"r"(MSTATUS_FS_VS));
    __asm__ volatile("csrr %0, satp" : "=r"(host_satp));
    __asm__ volatile("csrw satp, zero");
    __asm__ volatile("csrw pmpaddr2, %0" ::"r"(napot(base, size)));
    uint64_t cfg = PMP_ROOT_LOCK | (uint64_t)(PMP_NAPOT | PMP_R | PMP_W | PMP_X) << 16;
    __asm__ volatile("csrw pmpcfg0, %0; sfence.vma" ::"r"(cfg));
}
/* The boot stage's lock: a locked PMP entry denies every access to [lo, lo + len), M-mode's included. */
static inline void arch_lock_root(uintptr_t lo, size_t len) {
    uintptr_t hi = lo + len;
    __asm__ volatile("csrw pmpaddr0, %0" ::"r"(lo >> 2));
    __asm__ volatile("csrw pmpaddr1, %0" ::"r"(hi >> 2));
    __asm__ volatile("csrw pmpcfg0, %0; sfence.vma" ::"r"(PMP_ROOT_LOCK)); /* entry 1: [lo, hi), no access */
}
/* monitor-peekroot.elf: try to reopen the root (entry 0 as an unlocked window). */
static inline void arch_reopen_root(void) { __asm__ volatile("csrw pmpcfg0, %0; sfence.vma" ::"r"(0x8818UL)); }

/* ---------------------------------------------------------- console, power */
static inline void arch_con_putc(char c) {
    volatile uint8_t *uart = (volatile uint8_t *)UART_BASE;
    while (!(uart[5] & 0x20)) {}
    uart[0] = (uint8_t)c;
}
static inline void arch_poweroff(uint32_t code) {
    *(volatile uint32_t *)0x100000 = code ? (0x3333u | code << 16) : 0x5555u; /* QEMU's test device */
    for (;;) {}
}

/* ------------------------------------------------------ randomness, time */
/* The Zkr seed CSR, read with a read-write instruction as the spec requires. */
static inline uint32_t arch_seed(void) {
    uint64_t s;
    __asm__ volatile("csrrw %0, 0x015, x0" : "=r"(s));
    return (uint32_t)s;
}
/* The time CSR (CLINT mtime, 10 MHz). Not an MMIO read of mtime: a guest that
 * polls MMIO in a loop holds QEMU's global lock and starves its I/O thread. */
static inline uint64_t arch_now_ms(void) {
    uint64_t t;
    __asm__ volatile("csrr %0, time" : "=r"(t));
    return t / 10000;
}
/* QEMU's goldfish RTC, reachable only from M-mode (PMP): seconds since 1970. */
static inline uint64_t arch_wall_seconds(void) {
    volatile uint32_t *rtc = (volatile uint32_t *)0x101000UL; /* low then high */
    uint64_t lo = rtc[0], hi = rtc[1];
    return ((hi << 32) | lo) / 1000000000ull;
}
/* The thread pointer is x4, in the frame: nothing more to keep. */
static inline uint64_t arch_user_tls(void) { return 0; }
static inline void arch_set_user_tls(uint64_t v) { (void)v; }
/* The enclave's time slice: the CLINT's machine timer, which only M-mode
 * reaches (no PMP window covers the CLINT) and never delegates (mideleg 0). */
static inline void arch_timer_arm(uint64_t ms) {
    volatile uint64_t *cmp = (volatile uint64_t *)CLINT_MTIMECMP;
    *cmp = *(volatile uint64_t *)CLINT_MTIME + ms * 10000;
    __asm__ volatile("csrs mie, %0" ::"r"(1ul << 7)); /* MTIE: taken in U-mode whatever mstatus.MIE says */
}
static inline void arch_timer_disarm(void) {
    __asm__ volatile("csrc mie, %0" ::"r"(1ul << 7));
    *(volatile uint64_t *)CLINT_MTIMECMP = ~0ull;
}
/* Every trap to M-mode (no delegation: the enclave's faults and calls never
 * reach the host's S-mode handlers); the host may read time (rdtime). */
static inline void arch_init(void) {
    __asm__ volatile("csrw medeleg, zero; csrw mideleg, zero; csrw mie, zero");
    __asm__ volatile("csrw mcounteren, %0" ::"r"(2ul));
    arch_timer_disarm();
}

/* ------------------------------------------------------------------ traps */
enum { TRAP_CALL, TRAP_LOAD, TRAP_STORE, TRAP_FETCH, TRAP_TIMER, TRAP_NONE, TRAP_OTHER }; /* NONE: dealt with, resume */
void m_trap_halt(uint64_t cause, uint64_t epc, uint64_t tval) __attribute__((noreturn));
/* What the trap was: *cause for the log, *addr the faulting address. The
 * mode it came from must be the one expected (an enclave: U; the host: S or
 * its own U-mode); M-mode traps took start.S's other path. */
static inline int arch_trap_kind(struct frame *f, int in_enclave, uint64_t *cause, uint64_t *addr) {
    uint64_t mstatus, epc, mpp;
    __asm__ volatile("csrr %0, mcause" : "=r"(*cause));
    __asm__ volatile("csrr %0, mtval" : "=r"(*addr));
    __asm__ volatile("csrr %0, mstatus" : "=r"(mstatus));
    mpp = (mstatus >> 11) & 3;
    if (mpp == 3 || (in_enclave && mpp != 0)) { /* never treat M-mode (or a host mode) as the enclave */
        __asm__ volatile("csrr %0, mepc" : "=r"(epc));
        m_trap_halt(*cause, epc, *addr);
    }
    f->mode = mpp;
    if (*cause == (1ull << 63 | 7)) return TRAP_TIMER; /* machine timer interrupt */
    switch (*cause) {
    case 8: return in_enclave ? TRAP_CALL : TRAP_OTHER; /* ecall from U-mode: the enclave's */
    case 9: return in_enclave ? TRAP_OTHER : TRAP_CALL; /* ecall from S-mode: the host's SBI call */
    case 5: return TRAP_LOAD; /* access faults: PMP said no */
    case 7: return TRAP_STORE;
    case 1: return TRAP_FETCH;
    default: return TRAP_OTHER;
    }
}
#endif
