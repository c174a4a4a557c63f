/*
 * librewire's reference security monitor for QEMU virt: RISC-V (M-mode) and
 * Arm (EL3). This file is shared by both; arch.h (riscv/, arm/) holds what
 * differs (trap frame, isolation switch, console, entropy source, clocks).
 *
 * It is the trusted part of one host: it boots from the simulated fuses in
 * flash, runs the untrusted host program and one enclave (RISC-V: U-mode,
 * each fenced by PMP; Arm: the host in the normal world, the enclave at
 * secure EL0), and links librewire through include/rewire.h for everything
 * about migration. It holds no protocol logic: each host ecall maps to one
 * librewire call, and the callbacks below are the platform and the enclave
 * framework that librewire asks for (docs/porting.md).
 *
 * Simulated, and said so in docs/porting.md: the root of trust (a device
 * secret in a pflash region only M-mode reaches, provisioned by the Linux
 * side), randomness (the Zkr `seed` CSR or RNDRRS, which QEMU fills from
 * the Linux host's RNG; entropy.c conditions it), trusted wall time (QEMU's
 * goldfish RTC; on Arm the PL031 read at boot) and evidence (an unsigned
 * report that librewire's signed READY carries).
 */
#include "monitor.h"
#include "arch.h"
#include "enclave_state.h"
#include "rewire.h"

/* ---------------------------------------------------------------- console */
static void con_putc(char c) { arch_con_putc(c); }
void con_write(const char *s, size_t n) { for (size_t i = 0; i < n; i++) con_putc(s[i]); }
void con_puts(const char *s) { while (*s) con_putc(*s++); }
void con_hex(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) { con_putc("0123456789abcdef"[p[i] >> 4]); con_putc("0123456789abcdef"[p[i] & 15]); }
}
void con_dec(uint64_t v) {
    char b[21]; int i = 20; b[i] = 0;
    do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    con_puts(b + i);
}
static void say(const char *s) { con_puts("[monitor] "); con_puts(s); }
static void poweroff(uint32_t code) __attribute__((noreturn));
static void poweroff(uint32_t code) {
    arch_poweroff(code);
    for (;;) {}
}

/* ------------------------------------------------------------ trap frames */
/* struct frame, enter_user and the isolation switches are in arch.h. */
extern char __enc_code_start[], __enc_code_end[], __host_entry[], __mon_text_start[], __mon_image_end[];
extern char __host_stack_top[];

/* ------------------------------------------------------- platform (librewire) */
/* The entropy source (arch.h: the Zkr seed CSR, or RNDRRS in the same format). */
#ifdef FAULT_SEED_DEAD /* tests only (monitor-deadseed.elf): the source goes DEAD once an enclave is launched */
static int seed_dead;
#endif
static uint32_t seed_csr(void) {
#ifdef FAULT_SEED_DEAD
    if (seed_dead) return 3u << 30;
#endif
    return arch_seed();
}
/* Random bytes only from the DRBG (entropy.c), which reseeds from the seed CSR
 * before every request. A failure reaches librewire as non-zero: the
 * operation that wanted randomness fails closed (never a spin). */
static struct drbg rng;
static uint32_t random_fill(void *u, uint8_t *buf, size_t len) {
    (void)u;
    static int said;
    int r = drbg_fill(&rng, seed_csr, buf, len);
    if (r != 0 && !said) {
        said = 1;
        say(r == RNG_ERR_DEAD ? "entropy source DEAD: every random request fails\n"
            : r == RNG_ERR_WAIT ? "entropy source not ready: random request failed\n"
                                : "entropy source failed its health test: random request failed\n");
    }
    return r == 0 ? 0 : 1;
}
/* A monotonic clock that is not MMIO (arch.h): a guest that polls MMIO in a
 * loop holds QEMU's global lock and starves its I/O thread. */
static uint64_t now_ms(void) { return arch_now_ms(); }
static uint64_t monotonic_ms(void *u) { (void)u; return now_ms(); }
static uint32_t wall_time(void *u, uint64_t *out) {
    (void)u;
    *out = arch_wall_seconds();
    return 0;
}
static uint32_t journal_seq;
static uint32_t journal_read(void *u, uint8_t *buf, size_t cap, size_t *out_len) {
    (void)u;
    const uint8_t *p;
    long n = flash_slots_read(JOURNAL_SLOT0, JOURNAL_SLOT1, &p, &journal_seq, NULL);
    if (n == FLASH_ERR) return 1;
    if (n < 0) { *out_len = 0; return 0; }
    *out_len = (size_t)n;
    if ((size_t)n > cap) return 1;
    memcpy(buf, p, (size_t)n);
    return 0;
}
static uint32_t journal_write(void *u, const uint8_t *buf, size_t len) {
    (void)u;
    const uint8_t *p;
    uint32_t seq;
    long cur = flash_slots_read(JOURNAL_SLOT0, JOURNAL_SLOT1, &p, &seq, NULL);
    if (cur == FLASH_ERR) return 1;
    uintptr_t slot = JOURNAL_SLOT0;
    if (cur >= 0 && p == (const uint8_t *)(FLASH_HOST + JOURNAL_SLOT0 + 16)) slot = JOURNAL_SLOT1;
    return flash_slot_write(slot, buf, len, cur >= 0 ? seq + 1 : 1, 0) == 0 ? 0 : 1;
}
static uint32_t counter_read(void *u, uint64_t *out) { (void)u; return flash_counter_read(out) == 0 ? 0 : 1; }
static uint32_t counter_increment(void *u, uint64_t *out) {
    (void)u;
    if (flash_counter_increment() != 0) return 1;
    return flash_counter_read(out) == 0 ? 0 : 1;
}

/* ------------------------------------------------- enclave framework (librewire) */
/* ENC_SLOTS enclave slots (abi.h), each with its own memory, sealed data and
 * pair of checkpoint slots on flash; librewire keeps every enclave's record
 * in the one journal. A slot is found by the enclave id librewire names. */
#define SEALED_MAX 4096
struct slot {
    int present;         /* holds an enclave (launched, imported or restored) */
    int running;         /* librewire resumed it; 0 while it is paused for a migration */
    int interrupted;     /* the timer preempted a step: ctx holds it until H_RESUME */
    int fresh;           /* the checkpoint on flash is of the enclave as it is now */
    int ckpt_owed;       /* a checkpoint librewire's state calls for did not reach flash */
    int had;             /* last_id: the enclave this slot held last, to say what became of it */
    uint8_t id[16], last_id[16];
    uint64_t code_len, state_len, sealed_len;
    uint8_t sealed[SEALED_MAX];
    uintptr_t ckpt_committed; /* which of its two checkpoint slots holds the committed blob; 0: none known */
    struct frame ctx;         /* the preempted step's registers */
    uint64_t tls;             /* and its thread register (Arm TPIDR_EL0; RISC-V's tp is in ctx) */
};
static struct slot slots[ENC_SLOTS];
static int cur = -1; /* the slot whose enclave runs now; -1 while the host runs */
static uint8_t pristine[ENC_CODE_MAX]; /* the built-in enclave, copied out at boot */
static uint64_t pristine_len;
static uint8_t enc_measurement[32];
static uint8_t sm_measurement[32]; /* the boot stage's, of the whole image (.bss: not part of it) */

