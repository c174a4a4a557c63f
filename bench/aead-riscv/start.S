    .section .text._start
    .globl _start
_start:
    la sp, stack_top
    call main_c
1:  j 1b
    .bss
    .align 16
    .space 65536
stack_top:
