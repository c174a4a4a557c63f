/*
 * Peak stack of each librewire entry point, with no OS (`make bench-stack-c`):
 * linked into examples/c/migrate.c with `-Wl,--wrap=<entry point>` for each
 * entry point below, so that every call the example makes (an SDS and two
 * monitors: order, TLS, stream, commit, release, activation, sealing) goes
 * through a wrapper that paints the stack below it, calls librewire and finds
 * the deepest word overwritten. The figure is librewire's own use (from the
 * wrapper's frame down, callbacks included: soft_host.h's are small). At exit
 * it prints one line per entry point: `stack <name> <peak bytes> <calls>`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "rewire.h"

#define PAINT_BYTES (192u * 1024u) /* more than any entry point needs */
#define PATTERN 0x5a17c0de5a17c0deull

struct peak {
    const char *name;
    size_t bytes, calls;
};
static struct peak peaks[32];
static unsigned npeaks;

static __attribute__((noinline)) void paint(uint64_t *lo, uint64_t *hi) {
    for (volatile uint64_t *p = lo; p < hi; p++) *p = PATTERN;
}

static __attribute__((noinline)) uint64_t *deepest(uint64_t *lo, uint64_t *hi) {
    uint64_t *p = lo;
    while (p < hi && *p == PATTERN) p++;
    return p;
}

static void note(const char *name, size_t bytes) {
    unsigned i = 0;
    while (i < npeaks && peaks[i].name != name) i++;
    if (i == npeaks) {
        if (npeaks == sizeof peaks / sizeof peaks[0]) return;
        peaks[npeaks++].name = name;
    }
    if (bytes > peaks[i].bytes) peaks[i].bytes = bytes;
    peaks[i].calls++;
}

static void report(void) {
    for (unsigned i = 0; i < npeaks; i++) printf("stack %s %zu %zu\n", peaks[i].name, peaks[i].bytes, peaks[i].calls);
}

/* The wrapper's own frame is a few words; below `top` (512 bytes under the
 * wrapper's frame address) everything is librewire's. paint() and deepest() are
 * leaf functions that keep to registers, so they do not disturb the region. */
#define PROBE(ret, name, params, args)                                                          \
    ret __real_##name params;                                                                    \
    ret __wrap_##name params {                                                                   \
        uint64_t *top = (uint64_t *)__builtin_frame_address(0) - 64;                             \
        uint64_t *lo = top - PAINT_BYTES / sizeof(uint64_t);                                     \
        paint(lo, top);                                                                          \
        ret r = __real_##name args;                                                              \
        note(#name, (size_t)((char *)top - (char *)deepest(lo, top)));                           \
        return r;                                                                                \
    }

PROBE(rewire_result, rewire_sds_new, (const uint8_t *seed, rewire_sds **out), (seed, out))
PROBE(rewire_result, rewire_sds_endorse_host,
      (rewire_sds *s, const uint8_t *cert, size_t cert_len, const uint8_t *sm, size_t n, uint64_t platform,
       uint64_t atl, uint64_t nb, uint64_t na, uint8_t *buf, size_t cap, size_t *len),
      (s, cert, cert_len, sm, n, platform, atl, nb, na, buf, cap, len))
PROBE(rewire_result, rewire_sds_register_enclave,
      (rewire_sds *s, const uint8_t *id, const uint8_t *m, uint64_t platform, uint64_t atl, const uint8_t *host,
       uint8_t *buf, size_t cap, size_t *len),
      (s, id, m, platform, atl, host, buf, cap, len))
PROBE(rewire_result, rewire_sds_order,
      (rewire_sds *s, const uint8_t *id, const uint8_t *target, const uint8_t *rid, uint64_t deadline, uint8_t *buf,
       size_t cap, size_t *len),
      (s, id, target, rid, deadline, buf, cap, len))
PROBE(rewire_result, rewire_sds_handle, (rewire_sds *s, const uint8_t *msg, size_t len, uint32_t *ev), (s, msg, len, ev))
PROBE(rewire_result, rewire_monitor_new,
      (const uint8_t *secret, const uint8_t *sm, const uint8_t *sds, uint64_t t, const rewire_platform_callbacks *p,
       const rewire_enclave_callbacks *e, rewire_monitor **out),
      (secret, sm, sds, t, p, e, out))
PROBE(rewire_result, rewire_monitor_certificate, (const rewire_monitor *m, uint8_t *buf, size_t cap, size_t *len),
      (m, buf, cap, len))
PROBE(rewire_result, rewire_monitor_install, (rewire_monitor *m, const uint8_t *p, size_t n), (m, p, n))
PROBE(rewire_result, rewire_monitor_handle_sds, (rewire_monitor *m, const uint8_t *msg, size_t n), (m, msg, n))
PROBE(rewire_result, rewire_monitor_handle_peer,
      (rewire_monitor *m, const uint8_t *from, const uint8_t *conn, const uint8_t *b, size_t n), (m, from, conn, b, n))
PROBE(rewire_result, rewire_monitor_poll_output,
      (rewire_monitor *m, uint32_t *dest, uint8_t *host, uint8_t *conn, uint8_t *buf, size_t cap, size_t *len),
      (m, dest, host, conn, buf, cap, len))
PROBE(rewire_result, rewire_monitor_poll_event, (rewire_monitor *m, uint32_t *ev, uint8_t *id, uint32_t *why),
      (m, ev, id, why))
PROBE(rewire_result, rewire_monitor_seal,
      (rewire_monitor *m, const uint8_t *id, const uint8_t *d, size_t n, uint8_t *buf, size_t cap, size_t *len),
      (m, id, d, n, buf, cap, len))
PROBE(rewire_result, rewire_monitor_unseal,
      (const rewire_monitor *m, const uint8_t *id, const uint8_t *d, size_t n, uint8_t *buf, size_t cap, size_t *len),
      (m, id, d, n, buf, cap, len))
PROBE(rewire_result, rewire_monitor_status, (const rewire_monitor *m, const uint8_t *id, uint32_t *st, uint64_t *ep),
      (m, id, st, ep))

/* migrate.c's main, then the report. */
int __real_main(void);
int __wrap_main(void) {
    int rc = __real_main();
    report();
    return rc;
}
