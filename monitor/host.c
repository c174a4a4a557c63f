/*
 * The untrusted host program (S-mode on RISC-V, as Linux runs; NS-EL1 on
 * Arm). It stands for the OS and its network stack: it owns the UART and a
 * virtio console whose other end is the relay on Linux, carries frames
 * between that relay and the monitor's SBI calls (abi.h: Keystone's
 * extension), ticks the monitor and schedules the enclaves in their slots,
 * resuming a step the monitor's timer preempted. It is not trusted with
 * anything: PMP keeps it out of the monitor and the enclaves (F_PROBE_REQ
 * shows it), and every byte it relays is authenticated by librewire.
 *
 * No libc: nothing here may call into the monitor's region.
 */
#include <stddef.h>
#include <stdint.h>
#include "abi.h"
#include "user_arch.h"

#ifdef HOSTILE_FLASH_CMD
/* The hostile variant (monitor-hostile.elf, built from this file with
 * -DHOSTILE_FLASH_CMD; tests/system): once armed by F_PROBE_REQ, it writes a
 * CFI command to its own half of pflash before every call, the next of every
 * command the device knows each time: read status, read ID, CFI query, clear
 * status, and the first halves of block lock, block erase, write to buffer,
 * program and suspend, left for the monitor's next write to complete. QEMU's
 * pflash1 is one device with one command state, so the monitor then reads
 * status, ID or query words, not data, from the half only it may reach, and
 * its own first write lands inside the host's half-issued command. */
static int hostile_armed;
static unsigned hostile_next;
static const uint8_t hostile_cmds[] = {0x70, 0x90, 0x98, 0x50, 0x60, 0x20, 0xe8, 0x40, 0xb0};
#define HOSTILE_CMD()                                                                                   \
    do {                                                                                                \
        if (hostile_armed) {                                                                            \
            uint32_t c = hostile_cmds[hostile_next++ % sizeof hostile_cmds];                          \
            *(volatile uint32_t *)FLASH_HOST = c | c << 16;                                             \
        }                                                                                               \
    } while (0)
#else
#define HOSTILE_CMD() do {} while (0)
#endif

/* A call into the monitor in Keystone's SBI extension (user_arch.h: ecall on
 * RISC-V, SMC on Arm): the value, or -error. */
static long ecall(long n, long a0, long a1, long a2) {
    HOSTILE_CMD();
    struct sbiret r = sbi_call(SBI_EXT_KEYSTONE, n, a0, a1, a2);
    return r.error > 0 ? -r.error : r.error < 0 ? r.error : r.value;
}
static void poweroff(int failure) {
    sbi_call(SBI_EXT_SRST, SRST_SYSTEM_RESET, 0, failure, 0);
    for (;;) {}
}

/* Eight bytes at a time where both ends allow it (an image's bytes pass
 * through here), byte by byte otherwise. */
typedef uint64_t __attribute__((may_alias)) word_t;
static void copy(void *d, const void *s, size_t n) {
    uint8_t *a = d;
    const uint8_t *b = s;
    if ((((uintptr_t)a ^ (uintptr_t)b) & 7) == 0) {
        for (; n && ((uintptr_t)a & 7); n--) *a++ = *b++;
        for (; n >= 8; n -= 8, a += 8, b += 8) *(word_t *)a = *(const word_t *)b;
    }
    while (n--) *a++ = *b++;
}
static void zero(void *d, size_t n) {
    volatile uint8_t *a = d;
    while (n--) *a++ = 0;
}

/* ---------------------------------------------------------------- UART */
static void putc_(char c) { user_putc(c); }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void putd(long v) {
    char b[24]; int i = 23; b[i] = 0;
    unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
    do { b[--i] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) b[--i] = '-';
    puts_(b + i);
}
static void say(const char *s) { puts_("[host] "); puts_(s); }

/* --------------------------------------------------- virtio-mmio console */
#define VQN 64
#define RXBUF 4096
struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[VQN], event; };
struct used { uint16_t flags, idx; struct { uint32_t id, len; } ring[VQN]; uint16_t event; };
struct vq {
    struct desc d[VQN] __attribute__((aligned(16)));
    struct avail a __attribute__((aligned(4)));
    struct used u __attribute__((aligned(8)));
    uint16_t seen;
};
static struct vq rxq, txq;
static uint8_t rxbuf[VQN][RXBUF];
static volatile uint32_t *vio;

