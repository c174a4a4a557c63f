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
#define ENC_CODE_MAX 0x10000UL /* code: ENC_BASE .. +64 KiB (measured, migrated) */
#define ENC_STACK_TOP (ENC_BASE + 0x20000UL) /* scratch stack, not migrated */
#define ENC_STATE (ENC_BASE + 0x20000UL) /* state: migrated byte for byte */
#define ENC_STATE_MAX (ENC_SIZE - 0x20000UL)

/* Untrusted storage layout (offsets from FLASH_HOST): two journal slots, two checkpoint slots. */
#define JOURNAL_SLOT0 0x000000UL
#define JOURNAL_SLOT1 0x200000UL
#define JOURNAL_SLOT_SIZE 0x200000UL
#define CKPT_SLOT0 0x400000UL
#define CKPT_SLOT1 0xA00000UL
#define CKPT_SLOT_SIZE 0x600000UL
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

/* Ecalls from the host (a7 = number). Pointers must lie inside the host region. */
enum {
    H_INFO = 1,       /* a0=buf, a1=cap: host_id[32] sm_measurement[32] enclave_measurement[32] certificate */
    H_LAUNCH = 2,     /* a0=policy, a1=len, a2=state_len: load the built-in enclave and install it */
    H_SDS = 3,        /* a0=msg, a1=len */
    H_PEER = 4,       /* a0=from[32] conn[16] bytes..., a1=total len */
    H_CLOSED = 5,     /* a0=conn[16] */
    H_TICK = 6,
    H_POLL_OUT = 7,   /* a0=buf, a1=cap: dest[1] host[32] conn[16] bytes; returns total len */
    H_POLL_EVENT = 8, /* a0=buf: event u32, request[16], reason u32 (24 bytes) */
    H_RUN = 9,        /* run one enclave step; returns 0 or a REWIRE_ERR_* */
    H_TIME_MS = 10,
    H_STATUS = 11,    /* a0=buf: state u32, epoch u64, may_run u32, counter u64 (24 bytes) */
    H_POWEROFF = 12,
};
/* Ecalls from the enclave. Pointers must lie inside the enclave region. */
enum {
    E_EXIT = 100,
    E_PRINT = 101,    /* a0=str, a1=len */
    E_HOSTNAME = 102, /* a0=buf[16] */
    E_SEAL = 103,     /* a0=data, a1=len: becomes the enclave's sealed data */
    E_UNSEAL = 104,   /* a0=buf, a1=cap: returns the plaintext length */
};
/* Ecall results: >= 0 success; negative = -(REWIRE_ERR_* or a monitor code below). */
#define MON_ERR_BAD_POINTER 900
#define MON_ERR_NO_ENCLAVE 901
#define MON_ERR_NOT_RUNNABLE 902
#define MON_ERR_FLASH 903 /* the monitor's flash could not be read */
#define MON_ERR_TOO_LARGE 904 /* longer than the monitor's copy-in buffer for that argument (caps below) */
#define MON_ERR_NOT_DURABLE 905 /* a checkpoint the migration needs did not reach flash: its output was withheld */

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
};
#define FRAME_MAX (4u << 20)

#endif
