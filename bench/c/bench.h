/* What the C references share: poold's item generator (SplitMix64, the notebook's
 * random.randint(1, 10)), its clocks, its latency histogram, a start gate for processes on a
 * shared mapping, and percentiles of a sample. Each reference prints one JSON line. */
#ifndef POOLD_BENCH_H
#define POOLD_BENCH_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline int64_t clock_ns(clockid_t clock) {
    struct timespec now;
    clock_gettime(clock, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}
static inline int64_t monotonic_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
static inline int64_t realtime_ns(void) { return clock_ns(CLOCK_REALTIME); }

static inline struct timespec timespec_of(int64_t nanos) {
    struct timespec at = {.tv_sec = nanos / 1000000000, .tv_nsec = nanos % 1000000000};
    return at;
}

/* poold's LatencyHistogram: 16 buckets per power of two, 1024 counters, then the maximum. */
enum { HISTOGRAM_BUCKETS = 1024 };
static inline void histogram_record(int64_t *counts, int64_t value) {
    int bucket;
    if (value < 16) {
        bucket = value < 0 ? 0 : (int)value;
    } else {
        int exponent = 63 - __builtin_clzll((uint64_t)value);
        bucket = (exponent - 3) * 16 + (int)((value >> (exponent - 4)) & 15);
    }
    counts[bucket] += 1;
    if (value > counts[HISTOGRAM_BUCKETS]) counts[HISTOGRAM_BUCKETS] = value;
}

static inline void *shared_mapping(size_t bytes) {
    void *area = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) { perror("mmap"); exit(1); }
    return area;
}

/* Every participant arrives, then all leave together (as poold's arriveAndWaitForAll). */
static inline void start_gate(int64_t *arrived, int64_t participants) {
    __atomic_fetch_add(arrived, 1, __ATOMIC_ACQ_REL);
    while (__atomic_load_n(arrived, __ATOMIC_ACQUIRE) < participants) __builtin_ia32_pause();
}

static int compare_int64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The value at `percentile` (0-100) of a sample, sorted in place. */
static inline int64_t percentile_of(int64_t *values, size_t count, double percentile) {
    qsort(values, count, sizeof *values, compare_int64);
    size_t rank = (size_t)(percentile / 100.0 * (double)count + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > count) rank = count;
    return values[rank - 1];
}

static inline long parse_count(const char *text, const char *what) {
    char *end;
    long value = strtol(text, &end, 10);
    if (*text == 0 || *end != 0 || value < 1) {
        fprintf(stderr, "%s must be a positive integer, not '%s'\n", what, text);
        exit(2);
    }
    return value;
}
#endif
