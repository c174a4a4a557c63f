/*
 * The reference monitor's own ABI: the ecalls that the untrusted host program
 * and the enclave make into the monitor (ecall on RISC-V, SMC/SVC on Arm), the memory map, and the frames
 * the host exchanges with the relay on Linux. Shared by monitor.c, host.c,
 * enclave.c and mirrored in monitor/linux/qemu_world.py.
 */
#ifndef REWIRE_MONITOR_ABI_H
#define REWIRE_MONITOR_ABI_H

#include <stdint.h>

/* Memory map: per architecture (riscv/platform.h, arm/platform.h): MON_BASE,
 * HOST_BASE/HOST_SIZE, ENC_BASE/ENC_SIZE, the UART, the virtio-mmio
 * transports, FLASH_HOST (untrusted storage) and FLASH_MON (counter, fuses). */
#if defined(__aarch64__)
#include "arm/platform.h"
#else
#include "riscv/platform.h"
#endif
/* Enclave slots: ENC_SLOTS of ENC_SLOT_SIZE each from ENC_BASE (platform.h),
 * each a naturally aligned power of two (one PMP NAPOT entry, or one run of
 * 4 KiB pages on Arm). Within a slot, as offsets from its base: */
#define ENC_SLOTS 4
#define ENC_SLOT(i) (ENC_BASE + (uintptr_t)(i) * ENC_SLOT_SIZE)
#define ENC_CODE_MAX 0x10000UL /* code: +0 .. +64 KiB (measured, migrated) */
#define ENC_STACK_OFF 0x20000UL /* scratch stack top, not migrated */
#define ENC_STATE_OFF 0x20000UL /* state: migrated byte for byte, up to ENC_STATE_MAX (platform.h) */
#define ENC_STATE (ENC_BASE + ENC_STATE_OFF) /* slot 0's state (the host's isolation probe) */

/* Untrusted storage layout (offsets from FLASH_HOST): two journal slots (one
 * journal: librewire keeps every enclave's record in it), then two checkpoint
 * slots for each enclave slot. */
#define JOURNAL_SLOT0 0x000000UL
#define JOURNAL_SLOT1 0x200000UL
#define JOURNAL_SLOT_SIZE 0x200000UL
#define CKPT_SLOT0 0x400000UL
#define CKPT_SLOT_SIZE 0x180000UL
#define CKPT_SLOT(i, k) (CKPT_SLOT0 + (2 * (uintptr_t)(i) + (k)) * CKPT_SLOT_SIZE) /* enclave slot i, copy k */
/* Monitor-only flash (offsets from FLASH_MON). */
#define COUNTER_OFF 0x000000UL /* one programmed 32-bit word per increment */
#define COUNTER_WORDS 0x100000UL
#define ROT_OFF 0xF00000UL /* simulated fuses: struct rot_blob */

#define ROT_MAGIC "RWROT001"
struct rot_blob {
    char magic[8];
    uint8_t device_secret[32];
    uint8_t sds_public_key[32];
    char name[16];
};

/* Calls into the monitor follow the RISC-V SBI calling convention: a7 =
 * extension id, a6 = function id, a0..a2 = arguments; the monitor returns
 * a0 = error (0: success) and a1 = value. On Arm the host's SMC and the
 * enclave's SVC use the same registers' counterparts: x7, x6, x0..x2 in,
 * x0, x1 out. The enclave functions live in Keystone's extension with
 * Keystone's function numbers; what migration adds takes new numbers in
 * Keystone's ranges (2000-2999: called by the host, 3000-3999: by the
 * enclave). docs/porting.md maps each to Keystone's SM 1:1. Pointers are
 * physical addresses and must lie inside the caller's region. */
