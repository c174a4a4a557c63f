/* Internal interfaces of the reference monitor (M-mode). */
#ifndef REWIRE_MONITOR_H
#define REWIRE_MONITOR_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "abi.h"

void sha256(const uint8_t *data, size_t len, uint8_t out[32]);

/* console (UART, shared with the host) */
void con_puts(const char *s);
void con_write(const char *s, size_t n);
void con_hex(const uint8_t *p, size_t n);
void con_dec(uint64_t v);

/* pflash: untrusted storage slots, the monotonic counter, the simulated fuses */
void flash_init(void);
int flash_slot_write(uintptr_t slot_off, const uint8_t *data, size_t len, uint32_t seq, uint32_t tag);
/* Every function below first resets the device to read-array mode and fails
 * (-1, FLASH_ERR or NULL) when it cannot: the host shares its command state. */
/* Latest valid slot of a pair: returns its length (-1 when none, FLASH_ERR when
 * the flash cannot be read), *out = pointer to its data. */
#define FLASH_ERR (-2L)
long flash_slots_read(uintptr_t s0, uintptr_t s1, const uint8_t **out, uint32_t *seq, uint32_t *tag);
/* One slot: its length (-1 when empty or invalid, FLASH_ERR), *out, *seq. */
long flash_slot_read(uintptr_t off, const uint8_t **out, uint32_t *seq);
int flash_slots_erase(uintptr_t s0, uintptr_t s1);
int flash_counter_read(uint64_t *out);
int flash_counter_increment(void);
const struct rot_blob *flash_rot(void); /* NULL: not provisioned, or flash unreadable */

/* entropy.c: the Zkr seed CSR, health-tested, through HMAC_DRBG (SHA-256) */
#define RAW_WORDS 128       /* ES16 samples (2048 raw bits) per request's reseed */
#define WAIT_POLLS 100000u  /* BIST/WAIT reads allowed per request before it fails */
#define RNG_ERR_DEAD 1      /* the source said DEAD: this and every later request fails */
#define RNG_ERR_WAIT 2      /* no ES16 within WAIT_POLLS reads */
#define RNG_ERR_HEALTH 3    /* a health test refused the samples */
typedef uint32_t (*seed_fn)(void); /* one read of the seed CSR (OPST in bits 31:30, entropy in 15:0) */
struct drbg {
    uint8_t k[32], v[32]; /* HMAC_DRBG state */
    uint8_t last[32];     /* SHA-256 of the last raw batch */
    uint64_t batches;
    int seeded, dead;
};
/* len random bytes into out: 0, or an RNG_ERR_* (out zeroed). Never spins. */
int drbg_fill(struct drbg *d, seed_fn src, uint8_t *out, size_t len);
#endif
