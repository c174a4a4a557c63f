/* The enclave's state as it lies in its memory at ENC_STATE (migrated byte for byte). */
#ifndef REWIRE_ENCLAVE_STATE_H
#define REWIRE_ENCLAVE_STATE_H
#include <stdint.h>
#define ENCLAVE_MAGIC 0x31766e65u /* "env1" */
#define ENCLAVE_LOG 24
struct enclave_state {
    uint32_t magic;
    uint32_t unsealed; /* the sealed note was opened on the current host */
    uint64_t counter;  /* steps taken in the enclave's whole life */
    uint64_t len;      /* total state length (this struct + ballast) */
    uint64_t check;    /* running checksum of everything below */
    char log[ENCLAVE_LOG][24]; /* the last hosts and counters, a ring */
    uint32_t log_next;
    uint32_t pad;
    uint8_t ballast[]; /* up to len: bytes the enclave keeps rewriting */
};
#endif
