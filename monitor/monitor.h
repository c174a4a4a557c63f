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
int flash_slots_erase(uintptr_t s0, uintptr_t s1);
int flash_counter_read(uint64_t *out);
int flash_counter_increment(void);
const struct rot_blob *flash_rot(void); /* NULL: not provisioned, or flash unreadable */
#endif
