/*
 * librewire from C: an SDS and two security monitors (hosts A and B, each
 * with its own keys and callback set) in one process. The enclave is
 * migrated from A to B; afterwards A refuses to run it again.
 *
 * Uses only rewire.h and libc. Build: make -C examples/c
 */
#include "soft_host.h"

typedef struct {
    rewire_sds *sds;
    rewire_monitor *mon[2];
    uint8_t id[2][32];
    uint8_t *buf;
    size_t cap;
    int verbose;
} world;

static const char *event_name(uint32_t e) {
    static const char *names[] = {"?", "request validated", "frozen", "TLS up", "OFFER sent", "OFFER accepted",
                                  "target verified", "stream done", "PENDING, READY sent", "committed, RELEASE sent",
                                  "activated", "aborted", "dropped"};
    return e <= 12 ? names[e] : "?";
}

static void events(world *w, int i) {
    uint32_t ev, why;
    uint8_t rid[16];
    while (rewire_monitor_poll_event(w->mon[i], &ev, rid, &why) == REWIRE_OK)
        if (w->verbose) printf("  host %c: %s%s%s\n", 'A' + i, event_name(ev), why ? ": " : "", why ? rewire_result_text(why) : "");
}

/* Carry every queued message to its destination until nothing moves. */
static void relay(world *w) {
    for (int moved = 1; moved;) {
        moved = 0;
        for (int i = 0; i < 2; i++) {
            for (;;) {
                uint32_t dest;
                uint8_t host[32], conn[16];
                size_t len = 0;
                rewire_result rc = rewire_monitor_poll_output(w->mon[i], &dest, host, conn, w->buf, w->cap, &len);
                if (rc == REWIRE_ERR_EMPTY) break;
                if (rc == REWIRE_ERR_BUFFER_TOO_SMALL) {
                    uint8_t *b = realloc(w->buf, len);
                    if (!b) exit(1);
                    w->buf = b;
                    w->cap = len;
                    continue;
                }
                CHECK(rc);
                moved = 1;
                events(w, i);
                if (dest == REWIRE_DEST_SDS) {
                    uint32_t ledger = 0;
                    rc = rewire_sds_handle(w->sds, w->buf, len, &ledger);
                    if (w->verbose)
                        printf("  SDS: %s\n", rc == REWIRE_OK ? (ledger == REWIRE_LEDGER_RELEASED ? "ledger: RELEASE" :
                                                                ledger == REWIRE_LEDGER_ACTIVATED ? "ledger: ACTIVE" :
                                                                ledger == REWIRE_LEDGER_ABORTED   ? "ledger: ABORT" : "ledger: DROPPED")
                                                             : rewire_result_text(rc));
                } else {
                    for (int j = 0; j < 2; j++) {
                        if (memcmp(w->id[j], host, 32) == 0) {
                            rc = rewire_monitor_handle_peer(w->mon[j], w->id[i], conn, w->buf, len);
                            if (rc != REWIRE_OK && w->verbose) printf("  host %c: %s\n", 'A' + j, rewire_result_text(rc));
                            events(w, j);
                        }
                    }
                }
            }
        }
    }
}

/* What code the hosts run, as the SDS endorses them. A bare-metal monitor
 * knows its own platform and refuses an enclave built for another; a hosted
 * build (this example on Linux) does not check, and calls itself riscv64. */
#if defined(__aarch64__)
#define PLATFORM REWIRE_PLATFORM_AARCH64
#else
#define PLATFORM REWIRE_PLATFORM_RISCV64
#endif

static const uint8_t SM_MEASUREMENT[32] = {0x5a, 0x5a, 0x5a, 0x5a};
static const uint8_t ENCLAVE[16] = "c-demo-enclave-1";

#ifdef REWIRE_BAREMETAL
/* Bare metal (`make test-aarch64` runs this under QEMU, no OS): librewire's
 * heap and the randomness its TLS draws (SIMULATED here, as in soft_host.h). */
static uint8_t heap[8u << 20] __attribute__((aligned(16)));
static soft_host tls_rng = {.name = "tls", .rng_state = 0x2468aceu};
static void on_panic(void) __attribute__((noreturn));
static void on_panic(void) {
    fprintf(stderr, "librewire panicked\n");
    exit(70);
}
#endif

int main(void) {
#ifdef REWIRE_BAREMETAL
    CHECK(rewire_init(heap, sizeof heap, cb_random, &tls_rng, on_panic));
#endif
    printf("librewire %s (header %s): C migration example\n", rewire_version(), REWIRE_VERSION);
    soft_host hosts[2] = {{.name = "A", .rng_state = 0x1234567u}, {.name = "B", .rng_state = 0x7654321u}};
    world w = {.cap = 64 * 1024, .verbose = 1};
    w.buf = malloc(w.cap);
    if (!w.buf) return 1;

    uint8_t sds_seed[32] = {0x5d, 1, 2, 3};
    CHECK(rewire_sds_new(sds_seed, &w.sds));
    uint8_t sds_key[32];
    CHECK(rewire_sds_public_key(w.sds, sds_key));

    uint64_t now = (uint64_t)time(NULL);
    for (int i = 0; i < 2; i++) {
        uint8_t secret[32] = {0xde, (uint8_t)i, 0x77};
        rewire_platform_callbacks p = soft_platform(&hosts[i]);
        rewire_enclave_callbacks f = soft_framework(&hosts[i]);
        CHECK(rewire_monitor_new(secret, SM_MEASUREMENT, sds_key, 30000, &p, &f, &w.mon[i]));
        CHECK(rewire_monitor_host_id(w.mon[i], w.id[i]));
        uint8_t cert[REWIRE_MAX_SIGNED], endorsement[REWIRE_MAX_SIGNED];
        size_t cert_len, e_len;
        CHECK(rewire_monitor_certificate(w.mon[i], cert, sizeof cert, &cert_len));
        /* Provenance of the device key: here the operator pins it by hand (a
         * real fleet registers its manufacturer's root with
         * rewire_sds_add_device_root and feeds each device certificate to
         * rewire_sds_certify_device, out of band from the host). */
        uint8_t device[32];
        CHECK(rewire_monitor_host_id(w.mon[i], device));
        CHECK(rewire_sds_pin_device(w.sds, device));
        CHECK(rewire_sds_endorse_host(w.sds, cert, cert_len, SM_MEASUREMENT, 1, PLATFORM, 2, now - 60, now + 86400,
                                      endorsement, sizeof endorsement, &e_len));
        printf("host %c started and endorsed at ATL 2\n", 'A' + i);
    }

    /* An enclave on A: code, 4 KiB of state, and sealed data. */
    uint8_t code[2048], state[4096];
    for (size_t i = 0; i < sizeof code; i++) code[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof state; i++) state[i] = (uint8_t)(i * 13 + 5);
    uint8_t measurement[32], policy[1024];
    size_t policy_len;
    soft_measure_bytes(code, sizeof code, measurement);
    CHECK(rewire_sds_register_enclave(w.sds, ENCLAVE, measurement, PLATFORM, 1, w.id[0], policy, sizeof policy, &policy_len));
    if (soft_load(&hosts[0], ENCLAVE, code, sizeof code, state, sizeof state)) return 1;
    CHECK(rewire_monitor_install(w.mon[0], policy, policy_len));
    const char secret_text[] = "the enclave's sealed secret";
    uint8_t blob[1024];
    size_t blob_len;
    CHECK(rewire_monitor_seal(w.mon[0], ENCLAVE, (const uint8_t *)secret_text, sizeof secret_text, blob, sizeof blob, &blob_len));
    soft_enclave *src = soft_find(&hosts[0], ENCLAVE);
    src->section[REWIRE_SECTION_SEALED] = malloc(blob_len);
    memcpy(src->section[REWIRE_SECTION_SEALED], blob, blob_len);
    src->len[REWIRE_SECTION_SEALED] = blob_len;
    printf("enclave installed on A (running: %d)\n\n== migrate A -> B ==\n", src->running);

    uint8_t rid[16] = "request-0000001", order[4096];
    size_t order_len;
    CHECK(rewire_sds_order(w.sds, ENCLAVE, w.id[1], rid, now + 3600, order, sizeof order, &order_len));
    CHECK(rewire_monitor_handle_sds(w.mon[0], order, order_len));
    events(&w, 0);
    relay(&w);

    /* The enclave runs on B, byte-exact; its sealed data opens on B only. */
    uint32_t st;
    uint64_t epoch;
    CHECK(rewire_monitor_status(w.mon[1], ENCLAVE, &st, &epoch));
    soft_enclave *dst = soft_find(&hosts[1], ENCLAVE);
    int exact = dst && dst->running && dst->len[1] == sizeof state && memcmp(dst->section[1], state, sizeof state) == 0 &&
                dst->len[0] == sizeof code && memcmp(dst->section[0], code, sizeof code) == 0;
    uint8_t plain[256];
    size_t plain_len;
    CHECK(rewire_monitor_unseal(w.mon[1], ENCLAVE, dst->section[2], dst->len[2], plain, sizeof plain, &plain_len));
    rewire_result on_a = rewire_monitor_unseal(w.mon[0], ENCLAVE, dst->section[2], dst->len[2], plain, sizeof plain, &plain_len);
    printf("\non B: state %s, epoch %llu, byte-exact: %s; sealed data opens on B, on A: %s\n",
           st == REWIRE_STATE_RUNNING ? "RUNNING" : "?", (unsigned long long)epoch, exact ? "yes" : "NO",
           rewire_result_text(on_a));

    /* The old copy on A. */
    CHECK(rewire_monitor_status(w.mon[0], ENCLAVE, &st, &epoch));
    rewire_result replay = rewire_monitor_handle_sds(w.mon[0], order, order_len);
    printf("on A: state %s, may run: %s, image present: %s; replayed request: %s\n",
           st == REWIRE_STATE_MIGRATED ? "MIGRATED" : "?", rewire_monitor_may_run(w.mon[0], ENCLAVE) ? "yes" : "no",
           soft_find(&hosts[0], ENCLAVE) ? "yes" : "no", rewire_result_text(replay));
    uint8_t where[32];
    CHECK(rewire_sds_location(w.sds, ENCLAVE, where, &epoch));
    printf("SDS ledger: enclave on host %c at epoch %llu\n", memcmp(where, w.id[1], 32) == 0 ? 'B' : '?',
           (unsigned long long)epoch);

    int ok = exact && st == REWIRE_STATE_MIGRATED && !rewire_monitor_may_run(w.mon[0], ENCLAVE) &&
             replay == REWIRE_ERR_REPLAY && on_a == REWIRE_ERR_UNSEAL && rewire_monitor_may_run(w.mon[1], ENCLAVE);

    for (int i = 0; i < 2; i++) rewire_monitor_free(w.mon[i]);
    rewire_sds_free(w.sds);
    for (int i = 0; i < 2; i++) soft_free(&hosts[i]);
    free(w.buf);
    printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
