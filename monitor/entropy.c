/*
 * Randomness for librewire: the Zkr entropy source (the `seed` CSR),
 * health-tested, conditioned and expanded by HMAC_DRBG with SHA-256
 * (NIST SP 800-90A §10.1.2, simplified: no personalization string, prediction
 * resistance by reseeding before every request).
 *
 * The seed CSR is a raw entropy source: each read returns OPST in bits 31:30
 * (BIST 0: self-test running, WAIT 1: no data yet, ES16 2: 16 bits of entropy
 * in bits 15:0, DEAD 3: unrecoverable failure) and its output must be
 * conditioned before use. Every request therefore collects RAW_WORDS ES16
 * samples (2048 raw bits, eight times the 256 bits of security asked of the
 * seed), runs the two SP 800-90B §4.4 health tests on them, refuses a batch
 * identical to the previous one, and reseeds the DRBG with them; the output
 * comes from the DRBG only. A failure is a typed result, never a spin: DEAD
 * fails this and every later request, WAIT/BIST polling is bounded.
 *
 * Portable C with the seed source passed in, so that monitor/test_entropy.c
 * runs it on the build machine against fake sources.
 */
#include "monitor.h"

#define OPST(s) (((s) >> 30) & 3u)
enum { OPST_BIST = 0, OPST_WAIT = 1, OPST_ES16 = 2, OPST_DEAD = 3 };

/* Health tests (SP 800-90B §4.4) for a source credited with 2 bits of
 * min-entropy per 16-bit sample (RAW_WORDS samples per 256-bit seed), false
 * alarm rate 2^-20: repetition count cutoff 1 + ceil(20 / 2); adaptive
 * proportion over the batch: the first sample's value at most 57 more times
 * in the other 127 (binomial(127, 1/4) tail below 2^-20). */
#define RCT_CUTOFF 11
#define APT_CUTOFF 58

static void hmac(const uint8_t key[32], const uint8_t *m, size_t n, uint8_t out[32]) {
    static uint8_t buf[64 + 33 + RAW_WORDS * 2];
    uint8_t outer[64 + 32];
    if (n > sizeof buf - 64) n = sizeof buf - 64; /* callers stay below; never overflow */
    for (int i = 0; i < 64; i++) {
        buf[i] = (uint8_t)((i < 32 ? key[i] : 0) ^ 0x36);
        outer[i] = (uint8_t)((i < 32 ? key[i] : 0) ^ 0x5c);
    }
    memcpy(buf + 64, m, n);
    sha256(buf, 64 + n, outer + 64);
    sha256(outer, sizeof outer, out); /* out may be key: the key was used up above */
    memset(buf, 0, 64 + n);
    memset(outer, 0, sizeof outer);
}

/* HMAC_DRBG_Update (SP 800-90A §10.1.2.2). */
static void update(struct drbg *d, const uint8_t *data, size_t n) {
    uint8_t m[33 + RAW_WORDS * 2];
    for (uint8_t round = 0; round < (n ? 2 : 1); round++) {
        memcpy(m, d->v, 32);
        m[32] = round;
        if (n) memcpy(m + 33, data, n);
        hmac(d->k, m, 33 + n, d->k);
        hmac(d->k, d->v, 32, d->v);
    }
    memset(m, 0, sizeof m);
}

/* RAW_WORDS ES16 samples into raw (little-endian), or an RNG_ERR_*. */
static int collect(struct drbg *d, seed_fn src, uint8_t raw[RAW_WORDS * 2]) {
    unsigned got = 0, polls = 0, run = 0;
    uint16_t prev = 0;
    while (got < RAW_WORDS) {
        uint32_t s = src();
        switch (OPST(s)) {
        case OPST_ES16:
            break;
        case OPST_DEAD:
            d->dead = 1;
            return RNG_ERR_DEAD;
        default: /* BIST or WAIT: the source is not ready yet */
            if (++polls >= WAIT_POLLS) return RNG_ERR_WAIT;
            continue;
        }
        uint16_t x = (uint16_t)s;
        run = (got > 0 && x == prev) ? run + 1 : 1;
        if (run >= RCT_CUTOFF) return RNG_ERR_HEALTH; /* repetition count test */
        prev = x;
        raw[2 * got] = (uint8_t)x;
        raw[2 * got + 1] = (uint8_t)(x >> 8);
        got++;
    }
    unsigned same = 0; /* adaptive proportion test over the batch */
    for (unsigned i = 1; i < RAW_WORDS; i++) same += raw[2 * i] == raw[0] && raw[2 * i + 1] == raw[1];
    if (same + 1 >= APT_CUTOFF) return RNG_ERR_HEALTH;
    uint8_t h[32]; /* a batch equal to the last one: a stuck or replaying source */
    sha256(raw, RAW_WORDS * 2, h);
    int repeat = d->batches > 0 && memcmp(h, d->last, 32) == 0;
    memcpy(d->last, h, 32);
    d->batches++;
    return repeat ? RNG_ERR_HEALTH : 0;
}

int drbg_fill(struct drbg *d, seed_fn src, uint8_t *out, size_t len) {
    uint8_t raw[RAW_WORDS * 2];
    int r = d->dead ? RNG_ERR_DEAD : collect(d, src, raw);
    if (r == 0) {
        if (!d->seeded) { /* instantiate: K = 0x00..., V = 0x01..., then reseed */
            memset(d->k, 0, 32);
            memset(d->v, 1, 32);
            d->seeded = 1;
        }
        update(d, raw, sizeof raw); /* reseed (prediction resistance: before every request) */
        while (len) {               /* generate, at most 64 KiB per update (SP 800-90A's 2^19 bits) */
            size_t part = len < 65536 ? len : 65536;
            for (size_t i = 0; i < part; i += 32) {
                hmac(d->k, d->v, 32, d->v);
                memcpy(out + i, d->v, part - i < 32 ? part - i : 32);
            }
            update(d, NULL, 0);
            out += part;
            len -= part;
        }
    } else {
        memset(out, 0, len);
    }
    memset(raw, 0, sizeof raw);
    return r;
}