static int index_of(const struct slot *s) { return (int)(s - slots); }
static uint8_t *slot_mem(const struct slot *s) { return (uint8_t *)ENC_SLOT(index_of(s)); }
static struct slot *slot_of(const uint8_t *id) {
    for (int i = 0; i < ENC_SLOTS; i++)
        if (slots[i].present && memcmp(slots[i].id, id, 16) == 0) return &slots[i];
    return NULL;
}
static struct slot *slot_free(void) {
    for (int i = 0; i < ENC_SLOTS; i++)
        if (!slots[i].present) return &slots[i];
    return NULL;
}
/* Empty the slot: its memory, its sealed data and any preempted registers.
 * What it held last and where its committed checkpoint is stay. */
static void slot_wipe(struct slot *s) {
    uint8_t last[16];
    int had = s->had;
    uintptr_t committed = s->ckpt_committed;
    memcpy(last, s->last_id, 16);
    memset(slot_mem(s), 0, ENC_SLOT_SIZE);
    memset(s, 0, sizeof *s);
    memcpy(s->last_id, last, 16);
    s->had = had;
    s->ckpt_committed = committed;
}
static void slot_take(struct slot *s, const uint8_t *id) {
    slot_wipe(s);
    s->present = 1;
    memcpy(s->id, id, 16);
    memcpy(s->last_id, id, 16);
    s->had = 1;
}
static uint32_t fw_pause(void *u, const uint8_t *id) {
    (void)u;
    struct slot *s = slot_of(id);
    /* Mid-step (preempted), the enclave's registers are part of its state, and
     * only its memory migrates: it pauses once the step has ended. */
    if (!s || s->interrupted) return 1;
    s->running = 0;
    s->fresh = 0;
    return 0;
}
static uint32_t fw_resume(void *u, const uint8_t *id) {
    (void)u;
    struct slot *s = slot_of(id);
    if (!s) return 1;
    s->running = 1;
    s->fresh = 0;
    return 0;
}
static uint32_t fw_destroy(void *u, const uint8_t *id) {
    (void)u;
    struct slot *s = slot_of(id);
    if (s) {
        int i = index_of(s);
        slot_wipe(s);
        flash_slots_erase(CKPT_SLOT(i, 0), CKPT_SLOT(i, 1));
        s->ckpt_committed = 0;
    }
    return 0;
}
static uint8_t *section(struct slot *s, uint32_t sec, uint64_t *len, uint64_t *cap) {
    switch (sec) {
    case REWIRE_SECTION_CODE: *len = s->code_len; *cap = ENC_CODE_MAX; return slot_mem(s);
    case REWIRE_SECTION_STATE: *len = s->state_len; *cap = ENC_STATE_MAX; return slot_mem(s) + ENC_STATE_OFF;
    case REWIRE_SECTION_SEALED: *len = s->sealed_len; *cap = SEALED_MAX; return s->sealed;
    default: return NULL;
    }
}
static uint32_t fw_export_len(void *u, const uint8_t *id, uint32_t sec, uint64_t *out) {
    (void)u;
    uint64_t cap;
    struct slot *s = slot_of(id);
    if (!s || !section(s, sec, out, &cap)) return 1;
    return 0;
}
static uint32_t fw_export(void *u, const uint8_t *id, uint32_t sec, uint64_t off, uint8_t *buf, size_t len, size_t *out) {
    (void)u;
    uint64_t n, cap;
    uint8_t *p;
    struct slot *s = slot_of(id);
    if (!s || !(p = section(s, sec, &n, &cap)) || off > n) return 1;
    size_t k = (size_t)(n - off) < len ? (size_t)(n - off) : len;
    memcpy(buf, p + off, k);
    *out = k;
    return 0;
}
static uint32_t fw_import(void *u, const uint8_t *id, uint32_t sec, uint64_t off, const uint8_t *d, size_t len) {
    (void)u;
    struct slot *s = slot_of(id);
    if (!s) { /* a new, paused enclave, in a free slot */
        if (!(s = slot_free())) return 1;
        slot_take(s, id);
    } else if (s->running || s->interrupted) {
        return 1; /* never overwrite a runnable enclave */
    }
    uint64_t n, cap;
    uint8_t *p = section(s, sec, &n, &cap);
    if (!p || off > cap || len > cap - off) return 1;
    memcpy(p + off, d, len);
    s->fresh = 0;
    if (off + len > n) {
        if (sec == REWIRE_SECTION_CODE) s->code_len = off + len;
        else if (sec == REWIRE_SECTION_STATE) s->state_len = off + len;
        else s->sealed_len = off + len;
    }
    return 0;
}
static uint32_t fw_measure(void *u, const uint8_t *id, uint8_t *out) {
    (void)u;
    struct slot *s = slot_of(id);
    if (!s) return 1;
    sha256(slot_mem(s), (size_t)s->code_len, out);
    return 0;
}
static uint32_t fw_attest(void *u, const uint8_t *id, const uint8_t *rd, uint8_t *buf, size_t cap, size_t *out) {
    static const char tag[] = "rewire-qemu-sim-report/v1";
    size_t n = sizeof tag - 1;
    if (cap < n + 64) return 1;
    memcpy(buf, tag, n);
    if (fw_measure(u, id, buf + n) != 0) return 1;
    memcpy(buf + n + 32, rd, 32);
    *out = n + 64;
    return 0;
}

/* ------------------------------------------------------------- checkpoints
 * The framework keeps a durable copy of each enclave wherever librewire may
 * later resume it after a crash (docs/porting.md): at launch, when it is
 * frozen for a migration, and when an import becomes PENDING. librewire's
 * state-continuity calls decide which copy may be resumed (protocol.md
 * §8.5): the image is sealed (rewire_monitor_checkpoint_seal), written to
 * one of its slot's two checkpoint slots on untrusted flash, and only then
 * committed (rewire_monitor_checkpoint_commit), which anchors that exact
 * blob in the counter-protected journal. On restart only the committed blob
 * opens (rewire_monitor_checkpoint_open): an older copy, another enclave's,
 * one sealed but never committed, or one from before the enclave left and
 * came back is refused. The monitor remembers which slot holds the
 * committed blob and always writes the *other*: a crash or a failed commit
 * between a write and its commit leaves the committed blob untouched, and
 * restore, which tries the slot with the higher sequence number first,
 * falls back to it. The enclave id stays in clear in front of the blob (to
 * ask librewire about it); librewire, not the id, decides. Where a blob
 * lies says nothing either: a committed blob found in another enclave
 * slot's place restores there, and a second copy of an enclave already
 * restored is refused.
 *
 * What this reference monitor does not do: checkpoint the enclave's own
 * progress between migrations. After a power cut it resumes the enclave
 * from its last checkpoint (launch, freeze, import), so counter values it
 * printed after that are printed again. A framework whose enclaves release
 * output must checkpoint (and commit) before releasing it.
 */
static rewire_monitor *mon;
#define CKPT_MAX (ENC_CODE_MAX + ENC_STATE_MAX + SEALED_MAX + 32)
static uint8_t ckpt_plain[CKPT_MAX];
static uint8_t ckpt_blob[CKPT_SLOT_SIZE - 16]; /* id[16] and the sealed blob: what one checkpoint slot holds */

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* A slot's sequence number, 0 when it holds nothing. */
static uint32_t slot_seq(uintptr_t off) {
    const uint8_t *p;
    uint32_t seq = 0;
    return flash_slot_read(off, &p, &seq) >= 0 ? seq : 0;
}

