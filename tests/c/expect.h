/* The checks the C tests share: count a failure, say where, go on. */
#ifndef REWIRE_TEST_EXPECT_H
#define REWIRE_TEST_EXPECT_H
#include <stdio.h>
#include "rewire.h"

static int failures = 0;

#define EXPECT(call, want)                                                                            \
    do {                                                                                              \
        rewire_result got_ = (call);                                                                  \
        if (got_ != (want)) {                                                                         \
            fprintf(stderr, "%s:%d: %s returned %u (%s), want %u (%s)\n", __FILE__, __LINE__, #call,  \
                    got_, rewire_result_text(got_), (unsigned)(want), rewire_result_text(want));      \
            failures++;                                                                               \
        }                                                                                             \
    } while (0)

#define TRUE(cond)                                                                                    \
    do {                                                                                              \
        if (!(cond)) {                                                                                \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);                       \
            failures++;                                                                               \
        }                                                                                             \
    } while (0)
#endif
