/* Reset entry, the trap path from S- and U-mode and the way back.
 *
 * mscratch is the trap frame while the host (S-mode) or an enclave (U-mode)
 * runs and 0 while M-mode runs. A trap swaps it with sp: a non-zero result
 * is the frame of the S- or U-mode code that
 * trapped; 0 means the trap was taken in M-mode (the monitor itself faulted),
 * and that path halts the machine without touching any saved context. */
    .equ FRAME, 272             /* struct frame: x0..x31, pc, mode */

    .section .text._start
    .globl _start
_start:
    csrw mie, zero
    csrw mscratch, zero         /* M-mode runs: a trap from here on halts */
    la sp, __boot_stack_top
    la t0, trap_entry
    csrw mtvec, t0
    call monitor_main
1:  wfi
    j 1b

/* enter_user(frame): frame sits at the top of the trap stack; mscratch keeps it while S- or U-mode runs. */
    .text
    .globl enter_user
enter_user:
    mv sp, a0
    j restore

    .align 4
trap_entry:
    csrrw sp, mscratch, sp      /* from S/U: sp = frame, mscratch = its sp; from M: sp = 0 */
    beqz sp, m_trap
    sd x1, 8(sp)
    sd x3, 24(sp)
    sd x4, 32(sp)
    sd x5, 40(sp)
    sd x6, 48(sp)
    sd x7, 56(sp)
    sd x8, 64(sp)
    sd x9, 72(sp)
    sd x10, 80(sp)
    sd x11, 88(sp)
    sd x12, 96(sp)
    sd x13, 104(sp)
    sd x14, 112(sp)
    sd x15, 120(sp)
    sd x16, 128(sp)
    sd x17, 136(sp)
    sd x18, 144(sp)
    sd x19, 152(sp)
    sd x20, 160(sp)
    sd x21, 168(sp)
    sd x22, 176(sp)
    sd x23, 184(sp)
    sd x24, 192(sp)
    sd x25, 200(sp)
    sd x26, 208(sp)
    sd x27, 216(sp)
    sd x28, 224(sp)
    sd x29, 232(sp)
    sd x30, 240(sp)
    sd x31, 248(sp)
    csrr t0, mscratch
    sd t0, 16(sp)
    csrw mscratch, zero         /* M-mode from here until mret */
    csrr t0, mepc
    sd t0, 256(sp)
    mv a0, sp                   /* the C stack grows down from just below the frame */
    call trap_handler
restore:
    ld t0, 256(sp)
    csrw mepc, t0
    li t0, 0x1800               /* mstatus.MPP = U ... */
    csrc mstatus, t0
    ld t0, 264(sp)              /* ... or S when the frame's mode says so: never M */
    andi t0, t0, 1
    slli t0, t0, 11
    csrs mstatus, t0
    ld x1, 8(sp)
    ld x3, 24(sp)
    ld x4, 32(sp)
    ld x5, 40(sp)
    ld x6, 48(sp)
    ld x7, 56(sp)
    ld x8, 64(sp)
    ld x9, 72(sp)
    ld x10, 80(sp)
    ld x11, 88(sp)
    ld x12, 96(sp)
    ld x13, 104(sp)
    ld x14, 112(sp)
    ld x15, 120(sp)
    ld x16, 128(sp)
    ld x17, 136(sp)
    ld x18, 144(sp)
    ld x19, 152(sp)
    ld x20, 160(sp)
    ld x21, 168(sp)
    ld x22, 176(sp)
    ld x23, 184(sp)
    ld x24, 192(sp)
    ld x25, 200(sp)
    ld x26, 208(sp)
    ld x27, 216(sp)
    ld x28, 224(sp)
    ld x29, 232(sp)
    ld x30, 240(sp)
    ld x31, 248(sp)
    csrw mscratch, sp           /* the frame, for the next trap from S- or U-mode */
    ld sp, 16(sp)
    mret

/* A trap taken in M-mode: the monitor faulted, and no S- or U-mode context is
 * involved. Report it on a stack of its own and stop; a trap on this path
 * lands in the wfi loop. Never returns. */
m_trap:
    la sp, m_trap_spin
    csrw mtvec, sp
    la sp, __halt_stack_top
    csrr a0, mcause
    csrr a1, mepc
    csrr a2, mtval
    call m_trap_halt
    .align 2
m_trap_spin:
    wfi
    j m_trap_spin

    .section .bss.stacks, "aw", @nobits
    .align 16
    .globl __boot_stack_bottom
__boot_stack_bottom:
    .space 65536
    .globl __boot_stack_top
__boot_stack_top:
    .space 1048576              /* librewire runs on this stack inside ecalls */
    .globl __trap_frame
__trap_frame:
    .space FRAME
    .align 16
    .space 4096                 /* m_trap's stack */
__halt_stack_top:
