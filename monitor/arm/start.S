/* Reset entry at EL3, the EL3 vectors (traps from the host and the enclave:
 * the world switch), the enclave's S-EL1 vector page, and the way into a
 * lower EL.
 *
 * SP_EL3 is the trap frame (struct frame, arch.h) while a lower EL runs; the
 * C stack grows down from just below it. A trap from EL3 itself (the
 * current-EL vectors) means the monitor faulted: it halts on a stack of its
 * own without touching any saved context. Every ERET restores x0..x30,
 * SP_EL0, the whole FP/SIMD file, FPSR and FPCR from the frame: no value the
 * monitor computed reaches a lower EL except the result in x0. */
    .equ FRAME, 800
    .equ F_SP_EL0, 248
    .equ F_PC, 256
    .equ F_Q, 272
    .equ F_FPSR, 784

/* The reset vector, in the secure flash: copy each loaded section from flash
 * to RAM (16 bytes a step, MMU off), then run the monitor from secure RAM. */
    .macro copy section
    ldr x0, =LOADADDR_\section
    ldr x1, =START_\section
    ldr x2, =END_\section
1:  cmp x1, x2
    b.hs 2f
    ldp x3, x4, [x0], #16
    stp x3, x4, [x1], #16
    b 1b
2:
    .endm
    .section .text.boot, "ax"
    .globl _reset
_reset:
    copy text
    copy rodata
    copy data
    copy enclave
    copy host
    ldr x0, =_start
    br x0
    .ltorg

    .section .text._start
    .globl _start
_start:
    msr daifset, #0xf
    adr x0, el3_vectors
    msr vbar_el3, x0
    msr cptr_el3, xzr           /* FP/SIMD at EL3 (TFP = 0): librewire uses NEON */
    mov x0, #(1 << 10)          /* SCR_EL3.RW: lower ELs are AArch64; secure until the host runs */
    msr scr_el3, x0
    isb
    ldr x0, =__boot_stack_top
    mov sp, x0
    bl monitor_main             /* arch_init turns the MMU on first */
1:  wfi
    b 1b

/* enter_user(frame): the frame sits at the top of the trap stack; SP_EL3 keeps it while a lower EL runs. */
    .text
    .globl enter_user
enter_user:
    mov sp, x0
    b restore

    .macro fp_save base
    stp q0, q1, [\base, #0]
    stp q2, q3, [\base, #32]
    stp q4, q5, [\base, #64]
    stp q6, q7, [\base, #96]
    stp q8, q9, [\base, #128]
    stp q10, q11, [\base, #160]
    stp q12, q13, [\base, #192]
    stp q14, q15, [\base, #224]
    stp q16, q17, [\base, #256]
    stp q18, q19, [\base, #288]
    stp q20, q21, [\base, #320]
    stp q22, q23, [\base, #352]
    stp q24, q25, [\base, #384]
    stp q26, q27, [\base, #416]
    stp q28, q29, [\base, #448]
    stp q30, q31, [\base, #480]
    .endm
    .macro fp_load base
    ldp q0, q1, [\base, #0]
    ldp q2, q3, [\base, #32]
    ldp q4, q5, [\base, #64]
    ldp q6, q7, [\base, #96]
    ldp q8, q9, [\base, #128]
    ldp q10, q11, [\base, #160]
    ldp q12, q13, [\base, #192]
    ldp q14, q15, [\base, #224]
    ldp q16, q17, [\base, #256]
    ldp q18, q19, [\base, #288]
    ldp q20, q21, [\base, #320]
    ldp q22, q23, [\base, #352]
    ldp q24, q25, [\base, #384]
    ldp q26, q27, [\base, #416]
    ldp q28, q29, [\base, #448]
    ldp q30, q31, [\base, #480]
    .endm

/* FIQ: the secure timer (SCR_EL3.FIQ routes it here), the enclave's time
 * slice. Saved exactly like a synchronous trap; arch_fiq tells them apart. */
lower_fiq:
    stp x0, x1, [sp, #0]
    mov x0, #1
    b 1f
lower_sync:
    stp x0, x1, [sp, #0]
    mov x0, #0
1:  adrp x1, arch_fiq
    str x0, [x1, :lo12:arch_fiq]
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    mrs x0, sp_el0
    stp x30, x0, [sp, #240]
    mrs x0, elr_el3
    mrs x1, spsr_el3
    stp x0, x1, [sp, #F_PC]
    add x0, sp, #F_Q
    fp_save x0
    mrs x1, fpsr
    mrs x2, fpcr
    add x3, sp, #F_FPSR
    stp x1, x2, [x3]
    mov x0, sp                  /* the C stack grows down from just below the frame */
    bl trap_handler
restore:
    add x0, sp, #F_Q
    add x3, sp, #F_FPSR
    ldp x1, x2, [x3]
    msr fpsr, x1
    msr fpcr, x2
    fp_load x0
    ldp x0, x1, [sp, #F_PC]
    and x1, x1, #~0x18          /* never an ERET to EL2, EL3 or AArch32: M[4] = M[3] = 0 */
    msr elr_el3, x0
    msr spsr_el3, x1
    ldp x30, x0, [sp, #240]
    msr sp_el0, x0
    ldp x0, x1, [sp, #0]
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
    eret

/* A trap taken at EL3: the monitor faulted. Report it on a stack of its own
 * and stop; a trap on this path lands in the spin vectors. Never returns. */
m_trap:
    adr x0, spin_vectors
    msr vbar_el3, x0
    isb
    ldr x0, =__halt_stack_top
    mov sp, x0
    mrs x0, esr_el3
    mrs x1, elr_el3
    mrs x2, far_el3
    bl m_trap_halt

/* The EL3 vectors: 16 entries of 0x80 bytes. */
    .macro ventry target
    .balign 0x80
    b \target
    .endm
    .balign 0x800
el3_vectors:
    ventry m_trap               /* current EL, SP_EL0 */
    ventry m_trap
    ventry m_trap
    ventry m_trap
    ventry m_trap               /* current EL, SP_EL3 */
    ventry m_trap
    ventry m_trap
    ventry m_trap
    ventry lower_sync           /* lower EL, AArch64: synchronous (SMC, aborts, the S-EL1 forward) */
    ventry m_trap               /* IRQ: not routed here */
    ventry lower_fiq            /* FIQ: the secure timer, Group 0 */
    ventry m_trap               /* SError: not routed here */
    ventry m_trap               /* lower EL, AArch32: never (SCR_EL3.RW, SPSR checked) */
    ventry m_trap
    ventry m_trap
    ventry m_trap

    .balign 0x800
spin_vectors:
    .rept 16
    .balign 0x80
    wfi
    b .
    .endr

/* The enclave's S-EL1 vectors, alone in their 4 KiB page: the only monitor
 * memory its translation regime maps (EL1 read-only, executable; EL0 no
 * access). Every entry forwards to EL3 with SMC and touches no register:
 * EL3 reads the syndrome from ESR_EL1 and resumes the enclave itself. */
    .section .text.sel1, "ax"
    .balign 4096
    .globl sel1_vectors
sel1_vectors:
    .rept 16
    .balign 0x80
    smc #0
    b .
    .endr
    .balign 4096

    .section .bss.stacks, "aw", @nobits
    .balign 16
    .globl __boot_stack_bottom
__boot_stack_bottom:
    .space 65536
    .globl __boot_stack_top
__boot_stack_top:
    .space 1048576              /* librewire runs on this stack inside SMCs */
    .globl __trap_frame
__trap_frame:
    .space FRAME
    .balign 16
    .space 4096                 /* m_trap's stack */
__halt_stack_top:
