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
 * -DHOSTILE_FLASH_CMD; tests/system): once armed by F_PROBE_REQ, it writes the
 * CFI "read status register" command to its own half of pflash before every
 * ecall. QEMU's pflash1 is one device with one command state, so the monitor
 * then reads status words, not data, from the half only it may reach. */
static int hostile_armed;
#define HOSTILE_CMD() do { if (hostile_armed) *(volatile uint32_t *)FLASH_HOST = 0x00700070; } while (0)
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

static void copy(void *d, const void *s, size_t n) {
    uint8_t *a = d;
    const uint8_t *b = s;
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
static int rx_byte(uint8_t *out) {
    if (rx_have < 0) {
        if (*(volatile uint16_t *)&rxq.u.idx == rxq.seen) return 0;
        fence();
        uint32_t id = rxq.u.ring[rxq.seen % VQN].id;
        rx_len = rxq.u.ring[rxq.seen % VQN].len;
        rxq.seen++;
        rx_have = (int)id;
        rx_pos = 0;
    }
    if (rx_pos >= rx_len) { /* give the buffer back */
        rxq.a.ring[rxq.a.idx % VQN] = (uint16_t)rx_have;
        fence();
        rxq.a.idx++;
        fence();
        wr(0x50, 0);
        rx_have = -1;
        return rx_byte(out);
    }
    *out = rxbuf[rx_have][rx_pos++];
    return 1;
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

/* One whole frame into `in`, or 0 if none is complete yet. Oversized frames are skipped. */
static int rx_frame(void) {
    uint8_t c;
    while (rx_byte(&c)) {
        if (hdr_got < 7) {
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
        if (in_got < BUF) in[in_got] = c;
        in_got++;
        if (in_got == in_len) {
            hdr_got = 0;
            if (in_len > BUF) { say("oversized frame dropped\n"); continue; }
            return 1;
        }
    }
    return 0;
}

static long probe(uintptr_t addr, long *faulted) { return user_probe(addr, faulted); }

static uint32_t run_period;
static uint64_t next_run;
static long last_run[ENC_SLOTS]; /* what each slot's last step answered (reported when it changes) */
static int interrupted[ENC_SLOTS]; /* its step was preempted: resume it */

/* One slot's turn: a step, or one more time slice of a preempted one. */
static long step(int i) {
    long r = ecall(interrupted[i] ? H_RESUME : H_RUN, i, 0, 0);
    if (!interrupted[i] && r == -KS_ERR_NOT_RUNNABLE) { /* preempted without our knowing (F_ABUSE_REQ's check)? */
        long again = ecall(H_RESUME, i, 0, 0);
        if (again != -KS_ERR_NOT_RESUMABLE) r = again;
    }
    interrupted[i] = r == -KS_ERR_INTERRUPTED;
    return r;
}
static void report(int i, long r) {
    if (r == -KS_ERR_INTERRUPTED || r == last_run[i]) return;
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
        say("hostile: putting pflash into read-status mode before every ecall\n");
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
        uint8_t b[4 * (n + 1)];
        for (size_t i = 0; i < n; i++) {
            long r = ecall(calls[i][0], calls[i][1] ? calls[i][1] : (long)in, calls[i][2], 4096);
            for (int k = 0; k < 4; k++) b[4 * i + k] = (uint8_t)((uint32_t)r >> (8 * k));
        }
        /* Last: the registers after a call into librewire (H_INFO) and after an enclave step
         * (H_RUN: the enclave's registers, and the monitor's for its E_* calls, in between):
         * how many came back changed (user_arch.h), 0 expected. */
        long changed = user_call_register_check(SBI_EXT_KEYSTONE, H_INFO, (long)out, BUF, 0) +
                       user_call_register_check(SBI_EXT_KEYSTONE, H_RUN, 0, 0, 0);
        for (int k = 0; k < 4; k++) b[4 * n + k] = (uint8_t)((uint32_t)changed >> (8 * k));
        send(F_ABUSE, b, sizeof b);
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