#define SBI_EXT_BASE 0x10
#define SBI_EXT_SRST 0x53525354     /* "SRST": system reset (the host's power-off) */
#define SBI_EXT_KEYSTONE 0x08424b45 /* Keystone's experimental extension: 0x08 + "BKE" */
#define SBI_ERR_NOT_SUPPORTED (-2)  /* SBI's own errors are negative */
enum {
    /* the host's: Keystone's functions */
    H_LAUNCH = 2001,  /* SBI_SM_CREATE_ENCLAVE. a0=id[16] policy, a1=len, a2=state_len: load the built-in
                       * enclave into a free slot and install it; value = the slot (Keystone's eid) */
    H_DESTROY = 2002, /* SBI_SM_DESTROY_ENCLAVE. a0=slot: refused (NOT_DESTROYABLE) while it holds an enclave:
                       * only the SDS ends an enclave (migration); an empty slot is INVALID_ID */
    H_RUN = 2003,     /* SBI_SM_RUN_ENCLAVE. a0=slot: one step from the entry point; value = its exit value,
                       * or error INTERRUPTED (the timer took the CPU back: H_RESUME continues the step) */
    H_RESUME = 2005,  /* SBI_SM_RESUME_ENCLAVE. a0=slot: continue an interrupted step */
    /* the host's: librewire's, new numbers */
    H_INFO = 2100,    /* a0=buf, a1=cap: host_id[32] sm_measurement[32] enclave_measurement[32] certificate */
    H_SDS = 2101,     /* a0=msg, a1=len */
    H_PEER = 2102,    /* a0=from[32] conn[16] bytes..., a1=total len */
    H_CLOSED = 2103,  /* a0=conn[16] */
    H_TICK = 2104,
    H_POLL_OUT = 2105,   /* a0=buf, a1=cap: dest[1] host[32] conn[16] bytes; value = total len */
    H_POLL_EVENT = 2106, /* a0=buf: event u32, request[16], reason u32 (24 bytes) */
    H_TIME_MS = 2107,
    H_STATUS = 2108,  /* a0=buf: in: enclave id[16]; out: state u32, epoch u64, runnable u32, present u32,
                       * slot u32 (0xffffffff: in none) */
    /* the enclave's: Keystone's functions */
    E_RANDOM = 3001,  /* SBI_SM_RANDOM: value = 64 random bits (the monitor's DRBG) */
    E_STOP = 3004,    /* SBI_SM_STOP_ENCLAVE. a0 = request (1: an edge call for the host, 0: yield): the
                       * step stops here, the host's H_RUN/H_RESUME answers EDGE_CALL_HOST (or
                       * INTERRUPTED), and H_RESUME continues after the call, which returns 0; any
                       * other request: ILLEGAL_ARGUMENT, and the step goes on */
    E_EXIT = 3006,    /* SBI_SM_EXIT_ENCLAVE. a0 = exit value (the host's H_RUN value) */
    /* the enclave's: new numbers (librewire seals for the enclave; no key leaves the monitor) */
    E_PRINT = 3100,   /* a0=str, a1=len */
    E_HOSTNAME = 3101, /* a0=buf[16] */
    E_SEAL = 3102,    /* a0=data, a1=len: becomes the enclave's sealed data */
    E_UNSEAL = 3103,  /* a0=buf, a1=cap: value = the plaintext length */
};
/* SRST (the host's power-off): a0 = reset type (0 shutdown), a1 = reason (0 none, 1 failure). */
#define SRST_SYSTEM_RESET 0

/* Errors (a0). librewire's own (REWIRE_ERR_*, below 1000) pass through;
 * the monitor's are Keystone's (100000 + n) where Keystone has one. */
