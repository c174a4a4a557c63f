/*
 * The Arm monitor's architecture layer (EL3, QEMU virt,secure=on): the EL3
 * identity map, the enclave's S-EL1&0 translation regime, the world switch,
 * trap decoding and power-off. The monitor logic (monitor.c) is shared with
 * the RISC-V monitor; see arch.h and monitor/README.md for the design.
 */
#include "monitor.h"
#include "arch.h"

/* ------------------------------------------------------- translation tables
 * VMSAv8-64, 4 KiB granule, 32-bit VA and PA (T0SZ = 32: the walk starts at
 * level 1, four 1 GiB entries). Descriptor bits used below. */
#define D_TABLE 3ull
#define D_BLOCK 1ull
#define D_PAGE 3ull
#define D_ATTR(i) ((uint64_t)(i) << 2) /* MAIR index */
#define D_NS (1ull << 5)               /* the non-secure PA space (EL3 table only) */
#define D_AP_EL0 (1ull << 6)           /* AP[1]: EL0 may access */
#define D_AP_RO (1ull << 7)            /* AP[2]: read-only */
#define D_SH_INNER (3ull << 8)
#define D_AF (1ull << 10)
#define D_PXN (1ull << 53)
#define D_XN (1ull << 54) /* UXN at EL1&0; XN at EL3 */
#define MAIR_VALUE 0x4400ffull /* 0: normal write-back, 1: device-nGnRnE, 2: normal non-cacheable */
#define A_NORMAL 0
#define A_DEVICE 1
#define A_NC 2
#define MIB2 0x200000ull
#define GIB 0x40000000ull

static uint64_t el3_l1[512] __attribute__((aligned(4096)));
static uint64_t el3_l2[512] __attribute__((aligned(4096)));
static uint64_t enc_l1[512] __attribute__((aligned(4096)));
static uint64_t enc_l2[512] __attribute__((aligned(4096)));
static uint64_t enc_l3[512] __attribute__((aligned(4096)));
static uint64_t enc_slot_l3[512] __attribute__((aligned(4096))); /* the enclaves' 2 MiB, in 4 KiB pages */
extern char sel1_vectors[]; /* start.S: the enclave's S-EL1 vector page */

uint64_t arch_rtc_at_boot, arch_counter_at_boot;

#define MSR(reg, v) __asm__ volatile("msr " #reg ", %0" ::"r"((uint64_t)(v)))
#define MRS(reg, v) __asm__ volatile("mrs %0, " #reg : "=r"(v))

/* EL3: an identity map. Normal write-back memory for secure RAM (the monitor,
 * the enclave) and, in the non-secure PA space, for NS RAM (the host's
 * buffers); normal non-cacheable for the flashes (flash0 secure, flash1
 * non-secure: unaligned reads of slot data work); device memory for the
 * MMIO devices. Only secure RAM is executable. Nothing above 2 GiB. */
static void el3_tables(void) {
    for (uint64_t a = 0; a < 0x10000000ull; a += MIB2) {
        uint64_t d;
        if (a < 0x04000000ull) d = a | D_BLOCK | D_ATTR(A_NC) | D_AF | D_XN;                 /* pflash0: secure */
        else if (a < 0x08000000ull) d = a | D_BLOCK | D_ATTR(A_NC) | D_AF | D_XN | D_NS;     /* pflash1 */
        else if (a < MON_BASE) d = a | D_BLOCK | D_ATTR(A_DEVICE) | D_AF | D_XN;             /* GIC, UART, RTC, GPIO, virtio */
        else if (a < MON_BASE + 0x01000000ull) d = a | D_BLOCK | D_ATTR(A_NORMAL) | D_AF | D_SH_INNER; /* secure RAM */
        else d = 0;
        el3_l2[a / MIB2] = d;
    }
    el3_l1[0] = (uint64_t)(uintptr_t)el3_l2 | D_TABLE;
    el3_l1[1] = NS_RAM_BASE | D_BLOCK | D_ATTR(A_NORMAL) | D_AF | D_SH_INNER | D_XN | D_NS; /* NS RAM, 1 GiB */
}

/* The enclave's S-EL1&0 regime: the running enclave's slot at EL0 (read,
 * write, execute; never executable at EL1; the pages of the other slots
 * invalid) and one 4 KiB page of monitor code, the S-EL1 vectors, at EL1
 * only (read-only, executable). Nothing else of secure memory is mapped, so
 * an enclave load from the monitor or another slot faults. */