static int checkpoint(struct slot *s, int at_launch) {
    if (!s->present) return -1;
    int i = index_of(s);
    uint8_t *p = ckpt_plain;
    put32(p, 0x4b435752); put32(p + 4, (uint32_t)s->code_len); put32(p + 8, (uint32_t)s->state_len);
    put32(p + 12, (uint32_t)s->sealed_len); memcpy(p + 16, s->id, 16);
    size_t n = 32;
    memcpy(p + n, slot_mem(s), s->code_len); n += s->code_len;
    memcpy(p + n, slot_mem(s) + ENC_STATE_OFF, s->state_len); n += s->state_len;
    memcpy(p + n, s->sealed, s->sealed_len); n += s->sealed_len;
    size_t blen = 0;
    memcpy(ckpt_blob, s->id, 16);
    uint32_t r = rewire_monitor_checkpoint_seal(mon, s->id, ckpt_plain, n, ckpt_blob + 16, sizeof ckpt_blob - 16, &blen);
    memset(ckpt_plain, 0, n);
    if (r != REWIRE_OK) return -(int)r;
    uintptr_t c0 = CKPT_SLOT(i, 0), c1 = CKPT_SLOT(i, 1);
    uintptr_t to = s->ckpt_committed == c0 ? c1 : c0;
    uint32_t s0 = slot_seq(c0), s1 = slot_seq(c1);
    uint32_t seq = ((int32_t)(s0 - s1) > 0 ? s0 : s1) + 1; /* the newest on flash: restore tries it first */
#ifdef FAULT_CHECKPOINT /* tests only (monitor-faulty.elf): every checkpoint after the launch's fails to reach flash */
    if (!at_launch) return -1;
#else
    (void)at_launch;
#endif
    if (flash_slot_write(to, ckpt_blob, blen + 16, seq, 0) != 0) return -1;
    r = rewire_monitor_checkpoint_commit(mon, s->id, ckpt_blob + 16, blen);
    if (r != REWIRE_OK) return -(int)r;
    s->ckpt_committed = to;
    s->fresh = 1;
    return 0;
}

/* Open one checkpoint slot's blob into ckpt_plain: its length, or 0. */
static size_t open_slot(uintptr_t off, uint32_t *state) {
    const uint8_t *p;
    long n = flash_slot_read(off, &p, NULL);
    if (n < 16 || (size_t)n > sizeof ckpt_blob) return 0;
    memcpy(ckpt_blob, p, (size_t)n); /* the slot is on flash the host can write: librewire reads a copy */
    uint64_t epoch;
    if (rewire_monitor_status(mon, ckpt_blob, state, &epoch) != REWIRE_OK ||
        !(*state == REWIRE_STATE_RUNNING || *state == REWIRE_STATE_FROZEN || *state == REWIRE_STATE_PENDING))
        return 0;
    size_t len = 0;
    uint32_t r = rewire_monitor_checkpoint_open(mon, ckpt_blob, ckpt_blob + 16, (size_t)n - 16, ckpt_plain,
                                                sizeof ckpt_plain, &len);
    if (r != REWIRE_OK) {
        say("checkpoint slot refused: ");
        con_puts(rewire_result_text(r));
        con_puts("\n");
        memset(ckpt_plain, 0, sizeof ckpt_plain);
        return 0;
    }
    uint64_t cl = len < 32 ? 0 : get32(ckpt_plain + 4), sl = len < 32 ? 0 : get32(ckpt_plain + 8),
             zl = len < 32 ? 0 : get32(ckpt_plain + 12);
    if (len < 32 || get32(ckpt_plain) != 0x4b435752 || cl > ENC_CODE_MAX || sl > ENC_STATE_MAX || zl > SEALED_MAX ||
        32 + cl + sl + zl != len || memcmp(ckpt_plain + 16, ckpt_blob, 16) != 0) {
        say("checkpoint slot refused: not an image of this monitor\n");
        memset(ckpt_plain, 0, sizeof ckpt_plain);
        return 0;
    }
    return len;
}

/* Restore at boot. Each slot's pair of copies is on flash the host can
 * write, so where a blob lies says nothing: a committed blob may sit in
 * another slot's place, and copies of it in several. First every copy is
 * opened (librewire opens only an enclave's committed blob) and the enclave
 * it belongs to noted; then each slot takes at most one copy, each enclave is
 * taken at most once, and the choice restores as many enclaves as the copies
 * allow (newer copies preferred among equals): a copy of one slot's blob in
 * another's place can neither hide that slot's own blob nor restore an
 * enclave twice. A copy not taken is never the one a slot writes over first
 * unless it is a second copy of an enclave restored elsewhere. */
static void restore_copy(struct slot *s, uintptr_t from) {
    uint32_t state = 0;
    size_t len = open_slot(from, &state);
    if (len == 0) return; /* opened a moment ago: only a flash failure gets here */
    uint64_t cl = get32(ckpt_plain + 4), sl = get32(ckpt_plain + 8), zl = get32(ckpt_plain + 12);
    slot_take(s, ckpt_blob);
    s->ckpt_committed = from;
    memcpy(slot_mem(s), ckpt_plain + 32, cl);
    memcpy(slot_mem(s) + ENC_STATE_OFF, ckpt_plain + 32 + cl, sl);
    memcpy(s->sealed, ckpt_plain + 32 + cl + sl, zl);
    s->code_len = cl; s->state_len = sl; s->sealed_len = zl;
    s->fresh = 1;
    memset(ckpt_plain, 0, len);
    say("enclave restored from its checkpoint into slot ");
    con_dec((uint64_t)index_of(s));
    con_puts(state == REWIRE_STATE_PENDING ? " (pending)\n" : state == REWIRE_STATE_FROZEN ? " (frozen)\n" : " (running)\n");
}
static void restore(void) {
    uint8_t id[ENC_SLOTS][2][16];
    int opens[ENC_SLOTS][2], newer[ENC_SLOTS];
    for (int i = 0; i < ENC_SLOTS; i++) {
        uint32_t s0 = slot_seq(CKPT_SLOT(i, 0)), s1 = slot_seq(CKPT_SLOT(i, 1));
        newer[i] = (int32_t)(s0 - s1) >= 0 ? 0 : 1;
        for (int k = 0; k < 2; k++) {
            uint32_t state = 0;
            size_t len = (k ? s1 : s0) ? open_slot(CKPT_SLOT(i, k), &state) : 0;
            opens[i][k] = len > 0;
            if (len) memcpy(id[i][k], ckpt_blob, 16);
            memset(ckpt_plain, 0, len);
        }
    }
    /* Every choice (none, copy 0, copy 1 per slot): 3^ENC_SLOTS of them. */
    unsigned n = 1, best = 0;
    int best_score = -1;
    for (int i = 0; i < ENC_SLOTS; i++) n *= 3;
    for (unsigned c = 0; c < n; c++) {
        int pick[ENC_SLOTS], score = 0, ok = 1;
        unsigned x = c;
        for (int i = 0; i < ENC_SLOTS; i++, x /= 3) {
            pick[i] = (int)(x % 3) - 1;
            if (pick[i] >= 0 && !opens[i][pick[i]]) ok = 0;
        }
        for (int i = 0; ok && i < ENC_SLOTS; i++)
            for (int j = i + 1; ok && j < ENC_SLOTS; j++)
                if (pick[i] >= 0 && pick[j] >= 0 && memcmp(id[i][pick[i]], id[j][pick[j]], 16) == 0) ok = 0;
        if (!ok) continue;
        for (int i = 0; i < ENC_SLOTS; i++)
            if (pick[i] >= 0) score += 2 * ENC_SLOTS + (pick[i] == newer[i]);
        if (score > best_score) { best_score = score; best = c; }
    }
    int picks[ENC_SLOTS];
    for (int i = 0; i < ENC_SLOTS; i++, best /= 3) {
        picks[i] = (int)(best % 3) - 1;
        if (picks[i] >= 0) restore_copy(&slots[i], CKPT_SLOT(i, picks[i]));
    }
    for (int i = 0; i < ENC_SLOTS; i++) {
        struct slot *s = &slots[i];
        for (int k = 0; k < 2; k++)
            if (opens[i][k] && k != picks[i])
                say(slot_of(id[i][k]) ? "checkpoint refused: a second copy of an enclave restored already\n"
                                      : "checkpoint not restored: its slot holds another enclave's\n");
        if (picks[i] >= 0) continue;
        if (opens[i][0] || opens[i][1] || slot_seq(CKPT_SLOT(i, 0)) || slot_seq(CKPT_SLOT(i, 1))) {
            say("no checkpoint to restore in slot ");
            con_dec((uint64_t)i);
            con_puts("\n");
        }
        /* The next checkpoint here goes over a second copy, never over a copy
         * that did not open (it may be what a crash left half-committed). */
        if (opens[i][0] != opens[i][1]) s->ckpt_committed = CKPT_SLOT(i, opens[i][0] ? 1 : 0);
    }
}