static uint32_t rd(unsigned off) { return vio[off / 4]; }
static void wr(unsigned off, uint32_t v) { vio[off / 4] = v; }
static void fence(void) { user_fence(); }

static int setup_queue(unsigned q, struct vq *v) {
    wr(0x30, q);
    if (rd(0x34) < VQN) return -1;
    wr(0x38, VQN);
    uint64_t d = (uint64_t)(uintptr_t)v->d, a = (uint64_t)(uintptr_t)&v->a, u = (uint64_t)(uintptr_t)&v->u;
    wr(0x80, (uint32_t)d); wr(0x84, (uint32_t)(d >> 32));
    wr(0x90, (uint32_t)a); wr(0x94, (uint32_t)(a >> 32));
    wr(0xa0, (uint32_t)u); wr(0xa4, (uint32_t)(u >> 32));
    wr(0x44, 1);
    return 0;
}

static int virtio_init(void) {
    for (uintptr_t base = VIRTIO_FIRST; base <= VIRTIO_LAST; base += VIRTIO_STRIDE) {
        vio = (volatile uint32_t *)base;
        if (rd(0) == 0x74726976 && rd(4) == 2 && rd(8) == 3) break; /* modern virtio-mmio, console */
        vio = 0;
    }
    if (!vio) return -1;
    wr(0x70, 0);
    wr(0x70, 1 | 2);            /* ACKNOWLEDGE | DRIVER */
    wr(0x24, 1); wr(0x20, 1);   /* VIRTIO_F_VERSION_1, nothing else (no multiport) */
    wr(0x24, 0); wr(0x20, 0);
    wr(0x70, 1 | 2 | 8);        /* FEATURES_OK */
    if (!(rd(0x70) & 8)) return -1;
    if (setup_queue(0, &rxq) || setup_queue(1, &txq)) return -1;
    for (int i = 0; i < VQN; i++) {
        rxq.d[i].addr = (uint64_t)(uintptr_t)rxbuf[i];
        rxq.d[i].len = RXBUF;
        rxq.d[i].flags = 2; /* device writes */
        rxq.a.ring[i] = (uint16_t)i;
    }
    fence();
    rxq.a.idx = VQN;
    fence();
    wr(0x70, 1 | 2 | 8 | 4);    /* DRIVER_OK */
    wr(0x50, 0);
    return 0;
}

static void tx(const uint8_t *p, size_t n) {
    while (n) {
        size_t k = n < 65536 ? n : 65536;
        txq.d[0].addr = (uint64_t)(uintptr_t)p;
        txq.d[0].len = (uint32_t)k;
        txq.d[0].flags = 0;
        txq.a.ring[txq.a.idx % VQN] = 0;
        fence();
        txq.a.idx++;
        fence();
        wr(0x50, 1);
        while (*(volatile uint16_t *)&txq.u.idx == txq.seen) {}
        txq.seen++;
        fence();
        p += k;
        n -= k;
    }
}

/* Received bytes: the current used buffer and our position in it. */
static int rx_have = -1;
static uint32_t rx_len, rx_pos;
/* 1 when the current used buffer has a byte at rx_pos (taking the next used
 * buffer, and giving a finished one back, as needed); 0 when none is there. */
static int rx_ready(void) {
    for (;;) {
        if (rx_have < 0) {
            if (*(volatile uint16_t *)&rxq.u.idx == rxq.seen) return 0;
            fence();
            uint32_t id = rxq.u.ring[rxq.seen % VQN].id;
            rx_len = rxq.u.ring[rxq.seen % VQN].len;
            rxq.seen++;
            if (id >= VQN) continue; /* not a buffer of ours */
            rx_have = (int)id;
            rx_pos = 0;
            if (rx_len > RXBUF) rx_len = RXBUF;
        }
        if (rx_pos < rx_len) return 1;
        rxq.a.ring[rxq.a.idx % VQN] = (uint16_t)rx_have; /* give the buffer back */
        fence();
        rxq.a.idx++;
        fence();
        wr(0x50, 0);
        rx_have = -1;
    }
}

/* ---------------------------------------------------------------- frames */
#define BUF (2u << 20)
static uint8_t in[BUF + 64], out[BUF + 64], scratch[64];
static uint32_t in_type, in_len, in_got, hdr_got;
static uint8_t hdr[7];

