/*
 * QEMU virt pflash1 (Intel/Sharp CFI command set, 32-bit bank, 256 KiB
 * blocks), backed by a file on the Linux side so that it survives a killed
 * QEMU. Flash bits only go from 1 to 0 without an erase, which gives a cheap
 * monotonic counter: one programmed word per increment, in a region only
 * M-mode can reach. The host-visible half holds the journal and the enclave
 * checkpoints in pairs of slots, so that replacing a blob is atomic: the new
 * copy goes to the other slot and its header word is programmed last.
 */
#include "monitor.h"

#define BLOCK 0x40000UL
#define SLOT_MAGIC 0x52574231u /* "RWB1" */
#define ERASED 0xffffffffu

static volatile uint32_t *word(uintptr_t addr) { return (volatile uint32_t *)addr; }

static int wait_ready(uintptr_t addr) {
    for (unsigned i = 0; i < 1000000; i++) {
        uint32_t s = *word(addr);
        if (s & 0x80) {
            *word(addr) = 0x00500050; /* clear status */
            *word(addr) = 0x00ff00ff; /* back to read-array mode */
            return (s & 0x30) ? -1 : 0; /* erase / program error bits */
        }
    }
    *word(addr) = 0x00ff00ff;
    return -1;
}

static int program(uintptr_t addr, uint32_t v) {
    if (v == ERASED) return 0;
    *word(addr) = 0x00400040;
    *word(addr) = v;
    return wait_ready(addr);
}

/* Program up to WBUF bytes inside one write buffer with the buffered command
 * (0xE8): QEMU then stores the whole buffer at once instead of a sector write
 * per word, which is what makes megabyte checkpoints affordable. */
#define WBUF 2048u
static int program_buffer(uintptr_t addr, const uint32_t *v, unsigned words) {
    *word(addr) = 0x00e800e8;
    if (!(*word(addr) & 0x80)) { *word(addr) = 0x00ff00ff; return -1; }
    *word(addr) = (words - 1) | (words - 1) << 16;
    for (unsigned i = 0; i < words; i++) *word(addr + 4 * i) = v[i];
    *word(addr) = 0x00d000d0;
    return wait_ready(addr);
}

static int erase_block(uintptr_t addr) {
    *word(addr) = 0x00200020;
    *word(addr) = 0x00d000d0;
    return wait_ready(addr);
}

void flash_init(void) { *word(FLASH_BASE) = 0x00ff00ff; }

/* pflash1 has one command state for both halves, and the host may write
 * commands to its half: it can leave the device in read-status, query or ID
 * mode, or halfway through a command, and M-mode reads would then see status
 * words instead of data. So every entry point below first brings the host's
 * flash device back to read-array mode and checks that it took, by a CFI
 * query: once the device accepts the query command (0x98) every read answers
 * from the query table, "QRY" at 0x10-0x12, whatever the host wrote; a
 * command the host left half-issued swallows the query instead, and reads
 * answer status. Then read-array (0xFF) from that known state. Nothing the
 * host stores can make the check fail for good, and nothing it stores can
 * make it pass early (reads that return content come only in read-array
 * mode, which the 0xFF keeps). On RISC-V the root of trust is on the same
 * device; on Arm it is on pflash0, which only the monitor commands, and its
 * magic is checked as well. The writes go to the host's half: a program
 * command the host left half-issued only lands there. Under attack, a
 * write-to-buffer left open takes up to its 16-bit word count of writes to
 * run out; honest flash needs one try. */
#define RESET_TRIES 0x10004u
static int query_answers(void) {
    return *word(FLASH_HOST + 0x40) == 0x00510051u && *word(FLASH_HOST + 0x44) == 0x00520052u &&
           *word(FLASH_HOST + 0x48) == 0x00590059u; /* "QRY", both 16-bit devices of the bank */
}
static int array_mode(void) {
    const struct rot_blob *r = (const struct rot_blob *)(FLASH_MON + ROT_OFF);
    for (unsigned i = 0; i < RESET_TRIES; i++) {
        *word(FLASH_HOST) = 0x00ff00ff;
        *word(FLASH_HOST) = 0x00980098;
        if (!query_answers()) continue;
        *word(FLASH_HOST) = 0x00ff00ff;
        return memcmp(r->magic, ROT_MAGIC, 8) == 0 ? 0 : -1;
    }
    return -1;
}

static int erase_range(uintptr_t base, size_t len) {
    for (uintptr_t a = base; a < base + len; a += BLOCK) {
        /* skip blocks that are already erased (cheap to check, slow to erase) */
        int dirty = 0;
        for (uintptr_t p = a; p < a + BLOCK; p += 4)
            if (*word(p) != ERASED) { dirty = 1; break; }
        if (dirty && erase_block(a) != 0) return -1;
    }
    return 0;
}