/* Copy-in, copy-out (docs/porting.md §2.7). librewire never gets a pointer
 * into host or enclave memory: every input is first copied into M-mode
 * memory (region check, then a cap, each with its own error: copy_in below),
 * and every output is built in M-mode memory and copied out after the call.
 * librewire reads its input during a call (parses, checks a signature, reads
 * the same bytes again) and must not see it change: on a platform whose DMA
 * masters or other harts the host controls may write host memory at any
 * time, only a private copy is stable. */
static uint8_t xin[48 + PEER_BYTES_MAX]; /* the largest input: H_PEER */
static uint8_t xout[49 + OUT_MAX];      /* the largest output: H_POLL_OUT */

/* ------------------------------------------------------------ event queue
 * After every librewire call the monitor takes the progress events itself
 * (and makes the enclaves durable where an event calls for it) before the
 * host can relay any output: a READY or a ClientHello never leaves before
 * the checkpoint it depends on is on flash.
 *
 * When that checkpoint does not reach flash, the migration must not go on
 * (a crash would leave no copy anywhere once the source has READY). The
 * checkpoint is then owed for as long as librewire holds the enclave FROZEN
 * or PENDING here, and while it is owed no output leaves: the monitor takes
 * every queued output itself, drops it and closes its channel
 * (rewire_monitor_peer_closed). That is only what an untrusted relay may do
 * anyway, so librewire stays safe, and it stops the migration at once: a
 * source aborts and resumes its enclave; a target keeps its PENDING copy
 * unreleased (its READY never left) until the SDS settles it. Every later
 * call retries the checkpoint. The host gets MON_ERR_NOT_DURABLE. (The
 * output queue is the monitor's, not an enclave's: while one enclave's
 * checkpoint is owed, the other enclaves' migrations are held back too.)
 */
#define EVQ 64
static uint8_t evq[EVQ][24];
static unsigned ev_head, ev_tail;
static const char *event_name(uint32_t e) {
    static const char *names[] = {"?", "validated", "frozen", "channel up", "offered", "offer accepted",
                                  "target verified", "stream done", "pending ready", "committed", "activated",
                                  "aborted", "dropped"};
    return e < sizeof names / sizeof names[0] ? names[e] : "?";
}
/* Whether librewire would resume the slot's enclave after a crash from a checkpoint taken now. */
static int held(const struct slot *s) {
    uint32_t st = 0;
    uint64_t ep;
    return s->present && rewire_monitor_status(mon, s->id, &st, &ep) == REWIRE_OK &&
           (st == REWIRE_STATE_FROZEN || st == REWIRE_STATE_PENDING);
}
/* Every enclave librewire holds FROZEN or PENDING whose checkpoint is not of it as it is now. */
static void checkpoint_due(void) {
    for (int i = 0; i < ENC_SLOTS; i++) {
        struct slot *s = &slots[i];
        if (s->fresh || !held(s)) continue;
        int r = checkpoint(s, 0);
        if (r != 0) s->ckpt_owed = 1;
        say(r == 0 ? "checkpoint on flash\n" : "CHECKPOINT FAILED: withholding the migration\n");
    }
}
static void take_events(void) {
    uint32_t e, why;
    uint8_t req[16];
    while (rewire_monitor_poll_event(mon, &e, req, &why) == REWIRE_OK) {
        say("event: ");
        con_puts(event_name(e));
        if (e == REWIRE_EVENT_ABORTED) { con_puts(" ("); con_puts(rewire_result_text(why)); con_puts(")"); }
        con_puts("\n");
        if (e == REWIRE_EVENT_FROZEN || e == REWIRE_EVENT_PENDING_READY) checkpoint_due();
        if (ev_tail - ev_head < EVQ) {
            uint8_t *q = evq[ev_tail++ % EVQ];
            put32(q, e); memcpy(q + 4, req, 16); put32(q + 20, why);
        }
    }
}
/* Whether a checkpoint is still owed; forgets those librewire no longer needs. */
static int owed(void) {
    int any = 0;
    for (int i = 0; i < ENC_SLOTS; i++) {
        if (slots[i].ckpt_owed && !held(&slots[i])) slots[i].ckpt_owed = 0;
        any |= slots[i].ckpt_owed;
    }
    return any;
}
static int owed_now(void) { /* the flags alone, as drain_events left them */
    int any = 0;
    for (int i = 0; i < ENC_SLOTS; i++) any |= slots[i].ckpt_owed;
    return any;
}
/* Drop every queued output and close the channel of each (bounded: closing ends a stream). */
static void withhold_output(void) {
    uint8_t host[32], conn[16];
    for (unsigned i = 0; i < 256; i++) {
        uint32_t dest = 0;
        size_t n = 0;
        if (rewire_monitor_poll_output(mon, &dest, host, conn, xout, sizeof xout, &n) != REWIRE_OK) break;
        if (dest == REWIRE_DEST_PEER) {
            uint32_t closed = rewire_monitor_peer_closed(mon, conn); /* fails only for an unknown channel */
            (void)closed;
        }
    }
}
/* After every librewire call: 0, or -MON_ERR_NOT_DURABLE when output was withheld. */
static int64_t drain_events(void) {
    unsigned retry = 0; /* owed from an earlier call: try again */
    owed();
    for (int i = 0; i < ENC_SLOTS; i++)
        if (slots[i].ckpt_owed) retry |= 1u << i;
    take_events();
    owed();
    for (int i = 0; i < ENC_SLOTS; i++) {
        if ((retry >> i & 1) && slots[i].ckpt_owed && checkpoint(&slots[i], 0) == 0) {
            slots[i].ckpt_owed = 0;
            say("checkpoint on flash (retried)\n");
        }
    }
    if (!owed_now()) return 0;
    withhold_output();
    take_events(); /* what closing did: a source aborts and resumes its enclave */
    if (owed()) withhold_output(); /* still owed: what closing queued stays here too */
    /* else aborted: its own messages (ABORT to the SDS) may leave */
    return -MON_ERR_NOT_DURABLE;
}

