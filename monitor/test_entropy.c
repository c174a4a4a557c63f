/*
 * entropy.c on the build machine, against fake seed sources
 * (tests/system/test_entropy.py compiles and runs it):
 *   cc -I monitor -I include monitor/test_entropy.c monitor/entropy.c monitor/sha256.c
 * Checks the typed failures (DEAD, bounded WAIT, health tests) and prints
 * "drbg <hex>" for a known source, which the Python side recomputes with an
 * independent HMAC_DRBG. Exit status 0 when every check holds.
 */
#include <stdio.h>
#include "monitor.h"

#define ES16(x) (0x80000000u | (uint16_t)(x))
static uint64_t xs = 1;
static unsigned reads;
/* A good source: xorshift64 samples, with a BIST read then a WAIT read every 7th. */
static uint32_t good(void) {
    reads++;
    if (reads == 1) return 0x00000000u;          /* BIST */
    if (reads % 7 == 0) return 0x40000000u;      /* WAIT */
    xs ^= xs << 13; xs ^= xs >> 7; xs ^= xs << 17;
    return ES16(xs);
}
static uint32_t dead(void) { reads++; return 0xC0000000u; }
static uint32_t waiting(void) { reads++; return 0x40000000u; }
static uint32_t stuck(void) { reads++; return ES16(0x1234); }
static uint32_t two_values(void) { reads++; return ES16(reads & 1 ? 0xAAAA : 0x5555); }
static unsigned dl;
static uint32_t dies_later(void) { return ++dl > 350 ? 0xC0000000u : good(); }
static unsigned replay_i;
static uint32_t replay(void) { /* the same 128 distinct samples, again and again */
    reads++;
    return ES16(0x9E37u * (replay_i++ % RAW_WORDS) + 1);
}

static int failures;
static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) failures++;
}
static int zero(const uint8_t *p, size_t n) { while (n--) if (*p++) return 0; return 1; }

int main(void) {
    static uint8_t out[70000], out2[70000];
    struct drbg d = {0};

    /* known-answer: the Python side reproduces these bytes */
    xs = 1; reads = 0;
    check(drbg_fill(&d, good, out, 40) == 0, "good source: 40 bytes");
    check(drbg_fill(&d, good, out + 40, 70000 - 40) == 0, "good source: 69960 more (two generate parts)");
    printf("drbg ");
    for (int i = 0; i < 40; i++) printf("%02x", out[i]);
    printf(" ");
    for (int i = 65536; i < 65536 + 40; i++) printf("%02x", out[40 + i]);
    printf("\n");
    check(!zero(out, 40), "output not zero");

    struct drbg e = {0};
    reads = 0;
    memset(out, 0xee, 64);
    check(drbg_fill(&e, dead, out, 64) == RNG_ERR_DEAD && reads == 1, "DEAD: typed failure after one read");
    check(zero(out, 64), "DEAD: output zeroed");
    xs = 1; reads = 0;
    check(drbg_fill(&e, good, out, 64) == RNG_ERR_DEAD && reads == 0, "DEAD is final: later requests fail unread");

    struct drbg f = {0};
    reads = 0;
    check(drbg_fill(&f, waiting, out, 16) == RNG_ERR_WAIT && reads == WAIT_POLLS,
          "WAIT for ever: fails after WAIT_POLLS reads");
    xs = 7; reads = 0;
    check(drbg_fill(&f, good, out, 16) == 0, "WAIT is not final: the next request succeeds");

    struct drbg g = {0};
    reads = 0;
    check(drbg_fill(&g, stuck, out, 16) == RNG_ERR_HEALTH && reads == 11,
          "all-equal samples: repetition count test, 11 reads");
    struct drbg h = {0};
    reads = 0;
    check(drbg_fill(&h, two_values, out, 16) == RNG_ERR_HEALTH, "two alternating values: adaptive proportion test");
    struct drbg i = {0};
    replay_i = 0;
    check(drbg_fill(&i, replay, out, 16) == 0, "replaying source: first batch passes");
    check(drbg_fill(&i, replay, out, 16) == RNG_ERR_HEALTH, "replaying source: the same batch again is refused");
    struct drbg j = {0};
    xs = 3; reads = 0;
    check(drbg_fill(&j, dies_later, out, 32) == 0, "source that dies later: first request ok");
    check(drbg_fill(&j, dies_later, out, 32) == 0, "source that dies later: second request ok");
    check(drbg_fill(&j, dies_later, out, 32) == RNG_ERR_DEAD, "source that dies later: DEAD mid-batch fails");

    /* two generators on the same raw samples agree; different samples differ */
    struct drbg k = {0}, l = {0};
    xs = 1; reads = 0;
    drbg_fill(&k, good, out, 64);
    xs = 1; reads = 0;
    drbg_fill(&l, good, out2, 64);
    check(memcmp(out, out2, 64) == 0, "deterministic given the samples");
    drbg_fill(&l, good, out2, 64);
    check(memcmp(out, out2, 64) != 0, "the next request differs");
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures ? 1 : 0;
}