static void send(uint32_t type, const uint8_t *p, size_t n) {
    uint8_t h[7] = {'R', 'W', (uint8_t)type, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    tx(h, 7);
    if (n) tx(p, n);
}
static void send_result(uint32_t cmd, long r) {
    uint8_t b[5] = {(uint8_t)cmd, (uint8_t)r, (uint8_t)(r >> 8), (uint8_t)(r >> 16), (uint8_t)(r >> 24)};
    send(F_RESULT, b, 5);
}

/* One whole frame into `in`, or 0 if none is complete yet. Oversized frames
 * are skipped. A frame's payload is copied from the receive buffers a run at
 * a time (up to the end of the buffer or of the frame), not byte by byte:
 * this loop is what every byte of an enclave image goes through. */
static int rx_frame(void) {
    while (rx_ready()) {
        const uint8_t *b = rxbuf[rx_have];
        if (hdr_got < 7) {
            uint8_t c = b[rx_pos++];
            hdr[hdr_got++] = c;
            if (hdr_got == 1 && c != 'R') hdr_got = 0;
            else if (hdr_got == 2 && c != 'W') hdr_got = 0;
            else if (hdr_got == 7) {
                in_type = hdr[2];
                in_len = (uint32_t)hdr[3] | (uint32_t)hdr[4] << 8 | (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 24;
                in_got = 0;
                if (in_len == 0) { hdr_got = 0; return 1; }
            }
            continue;
        }
        uint32_t n = in_len - in_got;
        if (n > rx_len - rx_pos) n = rx_len - rx_pos;
        if (in_got < BUF) copy(in + in_got, b + rx_pos, n < BUF - in_got ? n : BUF - in_got);
        in_got += n;
        rx_pos += n;
        if (in_got == in_len) {
            hdr_got = 0;
            if (in_len > BUF) { say("oversized frame dropped\n"); continue; }
            return 1;
        }
    }
    return 0;
}

#ifdef HOSTILE_FLASH_CMD
static uint64_t rnd(uint64_t *x) { /* xorshift64*: reproducible from the test's seed */
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545f4914f6cdd1dull;
}
#endif
static long probe(uintptr_t addr, long *faulted) { return user_probe(addr, faulted); }

static uint32_t run_period;
static uint64_t next_run;
static long last_run[ENC_SLOTS]; /* what each slot's last step answered (reported when it changes) */
static int interrupted[ENC_SLOTS]; /* its step was preempted: resume it */
static int told[ENC_SLOTS];

/* One slot's turn: a step, or one more time slice of a preempted one. */
static long step(int i) {
    long r = ecall(interrupted[i] ? H_RESUME : H_RUN, i, 0, 0);
    if (!interrupted[i] && r == -KS_ERR_NOT_RUNNABLE) { /* preempted without our knowing (F_ABUSE_REQ's check)? */
        long again = ecall(H_RESUME, i, 0, 0);
        if (again != -KS_ERR_NOT_RESUMABLE) r = again;
    }
    interrupted[i] = r == -KS_ERR_INTERRUPTED || r == -KS_ERR_EDGE_CALL_HOST;
    if (interrupted[i] && !(told[i] & (1 << (r == -KS_ERR_EDGE_CALL_HOST)))) {
        told[i] |= 1 << (r == -KS_ERR_EDGE_CALL_HOST);
        say("slot ");
        putd(i);
        puts_(r == -KS_ERR_INTERRUPTED ? ": the monitor's timer preempted a step; resuming it\n"
                                       : ": the enclave stopped for the host (an edge call); resuming it\n");
    }
    return r;
}
static void report(int i, long r) {
    if (r == -KS_ERR_INTERRUPTED || r == -KS_ERR_EDGE_CALL_HOST || r == last_run[i]) return;
    if (r) {
        say("the monitor refuses to run the enclave in slot ");
        putd(i);
        puts_(": ");
        putd(r);
        puts_(r == -409 ? " (migrated away: this copy never runs again)\n"
              : r == -MON_ERR_NO_ENCLAVE ? " (no enclave here)\n"
              : r == -MON_ERR_NOT_RUNNABLE ? " (not runnable now)\n" : "\n");
    }
    send_result(F_RUN, r);
    last_run[i] = r;
}
static void quiet(void) { /* empty slots say nothing until they have held an enclave */
    for (int i = 0; i < ENC_SLOTS; i++) last_run[i] = -MON_ERR_NO_ENCLAVE;
}

static void dispatch(void) {
    long r;
    switch (in_type) {
    case F_SDS:
        r = ecall(H_SDS, (long)in, in_len, 0);
        send_result(F_SDS, r);
        break;
    case F_PEER:
        r = ecall(H_PEER, (long)in, in_len, 0);
        if (r) send_result(F_PEER, r);
        break;
    case F_CLOSED:
        if (in_len == 16) ecall(H_CLOSED, (long)in, 0, 0);
        break;
    case F_LAUNCH:
        if (in_len < 20) break;
        r = ecall(H_LAUNCH, (long)(in + 4), in_len - 4, (long)((uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24));
        if (r >= 0) {
            say("enclave launched in slot ");
            putd(r);
            puts_("\n");
        } else {
            say("launch refused\n");
        }
        send_result(F_LAUNCH, r >= 0 ? 0 : r);
        break;
    case F_RUN:
        if (in_len == 4) run_period = (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
        quiet();
        break;
    case F_STATUS_REQ:
        if (in_len != 16) break;
        copy(scratch, in, 16);
        ecall(H_STATUS, (long)scratch, 0, 0);
        copy(scratch + 24, in, 16);
        send(F_STATUS, scratch, 40);
        break;
    case F_PROBE_REQ: {
        long faulted;
#ifdef HOSTILE_FLASH_CMD
        say("hostile: putting pflash into a command mode before every call (every CFI command in turn)\n");
        user_fp_set(0x46502d4d41524b52ull); /* "FP-MARKR": an enclave must never read it */
        hostile_armed = 1;
        HOSTILE_CMD();
#endif
        say("trying to read the enclave's memory at " ENC_STATE_TEXT "...\n");
        probe(ENC_STATE, &faulted);
        say(faulted ? "...denied by " ISOLATION "\n" : "...READ SUCCEEDED\n");
        uint8_t b[4] = {(uint8_t)(faulted ? 0xff : 0), (uint8_t)(faulted ? 0xff : 0), (uint8_t)(faulted ? 0xff : 0),
                        (uint8_t)(faulted ? 0xff : 0)};
        send(F_PROBE, b, 4);
        break;
    }
#ifdef HOSTILE_FLASH_CMD
    case F_ABUSE_REQ: { /* bad arguments: too long for the monitor's copy, or outside the host region */
        static const long calls[][3] = {
            {H_SDS, 0, SDS_MSG_MAX + 1},                 /* oversize, inside the host region */
            {H_PEER, 0, 48 + PEER_BYTES_MAX + 1},
            {H_LAUNCH, 0, 16 + POLICY_MAX + 1},
            {H_SDS, (long)MON_BASE, 64},                  /* the monitor's memory */
            {H_SDS, (long)ENC_STATE, 64},                 /* the enclave's memory */
            {H_PEER, (long)(HOST_BASE + HOST_SIZE - 32), 64}, /* across the end of the host region */
            {H_SDS, 0, -1},                               /* a length that wraps */
            {H_POLL_OUT, (long)(HOST_BASE + HOST_SIZE - 16), 1 << 20},
            {H_INFO, (long)MON_BASE, 4096},               /* output into the monitor's memory */
            {H_CLOSED, (long)(HOST_BASE + HOST_SIZE - 8), 0},
            {H_STATUS, (long)ENC_BASE, 0},
            {H_PEER, 0, 10},                              /* shorter than from[32] conn[16] */
        };
        const size_t n = sizeof calls / sizeof calls[0];
        uint8_t b[4 * (n + 3)];
        for (size_t i = 0; i < n + 2; i++) {
            long r = i < n ? ecall(calls[i][0], calls[i][1] ? calls[i][1] : (long)in, calls[i][2], 4096)
                   : i == n ? ecall(H_DESTROY, 0, 0, 0) /* the enclave in slot 0: only the SDS ends it */
                            : sbi_call(0x0badca11, 0, 0, 0, 0).error; /* an extension the monitor has not */
            for (int k = 0; k < 4; k++) b[4 * i + k] = (uint8_t)((uint32_t)r >> (8 * k));
        }
        /* Last: the registers after a call into librewire (H_INFO) and after an enclave step
         * (H_RUN: the enclave's registers, and the monitor's for its E_* calls, in between):
         * how many came back changed (user_arch.h), 0 expected. */
        long changed = user_call_register_check(SBI_EXT_KEYSTONE, H_INFO, (long)out, BUF, 0) +
                       user_call_register_check(SBI_EXT_KEYSTONE, H_RUN, 0, 0, 0);
        for (int k = 0; k < 4; k++) b[4 * (n + 2) + k] = (uint8_t)((uint32_t)changed >> (8 * k));
        send(F_ABUSE, b, sizeof b);
        break;
    }
    case F_FUZZ_REQ: { /* random calls: random extension, function and arguments from a pool of edges */
        if (in_len != 8) break;
        uint64_t x = 0x9e3779b97f4a7c15ull ^ ((uint64_t)in[0] | (uint64_t)in[1] << 8 | (uint64_t)in[2] << 16 |
                                             (uint64_t)in[3] << 24);
        uint32_t calls = (uint32_t)in[4] | (uint32_t)in[5] << 8 | (uint32_t)in[6] << 16 | (uint32_t)in[7] << 24;
        static const long fids[] = {H_LAUNCH, H_DESTROY, H_RUN, H_RESUME, H_INFO, H_SDS, H_PEER, H_CLOSED,
                                    H_TICK, H_POLL_OUT, H_POLL_EVENT, H_TIME_MS, H_STATUS, E_RANDOM, E_EXIT,
                                    E_PRINT, E_HOSTNAME, E_SEAL, E_UNSEAL, 0, 1, 2000, 2004, 2999, 3000};
        const uintptr_t buf = (uintptr_t)out; /* 2 MiB of the host's own: the only host memory written */
        static uintptr_t ptrs[] = {0, 0, 0, 0, HOST_BASE + HOST_SIZE - 24, /* the first four: in buf, below */
                                  HOST_BASE + HOST_SIZE - 1, HOST_BASE + HOST_SIZE, HOST_BASE - 8, MON_BASE,
                                  MON_BASE + 0x100000, ENC_BASE, ENC_STATE, ENC_SLOT(1) + ENC_STATE_OFF,
                                  ENC_BASE + ENC_SIZE - 8, FLASH_HOST, FLASH_MON, UART_BASE, 0, ~0ul,
                                  0x8000000000000000ul};
        static const long lens[] = {0, 1, 15, 16, 24, 47, 48, 49, 95, 96, 4095, 4096, SDS_MSG_MAX, SDS_MSG_MAX + 1,
                             48 + PEER_BYTES_MAX, 48 + PEER_BYTES_MAX + 1, 16 + POLICY_MAX + 1, 1 << 20, -1, -16};
        ptrs[0] = buf;
        ptrs[1] = buf + 1;
        ptrs[2] = buf + 4093;
        ptrs[3] = buf + 0x1fff00;
        uint32_t n[7] = {0};
        for (uint32_t k = 0; k < calls; k++) {
            uint64_t r = rnd(&x);
            long ext = r % 20 < 16 ? SBI_EXT_KEYSTONE : r % 20 < 18 ? SBI_EXT_BASE : r % 20 == 18 ? SBI_EXT_SRST
                                                                                                  : (long)rnd(&x);
            long fid = rnd(&x) % 10 ? fids[rnd(&x) % (sizeof fids / sizeof fids[0])] : (long)rnd(&x);
            if (ext == SBI_EXT_SRST && fid == SRST_SYSTEM_RESET) fid = 1; /* not the one call that powers off */
            if (ext == SBI_EXT_BASE) fid = (long)(rnd(&x) % 8);
            long a[3];
            for (int j = 0; j < 3; j++) { /* mostly a pointer then a length, as the calls take them */
                uint64_t c = rnd(&x) % 8;
                if (c < 5) c = j == 0 ? 0 : 1;
                else c -= 4;
                a[j] = c == 0 ? (long)ptrs[rnd(&x) % (sizeof ptrs / sizeof ptrs[0])]
                     : c == 1 ? lens[rnd(&x) % (sizeof lens / sizeof lens[0])]
                     : c == 2 ? (long)(rnd(&x) % ENC_SLOTS) : (long)rnd(&x);
            }
            if (rnd(&x) % 2) /* random bytes where the pointers land in the host's own buffer */
                for (int j = 0; j < 64; j++) out[rnd(&x) % BUF] = (uint8_t)rnd(&x);
            struct sbiret res = sbi_call(ext, fid, a[0], a[1], a[2]);
            n[0]++;
            long e = res.error;
            n[e == 0 ? 1 : e == SBI_ERR_NOT_SUPPORTED ? 2 : e == MON_ERR_BAD_POINTER ? 3
                     : e == MON_ERR_TOO_LARGE ? 4 : e == KS_ERR_INVALID_ID ? 5 : 6]++;
            if ((fid == H_RUN || fid == H_RESUME) && ext == SBI_EXT_KEYSTONE && a[0] >= 0 && a[0] < ENC_SLOTS)
                interrupted[a[0]] = e == KS_ERR_INTERRUPTED; /* keep the scheduler's view true */
        }
        uint8_t b[28];
        for (int j = 0; j < 7; j++)
            for (int k = 0; k < 4; k++) b[4 * j + k] = (uint8_t)(n[j] >> (8 * k));
        send(F_FUZZ, b, sizeof b);
        break;
    }
    case F_SCAN_REQ: { /* the marker arrives masked, so that only a leak matches it unmasked */
        uint32_t hits[3] = {0};
        static const uintptr_t areas[2][2] = {{HOST_BASE, HOST_SIZE}, {FLASH_HOST, FLASH_HOST_SIZE}};
        if (in_len == 0 || in_len > 64) break;
        for (int a = 0; a < 2; a++) {
            const volatile uint8_t *p = (const volatile uint8_t *)areas[a][0];
            for (uintptr_t i = 0; i + in_len <= areas[a][1]; i++) {
                uint32_t k = 0;
                for (; k < in_len; k++) {
                    uint32_t v = p[i + k], want = in[k];
                    if ((v ^ 0xffu) != want) break;
                }
                if (k == in_len) hits[a]++;
            }
        }
        long faulted;
        probe(MON_BASE, &faulted);
        hits[2] += !faulted;
        for (int i = 0; i < ENC_SLOTS; i++) {
            probe(ENC_SLOT(i) + ENC_STATE_OFF, &faulted);
            hits[2] += !faulted;
        }
        uint8_t b[12];
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) b[4 * j + k] = (uint8_t)(hits[j] >> (8 * k));
        send(F_SCAN, b, sizeof b);
        break;
    }
#endif
    case F_HELLO_REQ: {
        long n = ecall(H_INFO, (long)out, BUF, 0);
        if (n > 0) send(F_HELLO, out, (size_t)n);
        break;
    }
    case F_OFF:
        poweroff(0);
        break;
    default:
        break;
    }
}

static void flush(void) {
    long n;
    while (ecall(H_POLL_EVENT, (long)scratch, 0, 0) == 0) send(F_EVENT, scratch, 24);
    while ((n = ecall(H_POLL_OUT, (long)out, BUF, 0)) > 0) {
        if (out[0] == 1) send(F_TO_SDS, out + 49, (size_t)n - 49);
        else send(F_TO_PEER, out + 1, (size_t)n - 1);
    }
}

void host_main(void) {
    if (virtio_init() != 0) {
        say("no virtio console\n");
        poweroff(1);
    }
    long n = ecall(H_INFO, (long)out, BUF, 0);
    if (n < 0) poweroff(1);
    send(F_HELLO, out, (size_t)n);
    say("up; relaying between the virtio console and the monitor\n");
    uint64_t last_tick = 0;
    quiet();
    for (;;) {
        /* Preempted steps first, a time slice each, before any frame: an SDS
         * order then finds a short step over (a step is what migrates). */
        for (int i = 0; i < ENC_SLOTS; i++)
            if (interrupted[i]) report(i, step(i));
        while (rx_frame()) {
            dispatch();
            flush();
        }
        uint64_t now = (uint64_t)ecall(H_TIME_MS, 0, 0, 0);
        if (now - last_tick >= 20) {
            ecall(H_TICK, 0, 0, 0);
            last_tick = now;
            flush();
        }
        if (run_period && now >= next_run) {
            next_run = now + run_period;
            for (int i = 0; i < ENC_SLOTS; i++)
                if (!interrupted[i]) report(i, step(i));
#ifdef HOSTILE_FLASH_CMD
            /* Canary, before any other ecall: only M-mode can read the monitor's memory. */
            if (hostile_armed && hostile_armed < 4) {
                long faulted;
                hostile_armed++;
                probe(MON_BASE, &faulted);
                say(faulted ? "hostile: the monitor's memory is out of reach (" HOST_MODE ")\n"
                            : "hostile: READ THE MONITOR'S MEMORY: the host runs in M-mode\n");
            }
#endif
            flush();
        }
    }
}

__attribute__((section(".text.host_entry"), used, noreturn)) void host_entry(void) {
    user_init(); /* Arm: the host's own exception vectors */
    zero(&rxq, sizeof rxq);
    zero(&txq, sizeof txq);
    host_main();
    for (;;) {}
}