/* ---------------------------------------------------------------- calls */
static int host_ptr(uint64_t p, uint64_t n) { return p >= HOST_BASE && n <= HOST_SIZE && p - HOST_BASE <= HOST_SIZE - n; }
/* Inside the running enclave's own slot (not another slot's). */
static int enc_ptr(uint64_t p, uint64_t n) {
    uint64_t b = ENC_SLOT(cur);
    return cur >= 0 && p >= b && n <= ENC_SLOT_SIZE && p - b <= ENC_SLOT_SIZE - n;
}
static int64_t rc(uint32_t r) { return r == REWIRE_OK ? 0 : -(int64_t)r; }

/* n bytes of host memory at p into xin: MON_ERR_BAD_POINTER outside the host region, MON_ERR_TOO_LARGE over cap. */
static int64_t copy_in(uint64_t p, uint64_t n, uint64_t cap) {
    if (!host_ptr(p, n)) return -MON_ERR_BAD_POINTER;
    if (n > cap) return -MON_ERR_TOO_LARGE;
    memcpy(xin, (const void *)p, (size_t)n);
    return 0;
}
/* Room for an output of a host buffer of `cap` bytes with `head` bytes in front: the smaller of its and ours. */
static size_t out_room(uint64_t cap, size_t head) { return (size_t)(cap < sizeof xout ? cap : sizeof xout) - head; }

/* Returning from a call: SBI's a0 = error, a1 = value. r < 0 is -error. */
#define RET_NOT_SUPPORTED INT64_MIN
static void sbi_ret(struct frame *f, int64_t r) {
    if (r == RET_NOT_SUPPORTED) { f->x[R_ARG0] = (uint64_t)(int64_t)SBI_ERR_NOT_SUPPORTED; f->x[R_ARG1] = 0; }
    else if (r < 0) { f->x[R_ARG0] = (uint64_t)-r; f->x[R_ARG1] = 0; }
    else { f->x[R_ARG0] = 0; f->x[R_ARG1] = (uint64_t)r; }
}

static struct frame host_ctx; /* the host while an enclave runs */
#define QUANTUM_MS 10 /* an enclave runs at most this long before the host gets the CPU back */
static void enter_enclave(struct frame *f, struct slot *s, int resume) {
    int i = index_of(s);
    host_ctx = *f;
    if (resume) { /* the preempted step, exactly where the timer stopped it */
        *f = s->ctx;
        memset(&s->ctx, 0, sizeof s->ctx);
        s->interrupted = 0;
    } else { /* nothing of the host's registers reaches the enclave (FP: arch_isolate_enclave) */
        memset(f, 0, sizeof *f);
        arch_frame_init(f, ENC_SLOT(i), ENC_SLOT(i) + ENC_STACK_OFF, 1);
        f->x[R_ARG0] = ENC_SLOT(i) + ENC_STATE_OFF;
        f->x[R_ARG1] = s->state_len;
    }
    s->fresh = 0;
    cur = i;
    arch_isolate_enclave(ENC_SLOT(i), ENC_SLOT_SIZE);
    if (resume) {
        arch_set_user_tls(s->tls);
        s->tls = 0;
    }
    arch_timer_arm(QUANTUM_MS);
}
static void leave_enclave(struct frame *f, int64_t result) {
    arch_timer_disarm();
    *f = host_ctx; /* nothing of the enclave's registers reaches the host */
    sbi_ret(f, result);
    arch_call_done(f);
    cur = -1;
    arch_isolate_host();
}
/* The timer fired in the enclave, or it stopped itself (E_STOP): keep its
 * registers for H_RESUME, give the host the CPU with `why`. */
static void preempt(struct frame *f, int64_t why) {
    slots[cur].ctx = *f;
    slots[cur].tls = arch_user_tls();
    slots[cur].interrupted = 1;
    leave_enclave(f, why);
}
/* A slot number from the host: the slot, or NULL. */
static struct slot *slot_at(uint64_t i) { return i < ENC_SLOTS ? &slots[i] : NULL; }
/* Why the slot's enclave may not run now: 0 when it may. */
static int64_t not_runnable(struct slot *s) {
    if (!s) return -KS_ERR_INVALID_ID;
    if (!s->present || !rewire_monitor_may_run(mon, s->id) || !s->running) {
        uint32_t st = 0;
        uint64_t ep = 0;
        if (!s->had || rewire_monitor_status(mon, s->last_id, &st, &ep) != REWIRE_OK) return -MON_ERR_NO_ENCLAVE;
        return st == REWIRE_STATE_MIGRATED ? -REWIRE_ERR_MIGRATED : -MON_ERR_NOT_RUNNABLE;
    }
    return 0;
}