int flash_slot_write(uintptr_t slot_off, const uint8_t *data, size_t len, uint32_t seq, uint32_t tag) {
    uintptr_t base = FLASH_HOST + slot_off;
    size_t size = slot_off < CKPT_SLOT0 ? JOURNAL_SLOT_SIZE : CKPT_SLOT_SIZE;
    if (len + 16 > size || array_mode() != 0) return -1;
    if (erase_range(base, (len + 16 + BLOCK - 1) & ~(BLOCK - 1)) != 0) return -1;
    /* data from base+16, in write-buffer-aligned pieces */
    static uint32_t buf[WBUF / 4];
    size_t i = 0;
    while (i < len) {
        uintptr_t a = base + 16 + i;
        size_t room = WBUF - (a & (WBUF - 1));
        size_t n = len - i < room ? len - i : room;
        unsigned words = (unsigned)((n + 3) / 4);
        for (unsigned w = 0; w < words; w++) {
            uint32_t v = 0;
            for (unsigned k = 0; k < 4; k++) {
                size_t j = i + 4 * w + k;
                v |= (uint32_t)(j < len ? data[j] : 0xff) << (8 * k);
            }
            buf[w] = v;
        }
        if (program_buffer(a, buf, words) != 0) return -1;
        i += n;
    }
    if (program(base + 4, seq) != 0 || program(base + 8, (uint32_t)len) != 0 || program(base + 12, tag) != 0) return -1;
    return program(base, SLOT_MAGIC); /* the copy exists only once this word is written */
}

long flash_slot_read(uintptr_t off, const uint8_t **out, uint32_t *seq) {
    uintptr_t b = FLASH_HOST + off;
    size_t size = off < CKPT_SLOT0 ? JOURNAL_SLOT_SIZE : CKPT_SLOT_SIZE;
    if (array_mode() != 0) return FLASH_ERR;
    if (*word(b) != SLOT_MAGIC) return -1;
    uint32_t n = *word(b + 8);
    if ((size_t)n + 16 > size) return -1;
    *out = (const uint8_t *)(b + 16);
    if (seq) *seq = *word(b + 4);
    return (long)n;
}

long flash_slots_read(uintptr_t s0, uintptr_t s1, const uint8_t **out, uint32_t *seq, uint32_t *tag) {
    long best = -1;
    uint32_t best_seq = 0;
    uintptr_t offs[2] = {s0, s1};
    size_t size = s0 < CKPT_SLOT0 ? JOURNAL_SLOT_SIZE : CKPT_SLOT_SIZE;
    if (array_mode() != 0) return FLASH_ERR;
    for (int k = 0; k < 2; k++) {
        uintptr_t b = FLASH_HOST + offs[k];
        if (*word(b) != SLOT_MAGIC) continue;
        uint32_t s = *word(b + 4), n = *word(b + 8);
        if ((size_t)n + 16 > size) continue;
        if (best < 0 || (int32_t)(s - best_seq) > 0) {
            best = (long)n;
            best_seq = s;
            *out = (const uint8_t *)(b + 16);
            if (tag) *tag = *word(b + 12);
        }
    }
    if (seq) *seq = best_seq;
    return best;
}

int flash_slots_erase(uintptr_t s0, uintptr_t s1) {
    int r = 0;
    if (array_mode() != 0) return -1;
    if (*word(FLASH_HOST + s0) != ERASED) r |= erase_block(FLASH_HOST + s0);
    if (*word(FLASH_HOST + s1) != ERASED) r |= erase_block(FLASH_HOST + s1);
    return r;
}

/* The counter is the number of programmed words: they form a prefix, so binary search. */
int flash_counter_read(uint64_t *out) {
    uintptr_t base = FLASH_MON + COUNTER_OFF;
    uint64_t lo = 0, hi = COUNTER_WORDS; /* answer in [lo, hi] */
    if (array_mode() != 0) return -1;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (*word(base + 4 * mid) != ERASED) lo = mid + 1; else hi = mid;
    }
    *out = lo;
    return 0;
}

int flash_counter_increment(void) {
    uint64_t n;
    if (flash_counter_read(&n) != 0 || n >= COUNTER_WORDS) return -1;
    return program(FLASH_MON + COUNTER_OFF + 4 * n, 0);
}

const struct rot_blob *flash_rot(void) {
    if (array_mode() != 0) return NULL;
    return (const struct rot_blob *)(FLASH_MON + ROT_OFF);
}
