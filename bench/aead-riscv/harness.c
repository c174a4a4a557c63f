/* Bare-metal QEMU virt harness (run with -icount shift=0 so that minstret
 * counts executed instructions exactly): count retired instructions of
 * ring's AEAD seal on 16 KiB and print instructions per byte on the UART. */
#include <stddef.h>
#include <stdint.h>

uint32_t bench_seal(uint32_t alg, uint8_t *buf, size_t len, uint8_t *tag);

#define UART ((volatile uint8_t *)0x10000000)
#define EXIT ((volatile uint32_t *)0x100000)
static void putc_(char c) { while (!(UART[5] & 0x20)) {} UART[0] = (uint8_t)c; }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void putu(uint64_t v) { char b[24]; int i = 0; do { b[i++] = (char)('0' + v % 10); v /= 10; } while (v); while (i) putc_(b[--i]); }
static inline uint64_t instret(void) { uint64_t v; __asm__ volatile("csrr %0, minstret" : "=r"(v)); return v; }

static uint8_t buf[16384];
static uint8_t tag[16];

void main_c(void) {
    const char *names[2] = {"ChaCha20-Poly1305", "AES-256-GCM"};
    for (uint32_t alg = 0; alg < 2; alg++) {
        bench_seal(alg, buf, sizeof buf, tag); /* warm up */
        uint64_t t0 = instret();
        uint32_t rc = bench_seal(alg, buf, sizeof buf, tag);
        uint64_t n = instret() - t0;
        puts_("aead-riscv: "); puts_(names[alg]); puts_(" seal 16384 B: "); putu(n);
        puts_(" instructions ("); putu(n * 100 / sizeof buf); puts_("/100 per byte) rc="); putu(rc); puts_("\n");
    }
    *EXIT = 0x5555;
    for (;;) {}
}

/* memcpy/memset for the Rust objects (no libc linked). */
void *memcpy(void *d, const void *s, size_t n) { uint8_t *a = d; const uint8_t *b = s; while (n--) *a++ = *b++; return d; }
void *memmove(void *d, const void *s, size_t n) { uint8_t *a = d; const uint8_t *b = s; if (a < b) while (n--) *a++ = *b++; else { a += n; b += n; while (n--) *--a = *--b; } return d; }
void *memset(void *d, int c, size_t n) { uint8_t *a = d; while (n--) *a++ = (uint8_t)c; return d; }
int memcmp(const void *x, const void *y, size_t n) { const uint8_t *a = x, *b = y; for (; n; n--, a++, b++) if (*a != *b) return *a - *b; return 0; }
int bcmp(const void *x, const void *y, size_t n) { return memcmp(x, y, n); }