static void enclave_tables(void) {
    uintptr_t v = (uintptr_t)sel1_vectors;
    enc_l3[(v / 4096) % 512] = (v & ~0xfffull) | D_PAGE | D_ATTR(A_NORMAL) | D_AF | D_SH_INNER | D_AP_RO | D_XN;
    enc_l2[(v / MIB2) % 512] = (uint64_t)(uintptr_t)enc_l3 | D_TABLE;
    enc_l2[(ENC_BASE / MIB2) % 512] = (uint64_t)(uintptr_t)enc_slot_l3 | D_TABLE;
    enc_l1[0] = (uint64_t)(uintptr_t)enc_l2 | D_TABLE;
}
static void enclave_map(uintptr_t base, size_t size) {
    for (unsigned i = 0; i < 512; i++) {
        uintptr_t a = ENC_BASE + (uintptr_t)i * 4096;
        enc_slot_l3[i] = a >= base && a - base < size
                             ? a | D_PAGE | D_ATTR(A_NORMAL) | D_AF | D_SH_INNER | D_AP_EL0 | D_PXN
                             : 0;
    }
    __asm__ volatile("dsb sy" ::: "memory");
}

#define TCR_32BIT (32ull | 1ull << 8 | 1ull << 10 | 3ull << 12) /* T0SZ 32, WB WA inner/outer, inner shareable, 4K */
#define SCTLR_EL3_RES1 0x30c50830ull
#define SCTLR_EL1_RES1 0x30d00800ull
#define SCTLR_M (1ull << 0)
#define SCTLR_C (1ull << 2)
#define SCTLR_I (1ull << 12)
#define SCR_NS (1ull << 0)
#define SCR_EA (1ull << 3)  /* external aborts (the host touching secure memory) are taken to EL3 */
#define SCR_RW (1ull << 10) /* lower ELs are AArch64 */
#define SCR_FIQ (1ull << 2) /* FIQs (the secure timer, Group 0) are taken to EL3, in either world */
/* Pointer authentication for the host (an OS signs return addresses with its
 * EL1 keys), not for the enclave: the keys are EL1 registers the two share, so
 * in the secure world PAC instructions trap to EL3 and fault the enclave. */
#define SCR_PAUTH (1ull << 16 | 1ull << 17) /* APK, API */

/* The EL1 system registers: one set in AArch64, shared by the normal world's
 * EL1 and the enclave's S-EL1 regime. The host's are kept here while the
 * enclave runs and put back before it runs again, so neither sees the
 * other's (the enclave's ELR/ESR/FAR of its last SVC included). */
#define EL1_REGS(X) X(sctlr_el1) X(ttbr0_el1) X(ttbr1_el1) X(tcr_el1) X(mair_el1) X(amair_el1) X(vbar_el1) \
    X(cpacr_el1) X(contextidr_el1) X(elr_el1) X(spsr_el1) X(esr_el1) X(far_el1) X(afsr0_el1) X(afsr1_el1) \
    X(par_el1) X(sp_el1) X(tpidr_el1) X(tpidr_el0) X(tpidrro_el0) X(cntkctl_el1) X(csselr_el1) X(mdscr_el1) \
    X(pmuserenr_el0)
#define FIELD(r) uint64_t r;
static struct { EL1_REGS(FIELD) } host_el1;

/* ------------------------------------------------------------- time slice
 * The secure physical timer (CNTPS_*: EL3 only, SCR_EL3.ST clear) raises
 * PPI 13 (INTID 29), which the GICv2's security extensions keep in Group 0
 * and signal as FIQ; SCR_EL3.FIQ takes it to EL3 from either world whatever
 * PSTATE.F says there. The host owns Group 1 and never sees it. */
#define GICD 0x08000000ul
#define GICC 0x08010000ul
#define TIMER_INTID 29u
uint64_t arch_fiq; /* start.S: the trap was the FIQ */
static volatile uint32_t *gic(uintptr_t a) { return (volatile uint32_t *)a; }
static void gic_init(void) {
    *gic(GICD + 0x080) &= ~(1u << TIMER_INTID);                      /* IGROUPR0: Group 0 */
    ((volatile uint8_t *)(GICD + 0x400))[TIMER_INTID] = 0x40;       /* IPRIORITYR */
    *gic(GICD + 0x100) = 1u << TIMER_INTID;                          /* ISENABLER0 */
    *gic(GICD + 0x000) |= 1u;                                        /* CTLR: EnableGrp0 */
    *gic(GICC + 0x004) = 0xff;                                       /* PMR: every priority */
    *gic(GICC + 0x000) |= 1u | 1u << 3;                              /* CTLR: EnableGrp0, FIQEn */
}
void arch_timer_arm(uint64_t ms) {
    MSR(cntps_tval_el1, ms * (arch_counter_hz() / 1000));
    MSR(cntps_ctl_el1, 1); /* ENABLE, not masked */
    __asm__ volatile("isb" ::: "memory");
}
void arch_timer_disarm(void) {
    MSR(cntps_ctl_el1, 0);
    __asm__ volatile("isb" ::: "memory");
}
/* Acknowledge the FIQ (the timer's, or a spurious 1023) and end it. */
static void timer_ack(void) {
    uint32_t id = *gic(GICC + 0x00c); /* IAR */
    arch_timer_disarm();
    if ((id & 0x3ff) != 1023) *gic(GICC + 0x010) = id; /* EOIR */
}

void arch_init(void) {
    el3_tables();
    enclave_tables();
    MSR(mair_el3, MAIR_VALUE);
    MSR(tcr_el3, TCR_32BIT | 1ull << 23 | 1ull << 31); /* PS = 0: 32-bit PA; bits 23, 31 RES1 */
    MSR(ttbr0_el3, (uintptr_t)el3_l1);
    __asm__ volatile("dsb sy\n\ttlbi alle3\n\tdsb sy\n\tisb" ::: "memory");
    MSR(sctlr_el3, SCTLR_EL3_RES1 | SCTLR_M | SCTLR_C | SCTLR_I);
    __asm__ volatile("isb" ::: "memory");
    /* Secure debug off (MDCR_EL3.SDD): the host's debug settings cannot reach into the enclave. */
    MSR(mdcr_el3, 1ull << 16);
    host_el1.sctlr_el1 = SCTLR_EL1_RES1; /* the host starts with its MMU off */
    /* Wall time: sampled before any host code runs (the PL031 is non-secure). */
    arch_rtc_at_boot = *(volatile uint32_t *)RTC_BASE;
    arch_counter_at_boot = arch_counter();
    arch_timer_disarm();
    gic_init();
}

#define SAVE(r) MRS(r, host_el1.r);
#define LOAD(r) MSR(r, host_el1.r);
void arch_isolate_enclave(uintptr_t base, size_t size) {
    enclave_map(base, size);
    EL1_REGS(SAVE)
    MSR(mair_el1, 0xff);
    MSR(tcr_el1, TCR_32BIT | 1ull << 23); /* EPD1: no TTBR1 walks */
    MSR(ttbr0_el1, (uintptr_t)enc_l1);
    MSR(ttbr1_el1, 0);
    MSR(vbar_el1, (uintptr_t)sel1_vectors);
    MSR(cpacr_el1, 0); /* FP/SIMD traps at S-EL0: the enclave is integer-only */
    MSR(contextidr_el1, 0);
    MSR(tpidr_el0, 0);
    MSR(tpidrro_el0, 0);
    MSR(tpidr_el1, 0);
    MSR(mdscr_el1, 0);
    MSR(pmuserenr_el0, 0); /* the host's EN would give the enclave its PMU counters */
    MSR(cntkctl_el1, 0);
    MSR(amair_el1, 0);
    MSR(elr_el1, 0);
    MSR(spsr_el1, 0);
    MSR(esr_el1, 0);
    MSR(far_el1, 0);
    MSR(scr_el3, SCR_RW | SCR_FIQ); /* secure */
    __asm__ volatile("isb" ::: "memory");
    MSR(sctlr_el1, SCTLR_EL1_RES1 | SCTLR_M | SCTLR_C | SCTLR_I);
    __asm__ volatile("isb\n\ttlbi vmalle1\n\tdsb sy\n\tisb" ::: "memory");
}
void arch_isolate_host(void) {
    MSR(scr_el3, SCR_RW | SCR_FIQ); /* the TLB maintenance below is for the secure regime */
    __asm__ volatile("isb\n\ttlbi vmalle1\n\tdsb sy\n\tisb" ::: "memory");
    EL1_REGS(LOAD)
    MSR(scr_el3, SCR_RW | SCR_FIQ | SCR_PAUTH | SCR_EA | SCR_NS); /* the next ERET enters the normal world */
    __asm__ volatile("isb" ::: "memory");
}

