/*
 * The enclave: a small program whose state visibly evolves. Each step the
 * monitor calls enclave_entry(state, len) in U-mode (S-EL0 on Arm), in
 * whichever slot it occupies: the code is position-independent (the
 * Makefile checks that it has no absolute relocations), so the same bytes,
 * and so the same measurement, run in every slot and on every host; it counts, logs where it
 * ran, checks that its whole state is intact, and says so on the console.
 * It owns sealed data (a note sealed by librewire under the host's key) and
 * opens it again after every move. It has no globals: everything it keeps is
 * in its state region, which is what migrates.
 */
#include <stddef.h>
#include "abi.h"
#include "enclave_state.h"
#define USER_ENCLAVE /* user_arch.h: the enclave's call (ecall on RISC-V, SVC on Arm) */
#include "user_arch.h"

/* An SBI call in Keystone's extension: the value, or -error. */
static long ecall(long n, long a0, long a1) {
    struct sbiret r = sbi_call(SBI_EXT_KEYSTONE, n, a0, a1, 0);
    return r.error ? -r.error : r.value;
}

static size_t put(char *b, size_t i, const char *s) { while (*s) b[i++] = *s++; return i; }
static size_t put_n(char *b, size_t i, const char *s, size_t n) { for (size_t k = 0; k < n && s[k]; k++) b[i++] = s[k]; return i; }
static size_t put_dec(char *b, size_t i, uint64_t v) {
    char t[20]; int n = 0;
    do { t[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) b[i++] = t[--n];
    return i;
}
static void print(const char *b, size_t n) { ecall(E_PRINT, (long)b, (long)n); }

#ifdef ENCLAVE_SPIN
/* The test enclave (monitor-hostile.elf, tests/system): after its first step,
 * by its state length, an enclave
 *   1 mod 4: never ends a step (the monitor's timer must take the CPU back);
 *   2 mod 4: spends many time slices on each step, its thread register set,
 *            stops for the host halfway (Keystone's STOP_ENCLAVE, an edge
 *            call), and says so if a resume lost it or any other register;
 *   3 mod 8: reads the FP register the host wrote, and says what it read;
 *   7 mod 8: runs an instruction the monitor's mode traps (PACGA at S-EL0;
 *            csrr mstatus in U-mode), and says so if it survived.
 * Each of the last two must fault the enclave and nothing else. */
static void spin(uint64_t len, uint64_t counter) {
    char line[64];
    size_t n;
    if (len % 4 == 1)
        for (;;) __asm__ volatile("");
    if (len % 4 == 2) {
        uint64_t tls = 0x746c730000000000ull + counter;
        user_tls_set(tls);
        for (volatile uint64_t i = 0; i < 10000000; i++) {}
        if (ecall(E_STOP, 1, 0) != 0) print("STOP FAILED\n", 12); /* an edge call: the host resumes it */
        for (volatile uint64_t i = 0; i < 10000000; i++) {}
        if (user_tls() != tls) print("THREAD REGISTER LOST\n", 21);
    }
    if (len % 8 == 3) {
        n = put_dec(line, 0, user_fp_get());
        line[n++] = '\n';
        print("FP READ ", 8);
        print(line, n);
    }
    if (len % 8 == 7) {
        user_forbidden();
        print("FORBIDDEN INSTRUCTION RAN\n", 26);
    }
}
#endif

static uint64_t digest(const struct enclave_state *s) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over the log and the ballast */
    const uint8_t *p = (const uint8_t *)s->log;
    const uint8_t *end = (const uint8_t *)s + s->len;
    for (; p < end; p++) { h ^= *p; h *= 0x100000001b3ull; }
    return h;
}

__attribute__((section(".text.enclave_entry"), used)) void enclave_entry(struct enclave_state *s, uint64_t len) {
    char host[17], line[160];
    size_t n = 0;
    for (int i = 0; i < 17; i++) host[i] = 0;
    ecall(E_HOSTNAME, (long)host, 0);
    if (s->magic != ENCLAVE_MAGIC) { /* first step of its life */
        s->magic = ENCLAVE_MAGIC;
        s->len = len;
        uint8_t *b = s->ballast;
        for (uint64_t i = 0; i < len - sizeof *s; i++) b[i] = (uint8_t)(i * 131 + 7);
        char note[64];
        size_t k = put(note, 0, "sealed note: born on ");
        k = put_n(note, k, host, 16);
        ecall(E_SEAL, (long)note, (long)k);
        s->unsealed = 1;
        s->check = digest(s);
        n = put(line, 0, "born with ");
        n = put_dec(line, n, len);
        n = put(line, n, " bytes of state; sealed a note\n");
        print(line, n);
    }
    if (digest(s) != s->check) {
        n = put(line, 0, "STATE CORRUPT at counter ");
        n = put_dec(line, n, s->counter);
        n = put(line, n, "\n");
        print(line, n);
        ecall(E_EXIT, 1, 0);
    }
    /* Moved since the last step? Then open the sealed note (re-sealed for this host by the migration). */
    char *last = s->log[(s->log_next + ENCLAVE_LOG - 1) % ENCLAVE_LOG];
    int moved = s->counter > 0;
    for (int i = 0; i < 16 && moved; i++) {
        if (last[i] != host[i]) break;
        if (host[i] == 0 || i == 15) moved = 0;
    }
    if (moved) {
        char note[64];
        long k = ecall(E_UNSEAL, (long)note, sizeof note);
        n = put(line, 0, "arrived on ");
        n = put_n(line, n, host, 16);
        n = put(line, n, " from ");
        n = put_n(line, n, last, 16);
        if (k > 0) {
            n = put(line, n, "; sealed note opens (");
            n = put_dec(line, n, (uint64_t)k);
            n = put(line, n, " bytes)\n");
        } else {
            n = put(line, n, "; SEALED NOTE DOES NOT OPEN\n");
        }
        print(line, n);
    }
#ifdef ENCLAVE_SPIN
    if (s->counter > 0) spin(s->len, s->counter);
#endif
    s->counter++;
    char *e = s->log[s->log_next];
    for (int i = 0; i < 24; i++) e[i] = 0;
    put_n(e, 0, host, 16);
    s->log_next = (s->log_next + 1) % ENCLAVE_LOG;
    uint8_t *b = s->ballast;
    uint64_t blen = s->len - sizeof *s;
    if (blen) b[s->counter % blen] ^= (uint8_t)s->counter;
    s->check = digest(s);
    n = put(line, 0, "counter=");
    n = put_dec(line, n, s->counter);
    n = put(line, n, " state=");
    n = put_dec(line, n, s->len);
    n = put(line, n, "B intact\n");
    print(line, n);
    ecall(E_EXIT, 0, 0);
}
