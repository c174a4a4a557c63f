/*
 * librewire C API, negative cases: NULL pointers, garbage, truncated and
 * tampered inputs, too-small buffers, a rolled-back journal. Each returns its
 * documented code, and the source enclave stays runnable and intact.
 */
#include "../../examples/c/soft_host.h"

#include "expect.h"

static const uint8_t SM[32] = {9, 9, 9};

/* A framework callback that calls back into its own monitor: refused, not UB. */
static rewire_monitor *g_reenter;
static uint32_t g_reenter_rc = 12345;
static uint32_t reentrant_pause(void *ud, const uint8_t *id) {
    uint32_t st;
    uint64_t ep;
    if (g_reenter) g_reenter_rc = rewire_monitor_status(g_reenter, id, &st, &ep);
    return cb_pause(ud, id);
}
/* The log callback: every line NUL-terminated, within the cap, kept for checks. */
static int g_lines;
static char g_log[8192];
static void capture(void *ud, uint32_t level, const char *msg, size_t len) {
    (void)ud;
    if (strlen(msg) != len || len > REWIRE_MAX_LOG_LINE || level < REWIRE_LOG_ERROR || level > REWIRE_LOG_TRACE) {
        fprintf(stderr, "bad log line (level %u, len %zu)\n", level, len);
        failures++;
    }
    g_lines++;
    size_t used = strlen(g_log);
    if (used + len + 2 < sizeof g_log) {
        memcpy(g_log + used, msg, len);
        g_log[used + len] = '\n';
        g_log[used + len + 1] = 0;
    }
}

static const uint8_t EID[16] = "negative-enclave";
static uint8_t code[1500], state[3000];

static void intact(soft_host *h, rewire_monitor *m) {
    soft_enclave *e = soft_find(h, EID);
    TRUE(e && e->running);
    TRUE(e && e->len[1] == sizeof state && memcmp(e->section[1], state, sizeof state) == 0);
    TRUE(e && e->len[0] == sizeof code && memcmp(e->section[0], code, sizeof code) == 0);
    TRUE(rewire_monitor_may_run(m, EID));
    uint32_t st = 0;
    uint64_t epoch = 99;
    EXPECT(rewire_monitor_status(m, EID, &st, &epoch), REWIRE_OK);
    TRUE(st == REWIRE_STATE_RUNNING);
}

int main(void) {
    for (size_t i = 0; i < sizeof code; i++) code[i] = (uint8_t)(i * 3);
    for (size_t i = 0; i < sizeof state; i++) state[i] = (uint8_t)(i * 5 + 1);
    soft_host a = {.rng_state = 11}, b = {.rng_state = 22}, a2 = {.rng_state = 33};
    uint8_t seed[32] = {1}, sds_key[32], secret_a[32] = {0xa}, secret_b[32] = {0xb};
    rewire_sds *sds = NULL;
    rewire_monitor *ma = NULL, *mb = NULL, *none = NULL;
    rewire_platform_callbacks pa = soft_platform(&a), pb = soft_platform(&b);
    rewire_enclave_callbacks fa = soft_framework(&a), fb = soft_framework(&b);

    /* Results and text. */
    TRUE(strcmp(rewire_result_text(REWIRE_OK), "ok") == 0);
    TRUE(strcmp(rewire_result_text(12345), "unknown result code") == 0);
    TRUE(strlen(rewire_result_text(REWIRE_ERR_ROLLBACK)) > 0);
    TRUE(strcmp(rewire_version(), REWIRE_VERSION) == 0);

    /* NULL and missing callbacks. */
    EXPECT(rewire_sds_new(NULL, &sds), REWIRE_ERR_NULL_POINTER);
    EXPECT(rewire_sds_new(seed, NULL), REWIRE_ERR_NULL_POINTER);
    CHECK(rewire_sds_new(seed, &sds));
    CHECK(rewire_sds_public_key(sds, sds_key));
    EXPECT(rewire_monitor_new(secret_a, SM, sds_key, 0, NULL, &fa, &ma), REWIRE_ERR_NULL_POINTER);
    rewire_platform_callbacks broken = pa;
    broken.counter_increment = NULL;
    EXPECT(rewire_monitor_new(secret_a, SM, sds_key, 0, &broken, &fa, &none), REWIRE_ERR_NULL_POINTER);
    TRUE(none == NULL);
    /* Versioned callback structs: a struct_size below this library's layout
       is refused (it would be read past its end), and so is one that is not
       a size at all (a program from before struct_size: its userdata pointer
       lands there); a larger one, from a later header, is accepted when the
       members this library does not know are unset, and refused when one is
       set (its callback would never run). */
    rewire_platform_callbacks short_p = pa;
    short_p.struct_size = sizeof pa - sizeof(void *);
    EXPECT(rewire_monitor_new(secret_a, SM, sds_key, 0, &short_p, &fa, &none), REWIRE_ERR_INVALID_ARGUMENT);
    short_p.struct_size = 0;
    EXPECT(rewire_monitor_new(secret_a, SM, sds_key, 0, &short_p, &fa, &none), REWIRE_ERR_INVALID_ARGUMENT);
    rewire_enclave_callbacks short_f = fa;
    short_f.struct_size = sizeof fa - 1;
    EXPECT(rewire_monitor_new(secret_a, SM, sds_key, 0, &pa, &short_f, &none), REWIRE_ERR_INVALID_ARGUMENT);
    short_f.struct_size = (size_t)(uintptr_t)&a; /* a pointer where the size goes */
    EXPECT(rewire_monitor_new(secret_a, SM, sds_key, 0, &pa, &short_f, &none), REWIRE_ERR_INVALID_ARGUMENT);
    TRUE(none == NULL);
    {
        soft_host c = {.rng_state = 44};
        struct {
            rewire_platform_callbacks p;
            void *later_callback;
        } later_p = {soft_platform(&c), (void *)&c};
        struct {
            rewire_enclave_callbacks f;
            void *later_callback;
        } later_f = {soft_framework(&c), NULL};
        later_p.p.struct_size = sizeof later_p;
        later_f.f.struct_size = sizeof later_f;
        EXPECT(rewire_monitor_new(secret_a, SM, sds_key, 0, &later_p.p, &later_f.f, &none), REWIRE_ERR_INVALID_ARGUMENT);
        TRUE(none == NULL);
        later_p.later_callback = NULL;
        CHECK(rewire_monitor_new(secret_a, SM, sds_key, 0, &later_p.p, &later_f.f, &none));
        TRUE(none != NULL);
        rewire_monitor_free(none);
        none = NULL;
        soft_free(&c);
    }
    /* The log callback: levels are checked. */
    EXPECT(rewire_set_log(capture, NULL, REWIRE_LOG_TRACE + 1), REWIRE_ERR_INVALID_ARGUMENT);
    fa.pause = reentrant_pause;
    CHECK(rewire_monitor_new(secret_a, SM, sds_key, 0, &pa, &fa, &ma));
    g_reenter = ma;
    CHECK(rewire_monitor_new(secret_b, SM, sds_key, 0, &pb, &fb, &mb));
    EXPECT(rewire_monitor_tick(NULL), REWIRE_ERR_NULL_POINTER);
    EXPECT(rewire_monitor_handle_sds(ma, NULL, 10), REWIRE_ERR_NULL_POINTER);
    EXPECT(rewire_monitor_handle_sds(ma, NULL, 0), REWIRE_ERR_DECODE);
    TRUE(!rewire_monitor_may_run(NULL, EID));
    TRUE(!rewire_monitor_may_run(ma, NULL));
    rewire_monitor_free(NULL);
    rewire_sds_free(NULL);

    /* Set up: both hosts endorsed, the enclave on A. */
    uint64_t now = (uint64_t)time(NULL);
    uint8_t ida[32], idb[32], cert[512], buf[8192], policy[1024];
    size_t len = 0, policy_len = 0;
    CHECK(rewire_monitor_host_id(ma, ida));
    CHECK(rewire_monitor_host_id(mb, idb));
    CHECK(rewire_monitor_certificate(ma, cert, sizeof cert, &len));
    /* Device provenance: a device key nobody certified or pinned is not
       endorsed; a certificate from no registered root is refused. */
    size_t cert_a_len = len;
    EXPECT(rewire_sds_endorse_host(sds, cert, cert_a_len, SM, 1, REWIRE_PLATFORM_RISCV64, 2, now - 5, now + 999, buf, sizeof buf, &len),
           REWIRE_ERR_DEVICE_NOT_CERTIFIED);
    uint8_t certified[32];
    EXPECT(rewire_sds_certify_device(sds, cert, cert_a_len, certified), REWIRE_ERR_DEVICE_NOT_CERTIFIED);
    EXPECT(rewire_sds_certify_device(sds, cert, cert_a_len, NULL), REWIRE_ERR_NULL_POINTER);
    EXPECT(rewire_sds_certify_device(sds, (const uint8_t *)"x", 1, certified), REWIRE_ERR_DECODE);
    EXPECT(rewire_sds_add_device_root(sds, NULL), REWIRE_ERR_NULL_POINTER);
    EXPECT(rewire_sds_pin_device(NULL, ida), REWIRE_ERR_NULL_POINTER);
    CHECK(rewire_sds_pin_device(sds, ida));
    CHECK(rewire_sds_pin_device(sds, idb));
    len = cert_a_len;
    EXPECT(rewire_sds_endorse_host(sds, cert, len, SM, 0, REWIRE_PLATFORM_RISCV64, 2, now - 5, now + 999, buf, sizeof buf, &len),
           REWIRE_ERR_INVALID_ARGUMENT);
    EXPECT(rewire_sds_endorse_host(sds, cert, len, SM, 1, 0, 2, now - 5, now + 999, buf, sizeof buf, &len),
           REWIRE_ERR_INVALID_ARGUMENT); /* no platform */
    CHECK(rewire_sds_endorse_host(sds, cert, len, SM, 1, REWIRE_PLATFORM_RISCV64, 2, now - 5, now + 999, buf, sizeof buf, &len));
    CHECK(rewire_monitor_certificate(mb, cert, sizeof cert, &len));
    CHECK(rewire_sds_endorse_host(sds, cert, len, SM, 1, REWIRE_PLATFORM_RISCV64, 2, now - 5, now + 999, buf, sizeof buf, &len));
    uint8_t m[32];
    soft_measure_bytes(code, sizeof code, m);
    /* Too small a buffer: the required length; a retry gets the same policy. */
    EXPECT(rewire_sds_register_enclave(sds, EID, m, REWIRE_PLATFORM_RISCV64, 1, ida, policy, 8, &policy_len), REWIRE_ERR_BUFFER_TOO_SMALL);
    TRUE(policy_len > 8);
    CHECK(rewire_sds_register_enclave(sds, EID, m, REWIRE_PLATFORM_RISCV64, 1, ida, policy, sizeof policy, &policy_len));
    EXPECT(rewire_sds_register_enclave(sds, EID, m, REWIRE_PLATFORM_RISCV64, 2, ida, policy, sizeof policy, &len), REWIRE_ERR_BUSY);
    /* Platforms: an aarch64 build cannot be placed on a RISC-V host; 0 is no platform. */
    const uint8_t EID2[16] = "arm-built-enclav";
    EXPECT(rewire_sds_register_enclave(sds, EID2, m, REWIRE_PLATFORM_AARCH64, 1, ida, policy, sizeof policy, &len),
           REWIRE_ERR_PLATFORM_MISMATCH);
    EXPECT(rewire_sds_register_enclave(sds, EID2, m, 0, 1, ida, policy, sizeof policy, &len), REWIRE_ERR_INVALID_ARGUMENT);
    EXPECT(rewire_monitor_set_max_sessions(ma, 0), REWIRE_ERR_INVALID_ARGUMENT);
    EXPECT(rewire_monitor_set_max_sessions(NULL, 2), REWIRE_ERR_NULL_POINTER);
    CHECK(rewire_monitor_set_max_sessions(mb, 4));
    soft_load(&a, EID, code, sizeof code, state, sizeof state);
    /* A tampered policy is refused; the real one installs. */
    policy[policy_len - 1] ^= 1;
    EXPECT(rewire_monitor_install(ma, policy, policy_len), REWIRE_ERR_BAD_SIGNATURE);
    policy[policy_len - 1] ^= 1;
    EXPECT(rewire_monitor_install(ma, policy, policy_len - 3), REWIRE_ERR_DECODE);
    CHECK(rewire_monitor_install(ma, policy, policy_len));
    intact(&a, ma);

    /* Checkpoints: only the one committed last opens; an older one, one
     * never committed, a tampered one and one of an unknown enclave are
     * refused with their own codes, and the enclave stays as it was. */
    uint8_t ck1[256], ck2[256], img[16];
    size_t ck1_len = 0, ck2_len = 0, img_len = 0;
    CHECK(rewire_monitor_checkpoint_seal(ma, EID, (const uint8_t *)"first", 5, ck1, sizeof ck1, &ck1_len));
    EXPECT(rewire_monitor_checkpoint_open(ma, EID, ck1, ck1_len, img, sizeof img, &img_len), REWIRE_ERR_STALE_CHECKPOINT);
    CHECK(rewire_monitor_checkpoint_commit(ma, EID, ck1, ck1_len));
    CHECK(rewire_monitor_checkpoint_seal(ma, EID, (const uint8_t *)"second", 6, ck2, sizeof ck2, &ck2_len));
    CHECK(rewire_monitor_checkpoint_commit(ma, EID, ck2, ck2_len));
    EXPECT(rewire_monitor_checkpoint_open(ma, EID, ck2, ck2_len, img, 2, &img_len), REWIRE_ERR_BUFFER_TOO_SMALL);
    TRUE(img_len == 6);
    CHECK(rewire_monitor_checkpoint_open(ma, EID, ck2, ck2_len, img, sizeof img, &img_len));
    TRUE(img_len == 6 && memcmp(img, "second", 6) == 0);
    EXPECT(rewire_monitor_checkpoint_open(ma, EID, ck1, ck1_len, img, sizeof img, &img_len), REWIRE_ERR_STALE_CHECKPOINT);
    EXPECT(rewire_monitor_checkpoint_commit(ma, EID, ck1, ck1_len), REWIRE_ERR_STALE_CHECKPOINT);
    ck2[ck2_len - 1] ^= 1;
    EXPECT(rewire_monitor_checkpoint_open(ma, EID, ck2, ck2_len, img, sizeof img, &img_len), REWIRE_ERR_UNSEAL);
    ck2[ck2_len - 1] ^= 1;
    EXPECT(rewire_monitor_checkpoint_open(ma, (const uint8_t *)"no-such-enclave!", ck2, ck2_len, img, sizeof img, &img_len),
           REWIRE_ERR_UNKNOWN_ENCLAVE);
    EXPECT(rewire_monitor_checkpoint_commit(ma, EID, NULL, 4), REWIRE_ERR_NULL_POINTER);
    intact(&a, ma);
    uint8_t *journal_after_install = malloc(a.journal_len);
    size_t journal_after_install_len = a.journal_len;
    memcpy(journal_after_install, a.journal, a.journal_len);
    uint64_t counter_after_install = a.counter;

    /* Too small an output buffer: the required length, and nothing consumed. */
    uint8_t rid[16] = "neg-request-0001", order[4096];
    size_t order_len = 0;
    EXPECT(rewire_sds_order(sds, EID, idb, rid, now + 600, order, 8, &order_len), REWIRE_ERR_BUFFER_TOO_SMALL);
    TRUE(order_len > 8);
    CHECK(rewire_sds_order(sds, EID, idb, rid, now + 600, order, sizeof order, &order_len));

    /* Garbage, truncated and tampered orders: refused, enclave intact. */
    EXPECT(rewire_monitor_handle_sds(ma, (const uint8_t *)"garbage!", 8), REWIRE_ERR_DECODE);
    EXPECT(rewire_monitor_handle_sds(ma, order, order_len - 1), REWIRE_ERR_DECODE);
    uint8_t longer[4097];
    memcpy(longer, order, order_len);
    longer[order_len] = 0;
    EXPECT(rewire_monitor_handle_sds(ma, longer, order_len + 1), REWIRE_ERR_TRAILING_BYTES);
    order[order_len - 2] ^= 0x20; /* inside the target endorsement, which the signed request binds */
    EXPECT(rewire_monitor_handle_sds(ma, order, order_len), REWIRE_ERR_ENDORSEMENT_MISMATCH);
    order[order_len - 2] ^= 0x20;
    intact(&a, ma);
    /* Garbage TLS bytes on a channel; an unknown enclave; a bad status query. */
    uint8_t conn[16] = "not-a-channel!!!";
    EXPECT(rewire_monitor_handle_peer(ma, idb, conn, (const uint8_t *)"\x16\x03\x01\x00\x05hello", 10), REWIRE_ERR_TLS);
    uint32_t st;
    uint64_t ep;
    EXPECT(rewire_monitor_status(ma, (const uint8_t *)"no-such-enclave!", &st, &ep), REWIRE_ERR_UNKNOWN_ENCLAVE);
    EXPECT(rewire_monitor_status(ma, EID, NULL, &ep), REWIRE_ERR_NULL_POINTER);
    intact(&a, ma);

    /* The real order, with a too-small output buffer on the way; logged from here on. */
    CHECK(rewire_set_log(capture, NULL, REWIRE_LOG_INFO));
    CHECK(rewire_monitor_handle_sds(ma, order, order_len));
    TRUE(g_reenter_rc == REWIRE_ERR_INVALID_STATE); /* re-entry during pause */
    g_reenter = NULL;
    uint32_t dest;
    uint8_t host[32];
    EXPECT(rewire_monitor_poll_output(ma, &dest, host, conn, buf, 4, &len), REWIRE_ERR_BUFFER_TOO_SMALL);
    TRUE(len > 4);
    /* Tamper with the ClientHello on its way to B: B refuses, A aborts and runs on. */
    CHECK(rewire_monitor_poll_output(ma, &dest, host, conn, buf, sizeof buf, &len));
    TRUE(dest == REWIRE_DEST_PEER && memcmp(host, idb, 32) == 0);
    buf[5] ^= 0xff; /* the handshake message type */
    rewire_result rc = rewire_monitor_handle_peer(mb, ida, conn, buf, len);
    TRUE(rc == REWIRE_ERR_TLS);
    while (rewire_monitor_poll_output(mb, &dest, host, conn, buf, sizeof buf, &len) == REWIRE_OK)
        rc = rewire_monitor_handle_peer(ma, idb, conn, buf, len); /* B's alert: A's channel fails */
    EXPECT(rewire_monitor_peer_closed(ma, rid), REWIRE_OK);
    intact(&a, ma);
    uint32_t ev, why;
    uint8_t evrid[16];
    int aborted = 0;
    while (rewire_monitor_poll_event(ma, &ev, evrid, &why) == REWIRE_OK) aborted |= ev == REWIRE_EVENT_ABORTED;
    TRUE(aborted);
    /* The abort was logged, with its code; then logging is turned off. */
    char want[64];
    snprintf(want, sizeof want, "aborting outgoing migration error=%u", (unsigned)REWIRE_ERR_TLS);
    TRUE(g_lines > 0 && strstr(g_log, "migration step") != NULL);
    if (!strstr(g_log, want)) fprintf(stderr, "log was:\n%s", g_log);
    TRUE(strstr(g_log, want) != NULL);
    CHECK(rewire_set_log(NULL, NULL, REWIRE_LOG_TRACE));
    /* The ABORT proof reaches the SDS: the ledger keeps the enclave on A at epoch 1. */
    while (rewire_monitor_poll_output(ma, &dest, host, conn, buf, sizeof buf, &len) == REWIRE_OK) {
        uint32_t ledger;
        if (dest == REWIRE_DEST_SDS && rewire_sds_handle(sds, buf, len, &ledger) == REWIRE_OK)
            TRUE(ledger == REWIRE_LEDGER_ABORTED);
    }
    uint8_t where[32];
    CHECK(rewire_sds_location(sds, EID, where, &ep));
    TRUE(memcmp(where, ida, 32) == 0 && ep == 1);
    /* The aborted request, replayed: refused. */
    EXPECT(rewire_monitor_handle_sds(ma, order, order_len), REWIRE_ERR_REPLAY);
    intact(&a, ma);

    /* A journal rolled back to an older copy: the monitor refuses to start. */
    a2.journal = journal_after_install;
    a2.journal_len = journal_after_install_len;
    a2.counter = a.counter;
    TRUE(a.counter > counter_after_install);
    rewire_platform_callbacks pa2 = soft_platform(&a2);
    rewire_enclave_callbacks fa2 = soft_framework(&a2);
    EXPECT(rewire_monitor_new(secret_a, SM, sds_key, 0, &pa2, &fa2, &none), REWIRE_ERR_ROLLBACK);
    TRUE(none == NULL);

    /* The boot chain: a monitor started from its boot stage's handoff is the
       one rewire_monitor_new derives (same host id, same certificate); a
       handoff whose secret and certificate come from different builds, a
       certificate checked against another device key, a short buffer: refused. */
    soft_host b3 = {.rng_state = 55};
    {
        uint8_t sm_secret[32], dev[32], hcert[512], other_secret[32], other_dev[32], ocert[512];
        uint8_t build2[32] = {8, 8, 8}, image[100] = {1}, measured[32], mbcert[512], id3[32], cert3[512];
        size_t hlen = 0, olen = 0, mblen = 0, len3 = 0;
        CHECK(rewire_boot_measure(image, sizeof image, measured));
        EXPECT(rewire_boot_measure(NULL, 4, measured), REWIRE_ERR_NULL_POINTER);
        /* A NULL output writes nothing at all (not even the certificate). */
        EXPECT(rewire_boot_handoff(secret_b, SM, NULL, hcert, sizeof hcert, &hlen, dev), REWIRE_ERR_NULL_POINTER);
        TRUE(hlen == 0);
        EXPECT(rewire_boot_handoff(secret_b, SM, sm_secret, hcert, sizeof hcert, &hlen, NULL), REWIRE_ERR_NULL_POINTER);
        TRUE(hlen == 0);
        EXPECT(rewire_boot_handoff(NULL, SM, sm_secret, hcert, sizeof hcert, &hlen, dev), REWIRE_ERR_NULL_POINTER);
        memset(sm_secret, 0xee, sizeof sm_secret);
        EXPECT(rewire_boot_handoff(secret_b, SM, sm_secret, hcert, 8, &hlen, dev), REWIRE_ERR_BUFFER_TOO_SMALL);
        TRUE(hlen > 8);
        for (size_t i = 0; i < sizeof sm_secret; i++) TRUE(sm_secret[i] == 0xee); /* the secret is not written */
        CHECK(rewire_boot_handoff(secret_b, SM, sm_secret, hcert, sizeof hcert, &hlen, dev));
        TRUE(memcmp(dev, idb, 32) == 0);
        CHECK(rewire_monitor_certificate(mb, mbcert, sizeof mbcert, &mblen));
        TRUE(mblen == hlen && memcmp(mbcert, hcert, hlen) == 0);
        CHECK(rewire_boot_handoff(secret_b, build2, other_secret, ocert, sizeof ocert, &olen, other_dev));
        TRUE(memcmp(other_dev, dev, 32) == 0 && memcmp(other_secret, sm_secret, 32) != 0);
        rewire_platform_callbacks pb3 = soft_platform(&b3);
        rewire_enclave_callbacks fb3 = soft_framework(&b3);
        EXPECT(rewire_monitor_new_from_handoff(other_secret, hcert, hlen, dev, sds_key, 0, &pb3, &fb3, &none),
               REWIRE_ERR_INVALID_ARGUMENT);
        TRUE(none == NULL);
        EXPECT(rewire_monitor_new_from_handoff(sm_secret, hcert, hlen, ida, sds_key, 0, &pb3, &fb3, &none),
               REWIRE_ERR_UNKNOWN_SIGNER);
        TRUE(none == NULL);
        hcert[hlen / 2] ^= 1;
        EXPECT(rewire_monitor_new_from_handoff(sm_secret, hcert, hlen, dev, sds_key, 0, &pb3, &fb3, &none),
               REWIRE_ERR_BAD_SIGNATURE);
        TRUE(none == NULL);
        hcert[hlen / 2] ^= 1;
        CHECK(rewire_monitor_new_from_handoff(sm_secret, hcert, hlen, dev, sds_key, 0, &pb3, &fb3, &none));
        CHECK(rewire_monitor_host_id(none, id3));
        CHECK(rewire_monitor_certificate(none, cert3, sizeof cert3, &len3));
        TRUE(memcmp(id3, idb, 32) == 0 && len3 == hlen && memcmp(cert3, hcert, hlen) == 0);
        rewire_monitor_free(none);
        none = NULL;
    }

    rewire_monitor_free(ma);
    rewire_monitor_free(mb);
    rewire_sds_free(sds);
    soft_free(&a);
    soft_free(&b);
    soft_free(&a2);
    soft_free(&b3);
    if (failures) {
        fprintf(stderr, "%d failed checks\n", failures);
        return 1;
    }
    printf("C negative tests: all passed\n");
    return 0;
}
