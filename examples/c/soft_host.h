/*
 * A software platform and enclave framework in plain C for librewire's
 * examples and C tests: an in-memory journal and counter, libc time and
 * randomness, and enclaves held in malloc'd buffers. Nothing here is secure;
 * it shows what a monitor implements behind the two callback structs.
 */
#ifndef REWIRE_SOFT_HOST_H
#define REWIRE_SOFT_HOST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rewire.h"

#define SOFT_MAX_ENCLAVES 4

typedef struct {
    uint8_t id[16];
    int used;
    int running;
    uint8_t *section[3];
    size_t len[3];
} soft_enclave;

typedef struct {
    const char *name;
    /* platform */
    uint8_t *journal;
    size_t journal_len;
    uint64_t counter;
    uint64_t rng_state;
    /* framework */
    soft_enclave enclaves[SOFT_MAX_ENCLAVES];
} soft_host;

static soft_enclave *soft_find(soft_host *h, const uint8_t *id) {
    for (int i = 0; i < SOFT_MAX_ENCLAVES; i++)
        if (h->enclaves[i].used && memcmp(h->enclaves[i].id, id, 16) == 0) return &h->enclaves[i];
    return NULL;
}

static soft_enclave *soft_slot(soft_host *h, const uint8_t *id) {
    soft_enclave *e = soft_find(h, id);
    if (e) return e;
    for (int i = 0; i < SOFT_MAX_ENCLAVES; i++) {
        if (!h->enclaves[i].used) {
            e = &h->enclaves[i];
            memset(e, 0, sizeof *e);
            memcpy(e->id, id, 16);
            e->used = 1;
            return e;
        }
    }
    return NULL;
}

static void soft_wipe(soft_enclave *e) {
    for (int s = 0; s < 3; s++) {
        if (e->section[s]) {
            memset(e->section[s], 0, e->len[s]);
            free(e->section[s]);
        }
        e->section[s] = NULL;
        e->len[s] = 0;
    }
    e->used = 0;
    e->running = 0;
}

static void soft_free(soft_host *h) {
    for (int i = 0; i < SOFT_MAX_ENCLAVES; i++)
        if (h->enclaves[i].used) soft_wipe(&h->enclaves[i]);
    free(h->journal);
    h->journal = NULL;
}

/* ---- platform callbacks ---- */

/* SIMULATED randomness: a xorshift stream. A real monitor uses a hardware TRNG. */
static uint32_t cb_random(void *ud, uint8_t *buf, size_t len) {
    soft_host *h = ud;
    for (size_t i = 0; i < len; i++) {
        h->rng_state ^= h->rng_state << 13;
        h->rng_state ^= h->rng_state >> 7;
        h->rng_state ^= h->rng_state << 17;
        buf[i] = (uint8_t)(h->rng_state >> 24);
    }
    return 0;
}

static uint64_t cb_monotonic_ms(void *ud) {
    (void)ud;
#ifdef REWIRE_BAREMETAL
    return (uint64_t)time(NULL) * 1000u; /* picolibc on semihosting: seconds are what it has */
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
#endif
}

static uint32_t cb_wall_time(void *ud, uint64_t *out) {
    (void)ud;
    *out = (uint64_t)time(NULL);
    return 0;
}

static uint32_t cb_journal_read(void *ud, uint8_t *buf, size_t cap, size_t *out_len) {
    soft_host *h = ud;
    *out_len = h->journal_len;
    if (h->journal_len > cap) return 1;
    if (h->journal_len) memcpy(buf, h->journal, h->journal_len);
    return 0;
}

static uint32_t cb_journal_write(void *ud, const uint8_t *buf, size_t len) {
    soft_host *h = ud;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return 1;
    memcpy(copy, buf, len);
    free(h->journal);
    h->journal = copy;
    h->journal_len = len;
    return 0;
}

static uint32_t cb_counter_read(void *ud, uint64_t *out) {
    *out = ((soft_host *)ud)->counter;
    return 0;
}

static uint32_t cb_counter_increment(void *ud, uint64_t *out) {
    soft_host *h = ud;
    *out = ++h->counter;
    return 0;
}

/* ---- enclave framework callbacks ---- */

static uint32_t cb_pause(void *ud, const uint8_t *id) {
    soft_enclave *e = soft_find(ud, id);
    if (!e) return 1;
    e->running = 0;
    return 0;
}

static uint32_t cb_resume(void *ud, const uint8_t *id) {
    soft_enclave *e = soft_find(ud, id);
    if (!e) return 1;
    e->running = 1;
    return 0;
}

static uint32_t cb_destroy(void *ud, const uint8_t *id) {
    soft_enclave *e = soft_find(ud, id);
    if (e) soft_wipe(e);
    return 0;
}

static uint32_t cb_export_len(void *ud, const uint8_t *id, uint32_t section, uint64_t *out_len) {
    soft_enclave *e = soft_find(ud, id);
    if (!e || section > 2) return 1;
    *out_len = e->len[section];
    return 0;
}

static uint32_t cb_export_data(void *ud, const uint8_t *id, uint32_t section, uint64_t offset, uint8_t *buf,
                               size_t len, size_t *out_read) {
    soft_enclave *e = soft_find(ud, id);
    if (!e || section > 2 || offset > e->len[section]) return 1;
    size_t n = e->len[section] - (size_t)offset;
    if (n > len) n = len;
    if (n) memcpy(buf, e->section[section] + offset, n);
    *out_read = n;
    return 0;
}

static uint32_t cb_import_data(void *ud, const uint8_t *id, uint32_t section, uint64_t offset, const uint8_t *data,
                               size_t len) {
    soft_enclave *e = soft_slot(ud, id);
    if (!e || section > 2 || e->running || offset != e->len[section]) return 1;
    uint8_t *grown = realloc(e->section[section], e->len[section] + len + 1);
    if (!grown) return 1;
    memcpy(grown + e->len[section], data, len);
    e->section[section] = grown;
    e->len[section] += len;
    return 0;
}

/* A toy measurement: 32 bytes of FNV-1a over the code (a real framework hashes the loaded pages). */
static void soft_measure_bytes(const uint8_t *code, size_t len, uint8_t out[32]) {
    for (int lane = 0; lane < 4; lane++) {
        uint64_t x = 1469598103934665603ull ^ (uint64_t)lane;
        for (size_t i = 0; i < len; i++) x = (x ^ code[i]) * 1099511628211ull;
        memcpy(out + 8 * lane, &x, 8);
    }
}

static uint32_t cb_measure(void *ud, const uint8_t *id, uint8_t *out) {
    soft_enclave *e = soft_find(ud, id);
    if (!e) return 1;
    soft_measure_bytes(e->section[REWIRE_SECTION_CODE], e->len[REWIRE_SECTION_CODE], out);
    return 0;
}

static uint32_t cb_attest(void *ud, const uint8_t *id, const uint8_t *report_data, uint8_t *buf, size_t cap,
                          size_t *out_len) {
    (void)report_data;
    if (!soft_find(ud, id) || cap < 4) return 1;
    memcpy(buf, "soft", 4);
    *out_len = 4;
    return 0;
}

static rewire_platform_callbacks soft_platform(soft_host *h) {
    rewire_platform_callbacks p = {sizeof p, h, cb_random, cb_monotonic_ms, cb_wall_time, cb_journal_read,
                                   cb_journal_write, cb_counter_read, cb_counter_increment};
    return p;
}

static rewire_enclave_callbacks soft_framework(soft_host *h) {
    rewire_enclave_callbacks e = {sizeof e, h, cb_pause, cb_resume, cb_destroy, cb_export_len,
                                  cb_export_data, cb_import_data, cb_measure, cb_attest};
    return e;
}

/* Load an enclave image (paused) as a deployment would. */
static int soft_load(soft_host *h, const uint8_t id[16], const uint8_t *code, size_t code_len, const uint8_t *state,
                     size_t state_len) {
    soft_enclave *e = soft_slot(h, id);
    if (!e) return -1;
    if (cb_import_data(h, id, REWIRE_SECTION_CODE, 0, code, code_len)) return -1;
    if (cb_import_data(h, id, REWIRE_SECTION_STATE, 0, state, state_len)) return -1;
    return 0;
}

#define CHECK(call)                                                                                  \
    do {                                                                                             \
        rewire_result rc_ = (call);                                                                  \
        if (rc_ != REWIRE_OK) {                                                                      \
            fprintf(stderr, "%s:%d: %s failed: %u %s\n", __FILE__, __LINE__, #call, rc_,             \
                    rewire_result_text(rc_));                                                        \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)

#endif
