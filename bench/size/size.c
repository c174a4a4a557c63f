/*
 * The smallest bare-metal program that uses everything a security monitor
 * needs from librewire (source and target roles, sealing, recovery): used
 * only to measure linked code size (make bench, P5). It is linked, not run.
 */
#include <stddef.h>
#include <stdint.h>
#include "rewire.h"

static uint8_t heap[256 * 1024];
static uint8_t buf[20000];
volatile uint32_t sink;

static uint32_t rnd(void *u, uint8_t *b, size_t n) { (void)u; for (size_t i = 0; i < n; i++) b[i] = (uint8_t)i; return 0; }
static uint64_t mono(void *u) { (void)u; return 0; }
static uint32_t wall(void *u, uint64_t *t) { (void)u; *t = 0; return 0; }
static uint32_t jr(void *u, uint8_t *b, size_t c, size_t *n) { (void)u; (void)b; (void)c; *n = 0; return 0; }
static uint32_t jw(void *u, const uint8_t *b, size_t n) { (void)u; (void)b; (void)n; return 0; }
static uint32_t cr(void *u, uint64_t *v) { (void)u; *v = 0; return 0; }
static uint32_t op(void *u, const uint8_t *id) { (void)u; (void)id; return 0; }
static uint32_t elen(void *u, const uint8_t *id, uint32_t s, uint64_t *n) { (void)u; (void)id; (void)s; *n = 0; return 0; }
static uint32_t exp_(void *u, const uint8_t *id, uint32_t s, uint64_t o, uint8_t *b, size_t l, size_t *n) { (void)u; (void)id; (void)s; (void)o; (void)b; (void)l; *n = 0; return 0; }
static uint32_t imp(void *u, const uint8_t *id, uint32_t s, uint64_t o, const uint8_t *d, size_t l) { (void)u; (void)id; (void)s; (void)o; (void)d; (void)l; return 0; }
static uint32_t meas(void *u, const uint8_t *id, uint8_t *m) { (void)u; (void)id; (void)m; return 0; }
static uint32_t att(void *u, const uint8_t *id, const uint8_t *r, uint8_t *b, size_t c, size_t *n) { (void)u; (void)id; (void)r; (void)b; (void)c; *n = 0; return 0; }
static void __attribute__((noreturn)) die(void) { for (;;) {} }

void _start(void) {
    uint8_t key[32] = {1}, id[16] = {2};
    rewire_platform_callbacks p = {sizeof p, 0, rnd, mono, wall, jr, jw, cr, cr};
    rewire_enclave_callbacks e = {sizeof e, 0, op, op, op, elen, exp_, imp, meas, att};
    rewire_monitor *m = 0;
    uint32_t d, ev, why;
    uint8_t host[32], conn[16];
    size_t n;
    uint64_t ep;
    sink = rewire_init(heap, sizeof heap, rnd, 0, die);
    sink = rewire_monitor_new(key, key, key, 0, &p, &e, &m);
    sink = rewire_monitor_install(m, buf, 100);
    sink = rewire_monitor_handle_sds(m, buf, 100);
    sink = rewire_monitor_handle_peer(m, key, id, buf, 100);
    sink = rewire_monitor_peer_closed(m, id);
    sink = rewire_monitor_tick(m);
    sink = rewire_monitor_poll_output(m, &d, host, conn, buf, sizeof buf, &n);
    sink = rewire_monitor_poll_event(m, &ev, id, &why);
    sink = rewire_monitor_status(m, id, &d, &ep);
    sink = rewire_monitor_may_run(m, id);
    sink = rewire_monitor_seal(m, id, buf, 10, buf, sizeof buf, &n);
    sink = rewire_monitor_unseal(m, id, buf, 10, buf, sizeof buf, &n);
    sink = rewire_monitor_certificate(m, buf, sizeof buf, &n);
    sink = (uint32_t)(uintptr_t)rewire_result_text(sink);
    rewire_monitor_free(m);
    die();
}