#define KS_ERR_INVALID_ID 100001 /* no enclave in that slot (or not a slot) */
#define KS_ERR_INTERRUPTED 100002 /* H_RUN/H_RESUME: the step was preempted */
#define KS_ERR_NOT_RUNNABLE 100004 /* not runnable now (paused for a migration, or interrupted: resume it) */
#define KS_ERR_NOT_DESTROYABLE 100005
#define KS_ERR_NOT_ACCESSIBLE 100007 /* a pointer outside the caller's region */
#define KS_ERR_ILLEGAL_ARGUMENT 100008
#define KS_ERR_NOT_RESUMABLE 100010 /* H_RESUME on a step that was not interrupted */
#define KS_ERR_EDGE_CALL_HOST 100011 /* H_RUN/H_RESUME: the enclave stopped for the host (E_STOP 1) */
#define KS_ERR_NO_FREE_RESOURCE 100013 /* every slot holds an enclave */
#define MON_ERR_BAD_POINTER KS_ERR_NOT_ACCESSIBLE
#define MON_ERR_NO_ENCLAVE KS_ERR_INVALID_ID
#define MON_ERR_NOT_RUNNABLE KS_ERR_NOT_RUNNABLE
/* The reference monitor's own, after Keystone's. */
#define MON_ERR_TOO_LARGE 100904 /* longer than the monitor's copy-in buffer for that argument (caps below) */
#define MON_ERR_NOT_DURABLE 100905 /* a checkpoint the migration needs did not reach flash: its output was withheld */

/* Host input is copied into M-mode memory before librewire sees it; these are
 * the caps of those copies. librewire refuses longer inputs anyway (its
 * MAX_MESSAGE, MAX_SIGNED and a channel's 64 KiB + 1 KiB of buffered bytes). */
#define SDS_MSG_MAX (24u << 10) /* H_SDS: one SDS message */
#define PEER_BYTES_MAX (65u << 10) /* H_PEER: TLS bytes after from[32] conn[16] */
#define POLICY_MAX 4096u /* H_LAUNCH: the signed policy after the id[16] */
#define OUT_MAX (128u << 10) /* H_POLL_OUT and H_INFO: one output, built in M memory then copied out */

/* Frames between the host program and the relay: 'R' 'W' type len32(le) payload. */
enum {
    /* host -> relay */
    F_HELLO = 1,   /* H_INFO bytes */
    F_TO_SDS = 2,  /* bytes */
    F_TO_PEER = 3, /* host[32] conn[16] bytes */
    F_EVENT = 4,   /* event u32, request[16], reason u32 */
    F_RESULT = 5,  /* command u8, result i32 (the monitor's answer to a relay command) */
    F_STATUS = 6,  /* H_STATUS bytes */
    F_PROBE = 7,   /* result of reading enclave memory: i32 (0 = read succeeded, -1 = denied) */
    F_ABUSE = 8,   /* hostile host only: the results (i32 each) of its bad ecalls, in order */
    F_FUZZ = 9,    /* hostile host only: u32 calls, then u32 counts: ok, not supported, not accessible,
                    * too large, invalid id, other errors */
    F_SCAN = 10,   /* hostile host only: u32 marker hits in host memory, in host flash, u32 successful
                    * reads of the monitor's and each slot's memory */
    /* relay -> host */
    F_SDS = 32,    /* bytes */
    F_PEER = 33,   /* from[32] conn[16] bytes */
    F_CLOSED = 34, /* conn[16] */
    F_LAUNCH = 35, /* state_len u32, policy */
    F_RUN = 36,    /* period_ms u32 (0 = stop stepping the enclave) */
    F_STATUS_REQ = 37,
    F_PROBE_REQ = 38,
    F_OFF = 39,
    F_ABUSE_REQ = 40, /* hostile host only (tests): make bad ecalls, answer F_ABUSE */
    F_HELLO_REQ = 41, /* send F_HELLO again (a host agent that reconnected) */
    F_FUZZ_REQ = 42,  /* hostile host only: seed u32, calls u32: random SBI calls, answer F_FUZZ */
    F_SCAN_REQ = 43,  /* hostile host only: a marker, each byte xor 0xff: search host memory and flash, F_SCAN */
};
#define FRAME_MAX (4u << 20)

#endif