static int64_t host_call(struct frame *f, uint64_t fid) {
    uint64_t a0 = f->x[R_ARG0], a1 = f->x[R_ARG1], a2 = f->x[R_ARG2];
    int64_t e;
    switch (fid) {
    case H_INFO: {
        size_t clen = 0;
        if (!host_ptr(a0, a1) || a1 < 96) return -MON_ERR_BAD_POINTER;
        uint32_t r = rewire_monitor_host_id(mon, xout);
        if (r != REWIRE_OK) return rc(r);
        memcpy(xout + 32, sm_measurement, 32);
        memcpy(xout + 64, enc_measurement, 32);
        r = rewire_monitor_certificate(mon, xout + 96, out_room(a1, 96), &clen);
        if (r != REWIRE_OK) return rc(r);
        memcpy((void *)a0, xout, 96 + clen);
        return (int64_t)(96 + clen);
    }
    case H_LAUNCH: {
        if (a1 < 16) return -MON_ERR_BAD_POINTER;
        if ((e = copy_in(a0, a1, 16 + POLICY_MAX)) != 0) return e;
        if (slot_of(xin)) return -REWIRE_ERR_BUSY;
        if (a2 < sizeof(struct enclave_state) || a2 > ENC_STATE_MAX) return -KS_ERR_ILLEGAL_ARGUMENT;
        struct slot *s = slot_free();
        if (!s) return -KS_ERR_NO_FREE_RESOURCE;
        slot_take(s, xin);
        memcpy(slot_mem(s), pristine, pristine_len);
        s->code_len = pristine_len;
        s->state_len = a2;
        uint32_t r = rewire_monitor_install(mon, xin + 16, a1 - 16);
        if (r != REWIRE_OK) { slot_wipe(s); return rc(r); }
        int c = checkpoint(s, 1);
        say(c == 0 ? "enclave launched; checkpoint on flash\n" : "enclave launched; CHECKPOINT FAILED\n");
#ifdef FAULT_SEED_DEAD
        seed_dead = 1;
#endif
        drain_events();
        return index_of(s);
    }
    case H_DESTROY: {
        struct slot *s = slot_at(a0);
        if (!s || !s->present) return -KS_ERR_INVALID_ID;
        return -KS_ERR_NOT_DESTROYABLE; /* only the SDS ends an enclave: librewire destroys it once it has moved */
    }
    case H_SDS: {
        if ((e = copy_in(a0, a1, SDS_MSG_MAX)) != 0) return e;
        uint32_t r = rewire_monitor_handle_sds(mon, xin, a1);
        e = drain_events();
        return r != REWIRE_OK ? rc(r) : e;
    }
    case H_PEER: {
        if (a1 < 48) return -MON_ERR_BAD_POINTER;
        if ((e = copy_in(a0, a1, 48 + PEER_BYTES_MAX)) != 0) return e;
        uint32_t r = rewire_monitor_handle_peer(mon, xin, xin + 32, xin + 48, a1 - 48);
        e = drain_events();
        return r != REWIRE_OK ? rc(r) : e;
    }
    case H_CLOSED: {
        if ((e = copy_in(a0, 16, 16)) != 0) return e;
        uint32_t r = rewire_monitor_peer_closed(mon, xin);
        e = drain_events();
        return r != REWIRE_OK ? rc(r) : e;
    }
    case H_TICK: {
        uint32_t r = rewire_monitor_tick(mon);
        e = drain_events();
        return r != REWIRE_OK ? rc(r) : e;
    }
    case H_POLL_OUT: {
        if (!host_ptr(a0, a1) || a1 < 49) return -MON_ERR_BAD_POINTER;
        if (owed_now()) return -MON_ERR_NOT_DURABLE; /* drain_events took it all; nothing leaves meanwhile */
        uint32_t dest = 0;
        size_t n = 0;
        uint32_t r = rewire_monitor_poll_output(mon, &dest, xout + 1, xout + 33, xout + 49, out_room(a1, 49), &n);
        if (r != REWIRE_OK) return rc(r);
        xout[0] = (uint8_t)dest;
        memcpy((void *)a0, xout, 49 + n);
        return (int64_t)(49 + n);
    }
    case H_POLL_EVENT:
        if (!host_ptr(a0, 24)) return -MON_ERR_BAD_POINTER;
        if (ev_head == ev_tail) return -REWIRE_ERR_EMPTY;
        memcpy((void *)a0, evq[ev_head++ % EVQ], 24);
        return 0;
    case H_RUN: {
        struct slot *s = slot_at(a0);
        if ((e = not_runnable(s)) != 0) return e;
        if (s->interrupted) return -KS_ERR_NOT_RUNNABLE; /* its step is not over: H_RESUME */
        enter_enclave(f, s, 0);
        return 0; /* not used: the frame now belongs to the enclave */
    }
    case H_RESUME: {
        struct slot *s = slot_at(a0);
        if ((e = not_runnable(s)) != 0) return e;
        if (!s->interrupted) return -KS_ERR_NOT_RESUMABLE;
        enter_enclave(f, s, 1);
        return 0;
    }
    case H_TIME_MS:
        return (int64_t)now_ms();
    case H_STATUS: { /* in: enclave id[16]; out: state u32, epoch u64, runnable u32, present u32 */
        if (!host_ptr(a0, 24)) return -MON_ERR_BAD_POINTER;
        uint8_t b[24] = {0}, id[16];
        uint32_t st = 0;
        uint64_t ep = 0;
        memcpy(id, (const void *)a0, 16);
        uint32_t r = rewire_monitor_status(mon, id, &st, &ep);
        struct slot *s = slot_of(id);
        put32(b, r == REWIRE_OK ? st : 0);
        for (int i = 0; i < 8; i++) b[4 + i] = (uint8_t)(ep >> (8 * i));
        put32(b + 12, s && s->running && rewire_monitor_may_run(mon, id));
        put32(b + 16, s != NULL);
        put32(b + 20, s ? (uint32_t)index_of(s) : 0xffffffffu);
        memcpy((void *)a0, b, 24);
        return 0;
    }
    default:
        return RET_NOT_SUPPORTED;
    }
}

/* SBI's base extension: what a host (Linux's SBI driver) asks first. */
static int64_t base_call(uint64_t fid, uint64_t a0) {
    switch (fid) {
    case 0: return 2l << 24; /* get_spec_version: SBI 2.0 */
    case 3: return a0 == SBI_EXT_BASE || a0 == SBI_EXT_SRST || a0 == SBI_EXT_KEYSTONE; /* probe_extension */
    case 4: case 5: case 6: return 0; /* mvendorid, marchid, mimpid: none to report */
    default: return RET_NOT_SUPPORTED;
    }
}

/* The host's name from the fuses, read once at boot (monitor_main) before
 * any host code runs: no enclave call then depends on the shared flash. */
static char fused_name[17];
static const char *host_name(void) { return fused_name; }

#define ENC_SEAL_MAX 1024 /* E_SEAL's plaintext (and so E_UNSEAL's) */
static uint8_t enc_buf[ENC_SEAL_MAX];
static int64_t enclave_call(struct frame *f, uint64_t fid) {
    uint64_t a0 = f->x[R_ARG0], a1 = f->x[R_ARG1];
    struct slot *s = &slots[cur];
    switch (fid) {
    case E_PRINT:
        if (!enc_ptr(a0, a1) || a1 > 512) return -MON_ERR_BAD_POINTER;
        con_puts("[enclave@");
        con_puts(host_name());
        if (cur > 0) { con_puts("#"); con_dec((uint64_t)cur); } /* slot 0 is unmarked: the demo's one enclave */
        con_puts("] ");
        con_write((const char *)a0, a1);
        return 0;
    case E_HOSTNAME: {
        if (!enc_ptr(a0, 16)) return -MON_ERR_BAD_POINTER;
        memcpy((void *)a0, fused_name, 16);
        return 0;
    }
    case E_STOP: /* a request other than 0 (yield) or 1 (edge call) */
        return -KS_ERR_ILLEGAL_ARGUMENT;
    case E_RANDOM: {
        uint8_t b[8];
        uint64_t v = 0;
        if (random_fill(NULL, b, sizeof b) != 0) return -REWIRE_ERR_RANDOM;
        for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
        memset(b, 0, sizeof b);
        return (int64_t)(v >> 1); /* 63 bits: a value, never read as an error */
    }
    case E_SEAL: { /* the enclave's memory is copied too: the same rule, and DMA reaches it as well */
        size_t n = 0;
        if (!enc_ptr(a0, a1)) return -MON_ERR_BAD_POINTER;
        if (a1 > ENC_SEAL_MAX) return -MON_ERR_TOO_LARGE;
        memcpy(enc_buf, (const void *)a0, a1);
        uint32_t r = rewire_monitor_seal(mon, s->id, enc_buf, a1, s->sealed, SEALED_MAX, &n);
        memset(enc_buf, 0, a1);
        if (r == REWIRE_OK) s->sealed_len = n;
        return rc(r);
    }
    case E_UNSEAL: {
        size_t n = 0;
        if (!enc_ptr(a0, a1)) return -MON_ERR_BAD_POINTER;
        if (s->sealed_len == 0) return -REWIRE_ERR_EMPTY;
        size_t cap = a1 < ENC_SEAL_MAX ? (size_t)a1 : ENC_SEAL_MAX;
        uint32_t r = rewire_monitor_unseal(mon, s->id, s->sealed, s->sealed_len, enc_buf, cap, &n);
        if (r == REWIRE_OK) memcpy((void *)a0, enc_buf, n);
        memset(enc_buf, 0, sizeof enc_buf);
        return r == REWIRE_OK ? (int64_t)n : rc(r);
    }
    default:
        return RET_NOT_SUPPORTED;
    }
}