/* What the trap was. From the host: ESR_EL3 (an SMC, or an abort SCR_EL3.EA
 * routed here). From the enclave: its SVC or fault was taken to S-EL1, whose
 * vectors forward it with SMC; the real syndrome is in ESR_EL1/FAR_EL1, and
 * the frame is rewritten to resume the enclave at ELR_EL1 (or never). */
int arch_trap_kind(struct frame *f, int in_enclave, uint64_t *cause, uint64_t *addr) {
    uint64_t esr, far, scr;
    MRS(esr_el3, esr);
    if (arch_fiq) { /* the time slice: from the enclave (S-EL0) or, stale, from the host */
        uint32_t el = (uint32_t)f->spsr & 0x1f;
        uintptr_t v = (uintptr_t)sel1_vectors;
        *cause = 0;
        *addr = 0;
        timer_ack();
        if (in_enclave && el == 0x5 && f->pc >= v && f->pc < v + 0x800) {
            /* In the S-EL1 vector, between the enclave's SVC (or fault) and the SMC
             * that forwards it: its syndrome is in the EL1 registers, which the
             * host would get. Let the forward finish; the slice ends just after. */
            arch_timer_arm(1);
            return TRAP_NONE;
        }
        if (in_enclave ? el != SPSR_EL0T : (el != SPSR_EL1T && el != 0x5 && el != SPSR_EL0T))
            m_trap_halt(esr, f->pc, 0);
        return TRAP_TIMER;
    }
    MRS(far_el3, far);
    MRS(scr_el3, scr);
    if (!(scr & SCR_NS)) { /* from the secure world: only the S-EL1 vectors call */
        uint64_t pc = (uintptr_t)sel1_vectors;
        if (!in_enclave) m_trap_halt(esr, f->pc, far);
        if ((f->spsr & 0x1f) == SPSR_EL0T) {
            /* From S-EL0 straight to EL3: an instruction EL3 traps (PACGA and the
             * other pointer-authentication instructions, SCR_EL3.API clear in the
             * secure world; SVE, SME). The enclave faulted, not the monitor. */
            *cause = esr;
            *addr = far;
            return TRAP_OTHER;
        }
        if ((f->spsr & 0x1f) != 0x5 || f->pc < pc || f->pc >= pc + 0x800 || (esr >> 26) != 0x17)
            m_trap_halt(esr, f->pc, far);
        MRS(esr_el1, esr);
        MRS(far_el1, far);
        MRS(elr_el1, f->pc);
        MRS(spsr_el1, f->spsr);
        if ((f->spsr & 0x1f) != SPSR_EL0T) m_trap_halt(esr, f->pc, far); /* S-EL1 itself faulted */
    } else if ((f->spsr & 0x1f) != SPSR_EL1T && (f->spsr & 0x1f) != 0x5 && (f->spsr & 0x1f) != SPSR_EL0T) {
        m_trap_halt(esr, f->pc, far);
    }
    *cause = esr;
    *addr = far;
    switch (esr >> 26) {
    case 0x15: return (scr & SCR_NS) ? TRAP_OTHER : TRAP_CALL; /* SVC64: the enclave's call */
    case 0x17: return (scr & SCR_NS) ? TRAP_CALL : TRAP_OTHER; /* SMC64: the host's call */
    case 0x24: return (esr & (1u << 6)) ? TRAP_STORE : TRAP_LOAD; /* data abort from a lower EL */
    case 0x20: return TRAP_FETCH;                                   /* instruction abort from a lower EL */
    default: return TRAP_OTHER;
    }
}

/* QEMU's power-off: line 0 of the secure PL061 (secure-only on virt; line 1
 * is the reset). The exit status is on the console for the Linux side. */
void arch_poweroff(uint32_t code) {
    con_puts("[monitor] power off, code ");
    con_dec(code);
    con_puts("\n");
    volatile uint32_t *gpio = (volatile uint32_t *)SGPIO_BASE;
    gpio[0x400 / 4] = 1;     /* GPIODIR: line 0 is an output */
    gpio[(1 << 2) / 4] = 1;  /* GPIODATA, address-masked to line 0: high */
    for (;;) __asm__ volatile("wfi");
}
