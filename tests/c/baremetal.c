/*
 * librewire's bare-metal-only entry points, with no OS under QEMU (`make
 * test-aarch64`): every call before initialisation is refused with
 * REWIRE_ERR_INVALID_STATE (and changes nothing); rewire_init_with's argument
 * checks; librewire running on the monitor's allocator hooks and giving every
 * byte back; on_panic told the message and location of an allocation that
 * failed. Prints OK and exits 0 from on_panic, the last step.
 */
#include "../../examples/c/soft_host.h"

#include "expect.h"

static const uint8_t SM[32] = {7, 7, 7};

/* The monitor's allocator: picolibc's, counted; can be told to fail. */
struct pool {
    size_t live_bytes, allocs, frees;
    int fail;
};
static void *hook_alloc(void *ud, size_t size, size_t align) {
    struct pool *p = ud;
    if (p->fail) return NULL;
    size_t a = align < sizeof(void *) ? sizeof(void *) : align;
    void *m = aligned_alloc(a, (size + a - 1) / a * a); /* C11: size a multiple of the alignment */
    if (m) {
        p->live_bytes += size;
        p->allocs++;
    }
    return m;
}
static void hook_free(void *ud, void *ptr, size_t size, size_t align) {
    struct pool *p = ud;
    (void)align;
    p->live_bytes -= size;
    p->frees++;
    free(ptr);
}

static soft_host tls = {.name = "tls", .rng_state = 0x1357u};
static struct pool pool;
static uint32_t tls_random(void *ud, uint8_t *buf, size_t len) {
    (void)ud;
    return cb_random(&tls, buf, len);
}

static void on_panic(void *ud, const char *message, const char *file, uint32_t line) {
    TRUE(ud == &pool);
    TRUE(strstr(message, "memory allocation of") != NULL);
    TRUE(file != NULL && strlen(file) > 0 && line > 0);
    printf("on_panic: \"%s\" at %s:%u\n", message, file, (unsigned)line);
    if (failures) {
        fprintf(stderr, "%d failed checks\n", failures);
        exit(1);
    }
    printf("OK\n");
    exit(0);
}

int main(void) {
    uint8_t seed[32] = {1}, key[32], secret[32] = {5}, id[32], image[64] = {3}, m[32];
    rewire_sds *sds = NULL;
    rewire_monitor *mon = NULL;
    soft_host h = {.name = "h", .rng_state = 99};
    rewire_platform_callbacks p = soft_platform(&h);
    rewire_enclave_callbacks f = soft_framework(&h);

    /* Before initialisation: refused, nothing written, no hang. */
    TRUE(strcmp(rewire_version(), REWIRE_VERSION) == 0);
    EXPECT(rewire_sds_new(seed, &sds), REWIRE_ERR_INVALID_STATE);
    TRUE(sds == NULL);
    EXPECT(rewire_monitor_new(secret, SM, seed, 0, &p, &f, &mon), REWIRE_ERR_INVALID_STATE);
    TRUE(mon == NULL);
    EXPECT(rewire_boot_measure(image, sizeof image, m), REWIRE_ERR_INVALID_STATE);
    EXPECT(rewire_set_log(NULL, NULL, REWIRE_LOG_INFO), REWIRE_ERR_INVALID_STATE);
    EXPECT(rewire_monitor_tick(NULL), REWIRE_ERR_INVALID_STATE);
    TRUE(!rewire_monitor_may_run(NULL, image));

    /* rewire_init_with's checks: each refusal leaves librewire uninitialised. */
    static uint8_t small[1024];
    rewire_init_config c;
    memset(&c, 0, sizeof c);
    EXPECT(rewire_init_with(NULL), REWIRE_ERR_NULL_POINTER);
    c.struct_size = sizeof c - 1;
    c.userdata = &pool;
    c.alloc = hook_alloc;
    c.free = hook_free;
    c.random = tls_random;
    c.on_panic = on_panic;
    EXPECT(rewire_init_with(&c), REWIRE_ERR_INVALID_ARGUMENT); /* older than any version */
    c.struct_size = sizeof c;
    c.random = NULL;
    EXPECT(rewire_init_with(&c), REWIRE_ERR_NULL_POINTER);
    c.random = tls_random;
    c.free = NULL;
    EXPECT(rewire_init_with(&c), REWIRE_ERR_INVALID_ARGUMENT); /* alloc without free */
    c.free = hook_free;
    c.heap = small;
    c.heap_len = sizeof small;
    EXPECT(rewire_init_with(&c), REWIRE_ERR_INVALID_ARGUMENT); /* a heap and hooks */
    c.alloc = NULL;
    c.free = NULL;
    EXPECT(rewire_init_with(&c), REWIRE_ERR_INVALID_ARGUMENT); /* a heap under 64 KiB */
    c.heap = NULL;
    c.heap_len = 0;
    EXPECT(rewire_init_with(&c), REWIRE_ERR_NULL_POINTER); /* neither */
    EXPECT(rewire_init(NULL, 0, tls_random, NULL, NULL), REWIRE_ERR_NULL_POINTER);
    c.struct_size = 1u << 20; /* not a size: a program from before struct_size */
    EXPECT(rewire_init_with(&c), REWIRE_ERR_INVALID_ARGUMENT);
    c.struct_size = sizeof c;
    EXPECT(rewire_sds_new(seed, &sds), REWIRE_ERR_INVALID_STATE);

    /* On the monitor's allocator. */
    c.alloc = hook_alloc;
    c.free = hook_free;
    CHECK(rewire_init_with(&c));
    EXPECT(rewire_init_with(&c), REWIRE_ERR_INVALID_STATE);
    static uint8_t heap[64 * 1024];
    EXPECT(rewire_init(heap, sizeof heap, tls_random, NULL, NULL), REWIRE_ERR_INVALID_STATE);
    size_t baseline = pool.live_bytes;
    CHECK(rewire_sds_new(seed, &sds));
    CHECK(rewire_sds_public_key(sds, key));
    CHECK(rewire_monitor_new(secret, SM, key, 0, &p, &f, &mon));
    CHECK(rewire_monitor_host_id(mon, id));
    CHECK(rewire_boot_measure(image, sizeof image, m));
    TRUE(pool.allocs > 10);
    rewire_monitor_free(mon);
    rewire_sds_free(sds);
    printf("allocator hooks: %zu allocations, %zu frees, %zu bytes live after freeing both handles\n",
           pool.allocs, pool.frees, pool.live_bytes - baseline);
    TRUE(pool.live_bytes == baseline);
    soft_free(&h);
    (void)soft_load;

    /* An allocation that fails ends in on_panic, with its message and location. */
    pool.fail = 1;
    rewire_result rc = rewire_sds_new(seed, &sds);
    fprintf(stderr, "rewire_sds_new returned %u without an allocation\n", rc);
    return 1;
}