static void con_hex64(uint64_t v) {
    uint8_t a[8];
    for (int i = 0; i < 8; i++) a[i] = (uint8_t)(v >> (56 - 8 * i));
    con_hex(a, 8);
}

/* A trap taken in the monitor's own mode (RISC-V start.S: mscratch was 0; Arm:
 * the current-EL vectors): the monitor itself faulted. Nothing it was doing
 * can be trusted to resume, and the saved host or enclave context must not be
 * restored from here: halt. */
void m_trap_halt(uint64_t cause, uint64_t epc, uint64_t tval) {
    say("trap in " ARCH_MON_MODE " (cause ");
    con_dec(cause);
    con_puts(", " ARCH_EPC " 0x");
    con_hex64(epc);
    con_puts(", " ARCH_TVAL " 0x");
    con_hex64(tval);
    con_puts("): halting\n");
    poweroff(9);
}

/* ---------------------------------------------------------------- stack
 * Peak stack of every ecall, the librewire call inside it included (P8,
 * docs/porting.md §2.8), by painting: the trap stack (__boot_stack_top ..
 * __trap_frame: every ecall runs on it) is painted once at boot; after each
 * ecall the deepest overwritten word gives its depth below the trap frame,
 * and only what it overwrote is painted again. Each new peak of an ecall is
 * printed ("stack peak: H_PEER 12345 B"), and `make bench-stack` collects
 * them. The boot stack gets the same treatment around boot and recovery.
 * Built only into monitor-stack.elf (-DSTACK_PROBE): the scans cost time. */
#ifdef STACK_PROBE
#define PAINT 0x7061696e74656421ULL
#define PAINT_GAP 512 /* the painter's own frame, under the caller's sp */
extern char __boot_stack_bottom[], __boot_stack_top[], __trap_frame[];
static uint64_t stack_peak[32];

static __attribute__((noinline)) void paint(uint64_t *lo, uint64_t *hi) {
    for (volatile uint64_t *p = lo; p < hi; p++) *p = PAINT;
}
static uint64_t *low_water(uint64_t *lo, uint64_t *hi) {
    while (lo < hi && *lo == PAINT) lo++;
    return lo;
}
static const struct { uint64_t fid; const char *name; } calls[] = {
    {H_INFO, "H_INFO"}, {H_LAUNCH, "H_LAUNCH"}, {H_SDS, "H_SDS"}, {H_PEER, "H_PEER"}, {H_CLOSED, "H_CLOSED"},
    {H_TICK, "H_TICK"}, {H_POLL_OUT, "H_POLL_OUT"}, {H_POLL_EVENT, "H_POLL_EVENT"}, {H_RUN, "H_RUN"},
    {H_RESUME, "H_RESUME"}, {H_TIME_MS, "H_TIME_MS"}, {H_STATUS, "H_STATUS"}, {H_DESTROY, "H_DESTROY"},
    {E_EXIT, "E_EXIT"}, {E_STOP, "E_STOP"}, {E_PRINT, "E_PRINT"}, {E_HOSTNAME, "E_HOSTNAME"}, {E_SEAL, "E_SEAL"},
    {E_UNSEAL, "E_UNSEAL"}, {E_RANDOM, "E_RANDOM"}};
static void stack_peak_print(const char *what, uint64_t bytes) {
    say("stack peak: ");
    con_puts(what);
    con_puts(" ");
    con_dec(bytes);
    con_puts(" B\n");
}
static void stack_paint_trap(void) { paint((uint64_t *)__boot_stack_top, (uint64_t *)__trap_frame); }
/* After ecall `n` (called on the trap stack, from trap_handler). */
static void stack_note(uint64_t n) {
    uint64_t *lo = low_water((uint64_t *)__boot_stack_top, (uint64_t *)__trap_frame);
    uint64_t used = (uint64_t)(__trap_frame - (char *)lo);
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        if (calls[i].fid == n && used > stack_peak[i]) {
            stack_peak[i] = used;
            stack_peak_print(calls[i].name, used);
        }
    }
    uint64_t *sp = (uint64_t *)arch_sp();
    uint64_t *hi = (uint64_t *)((char *)sp - PAINT_GAP);
    if (lo < hi) paint(lo, hi); /* only what this ecall overwrote, never a live frame */
}
static void stack_paint_boot(void) {
    uint64_t *sp = (uint64_t *)arch_sp();
    paint((uint64_t *)__boot_stack_bottom, (uint64_t *)((char *)sp - PAINT_GAP));
}
static void stack_note_boot(void) {
    uint64_t *lo = low_water((uint64_t *)__boot_stack_bottom, (uint64_t *)__boot_stack_top);
    stack_peak_print("boot (handoff, start, recovery, restore)", (uint64_t)(__boot_stack_top - (char *)lo));
}
#else
static void stack_note(uint64_t n) { (void)n; }
static void stack_paint_boot(void) {}
static void stack_note_boot(void) {}
static void stack_paint_trap(void) {}
#endif

void trap_handler(struct frame *f) {
    uint64_t cause, tval;
    int in_enclave = cur >= 0;
    int kind = arch_trap_kind(f, in_enclave, &cause, &tval); /* halts on a trap that did not come from the host or the enclave */
    if (kind == TRAP_NONE) return;
    if (kind == TRAP_TIMER) {
        if (in_enclave) preempt(f, -KS_ERR_INTERRUPTED);
        else arch_timer_disarm(); /* stale: the host's time is its own */
        return;
    }
    if (kind == TRAP_CALL) { /* ecall (RISC-V), SMC from the host or SVC from the enclave (Arm) */
        uint64_t ext = f->x[R_EXT], fid = f->x[R_FID];
        if (in_enclave) {
            if (ext == SBI_EXT_KEYSTONE && fid == E_EXIT) { leave_enclave(f, (int64_t)(f->x[R_ARG0] & (uint64_t)INT64_MAX)); return; }
            if (ext == SBI_EXT_KEYSTONE && fid == E_STOP && f->x[R_ARG0] <= 1) { /* resumes after the call, which returns 0 */
                int64_t why = f->x[R_ARG0] == 1 ? -KS_ERR_EDGE_CALL_HOST : -KS_ERR_INTERRUPTED;
                sbi_ret(f, 0);
                arch_call_done(f);
                preempt(f, why);
                return;
            }
            sbi_ret(f, ext == SBI_EXT_KEYSTONE ? enclave_call(f, fid) : RET_NOT_SUPPORTED);
            arch_call_done(f);
            stack_note(fid);
            return;
        }
        if (ext == SBI_EXT_SRST && fid == SRST_SYSTEM_RESET) {
            say(f->x[R_ARG1] ? "the host powers off: a failure\n" : "the host powers off\n");
            poweroff(f->x[R_ARG1] ? 8 : 0);
        }
        int64_t r = ext == SBI_EXT_KEYSTONE ? host_call(f, fid)
                    : ext == SBI_EXT_BASE   ? base_call(fid, f->x[R_ARG0])
                                            : RET_NOT_SUPPORTED;
        if (cur < 0) { /* H_RUN and H_RESUME switched to the enclave otherwise */
            sbi_ret(f, r);
            arch_call_done(f);
        }
        stack_note(fid);
        return;
    }
    if (kind == TRAP_LOAD || kind == TRAP_STORE || kind == TRAP_FETCH) { /* the fence (PMP, TrustZone, the S-EL1 tables) said no */
        say(in_enclave ? ISOLATION ": enclave" : ISOLATION ": host");
        con_puts(kind == TRAP_LOAD ? " load from 0x" : kind == TRAP_STORE ? " store to 0x" : " fetch from 0x");
        uint8_t a[8];
        for (int i = 0; i < 8; i++) a[i] = (uint8_t)(tval >> (56 - 8 * i));
        con_hex(a, 8);
        con_puts(" denied\n");
        if (in_enclave) { leave_enclave(f, -MON_ERR_BAD_POINTER); return; }
        if (kind == TRAP_FETCH || !arch_fault_skip(f, host_ptr(f->pc, 4))) poweroff(3);
        return; /* the host's probe learns that its access faulted (arch_fault_skip) */
    }
    say("unexpected trap, cause ");
    con_dec(cause);
    con_puts(in_enclave ? " in the enclave\n" : " in the host\n");
    if (in_enclave) { leave_enclave(f, -MON_ERR_BAD_POINTER); return; }
    poweroff(2);
}

/* ------------------------------------------------------------------ boot */
static uint8_t heap[4u << 20] __attribute__((aligned(16)));
/* librewire hit an internal bug: say where (the message and location never
 * hold secrets), then stop; the journal on flash settles it at the next boot. */
static void on_panic(void *u, const char *message, const char *file, uint32_t line) {
    (void)u;
    say("librewire panicked: ");
    con_puts(message);
    con_puts(" at ");
    con_puts(file);
    con_puts(":");
    con_dec(line);
    con_puts("; powering off\n");
    poweroff(4);
}
extern char __trap_frame[];

/* ------------------------------------------------------------ boot stage
 * What a boot ROM does before the SM runs (Keystone's bootloader; the boot
 * chain of docs/porting.md §2.1), here at the top of the same image: measure
 * the whole SM image as loaded (code, read-only data and initialised data,
 * __mon_text_start .. __mon_image_end, before anything writes to it), derive
 * this build's SM secret and device-signed certificate from the device root
 * (rewire_boot_handoff), then lock the root away: a locked PMP entry denies
 * every access to it, M-mode's included, until the next reset. The SM part
 * starts librewire from the handoff alone and wipes its copy of the secret. */
static struct {
    uint8_t sm_secret[32], device_public[32], cert[REWIRE_MAX_SIGNED];
    size_t cert_len;
} handoff;

static void lock_root(const struct rot_blob *rot) {
    arch_lock_root((uintptr_t)rot->device_secret, sizeof rot->device_secret);
}

static const struct rot_blob *boot_stage(void) {
    sha256((const uint8_t *)__mon_text_start, (size_t)(__mon_image_end - __mon_text_start), sm_measurement);
    flash_init();
    const struct rot_blob *rot = flash_rot();
    if (!rot) { say("no root of trust provisioned in pflash\n"); poweroff(1); }
    rewire_init_config init = {.struct_size = sizeof init, .heap = heap, .heap_len = sizeof heap,
                               .random = random_fill, .on_panic = on_panic};
    if (rewire_init_with(&init) != REWIRE_OK) poweroff(1);
    uint32_t r = rewire_boot_handoff(rot->device_secret, sm_measurement, handoff.sm_secret, handoff.cert,
                                     sizeof handoff.cert, &handoff.cert_len, handoff.device_public);
    lock_root(rot);
    if (r != REWIRE_OK) { say("boot stage: no handoff\n"); poweroff(1); }
    return rot;
}

void monitor_main(void) {
    arch_init();
    stack_paint_boot();
    const struct rot_blob *rot = boot_stage();
    memcpy(fused_name, rot->name, 16);
#ifdef FAULT_PEEK_ROOT
    /* The test build: an SM reaching for the root after the handoff traps,
     * also after trying to reopen it (entry 0 as an unlocked window, which
     * M-mode could read through, over the root's first bytes). */
    arch_reopen_root();
    say("peeking at the device root\n");
    con_hex((const uint8_t *)rot->device_secret, 1);
    say("read the device root after the boot stage\n");
#endif
    /* Copy the built-in enclave out of its region, then clear the region: it
     * holds an enclave only once one is launched, imported or restored. */
    pristine_len = (uint64_t)(__enc_code_end - __enc_code_start);
    memcpy(pristine, __enc_code_start, pristine_len);
    sha256(pristine, pristine_len, enc_measurement);
    memset((void *)ENC_BASE, 0, ENC_SIZE);

    rewire_platform_callbacks p = {sizeof p, NULL, random_fill, monotonic_ms, wall_time, journal_read, journal_write,
                                   counter_read, counter_increment};
    rewire_enclave_callbacks e = {sizeof e, NULL, fw_pause, fw_resume, fw_destroy, fw_export_len, fw_export, fw_import,
                                  fw_measure, fw_attest};
    uint64_t count;
    if (flash_counter_read(&count) != 0) { say("monotonic counter unreadable\n"); poweroff(1); }
    say("host ");
    con_puts(host_name());
    con_puts(", librewire ");
    con_puts(rewire_version());
    con_puts(", SM measurement ");
    con_hex(sm_measurement, 8);
    con_puts("..., counter ");
    con_dec(count);
    con_puts("\n");
    uint32_t r = rewire_monitor_new_from_handoff(handoff.sm_secret, handoff.cert, handoff.cert_len,
                                                 handoff.device_public, rot->sds_public_key, 30000, &p, &e, &mon);
    memset(handoff.sm_secret, 0, sizeof handoff.sm_secret);
    __asm__ volatile("" ::: "memory"); /* keep the wipe */
    if (r != REWIRE_OK) {
        say("librewire refused to start: ");
        con_puts(rewire_result_text(r));
        con_puts("\n");
        poweroff(5);
    }
    restore();
    if (rewire_monitor_tick(mon) != REWIRE_OK) /* framework operations owed from recovery (e.g. resume a restored enclave) */
        say("recovery tick failed\n");
    drain_events();
    stack_note_boot();
    stack_paint_trap();
    say("running the host program in " ARCH_USER_MODE "\n");
    struct frame *f = (struct frame *)__trap_frame; /* at the top of the trap stack */
    memset(f, 0, sizeof *f);
    arch_frame_init(f, (uint64_t)__host_entry, (uint64_t)__host_stack_top, 0);
    arch_isolate_host();
    enter_user(f);
}
