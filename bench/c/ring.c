/* The C reference for `poolctl run prodcons --transport shm`: the same ring (the structs of
 * Sources/CPooldShim/include/PooldLayouts.h, the protocol of Sources/PoolIPC/SharedRing.swift) and
 * the same per-item work as poold's workers (Kinds/ProdCons/ProdConsJob+Worker.swift), in
 * processes forked over one shared mapping, without the daemon.
 *
 * A producer claims a slot (its hand cleared, a compare-and-swap of the slot's state to WRITING,
 * the hand set, `tail` advanced), draws its items as randint(1, 10) from SplitMix64 into the
 * slot, records its intent, publishes (the enqueue time, a sequentially consistent store of
 * FULL, the consumers' waiter count read) and records the message. A consumer records its state,
 * claims the slot at `head` (a compare-and-swap to READING, `head` advanced), records the latency
 * in poold's histogram, sums the items, commits, bumps the shared hint and releases the slot.
 * A side that finds the ring full or empty spins 200 rounds of `pause`, then sleeps on the futex
 * in slices of 100 ms. Both beat a heartbeat every 256 messages. The consumer that commits the last
 * item closes the ring, which wakes the others.
 *
 * build: cc -O2 -std=gnu11 -I Sources/CPooldShim/include -o .build/ring bench/c/ring.c
 * usage: ring CAPACITY BATCH PRODUCERS CONSUMERS ITEMS
 *   prints {"capacity", "batch", "producers", "consumers", "items", "seconds", "itemsPerSecond", "checksumOK"} */
#include "bench.h"
#include "CPooldShim.h"
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { PAYLOAD = 8, SPIN = 200, BUCKETS = HISTOGRAM_BUCKETS };
static const int64_t SLICE = 100000000;

struct stats { int64_t count, sum, waits, count_before, sum_before, recovered, receives, done; };

struct area {
    _Alignas(64) int64_t arrived;
    _Alignas(64) int64_t consumed_hint;
    _Alignas(64) int64_t cancelled;
    _Alignas(64) int64_t started[64], finished[64], heartbeat[64];
    _Alignas(64) struct stats stats[64];
    _Alignas(64) int64_t histograms[64][BUCKETS + 1];
};

static long capacity, batch, producers, consumers, items;
static struct area *area;
static pool_ring_header *ring;
static pool_ring_hand *hands;
static unsigned char *slots;
static size_t slot_bytes;

#define LOAD(p, o) __atomic_load_n((p), __ATOMIC_##o)
#define STORE(p, v, o) __atomic_store_n((p), (v), __ATOMIC_##o)
#define CAS(p, e, d) __atomic_compare_exchange_n((p), (e), (d), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

static inline uint64_t state_of(uint64_t position, uint64_t phase, uint64_t owner) {
    return position << POOL_RING_POSITION_SHIFT | owner << POOL_RING_OWNER_SHIFT | phase;
}
static inline unsigned char *slot_at(uint64_t position) { return slots + (position % (uint64_t)capacity) * slot_bytes; }
static inline uint64_t *state_word(unsigned char *slot) { return &((pool_ring_slot *)slot)->state; }

static inline unsigned char *try_claim_writing(int owner, uint64_t *claimed) {
    STORE(&hands[owner].claimed, 0, RELAXED);
    uint64_t position = LOAD(&ring->tail, RELAXED);
    for (;;) {
        unsigned char *slot = slot_at(position);
        uint64_t state = LOAD(state_word(slot), ACQUIRE), free = state_of(position, POOL_RING_FREE, 0);
        if (state == free) {
            if (CAS(state_word(slot), &free, state_of(position, POOL_RING_WRITING, (uint64_t)owner))) {
                STORE(&hands[owner].claimed, position + 1, RELAXED);
                uint64_t expected = position;
                __atomic_compare_exchange_n(&ring->tail, &expected, position + 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
                *claimed = position;
                return slot;
            }
            continue;
        }
        if (state >> POOL_RING_POSITION_SHIFT < position) {
            uint64_t now = LOAD(&ring->tail, RELAXED);
            if (now == position) return NULL;
            position = now;
            continue;
        }
        uint64_t expected = position;
        __atomic_compare_exchange_n(&ring->tail, &expected, position + 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        position = LOAD(&ring->tail, RELAXED);
    }
}

static inline unsigned char *try_claim_reading(int owner, uint64_t *claimed) {
    uint64_t position = LOAD(&ring->head, RELAXED);
    for (;;) {
        unsigned char *slot = slot_at(position);
        uint64_t state = LOAD(state_word(slot), ACQUIRE), full = state_of(position, POOL_RING_FULL, 0);
        if (state == full) {
            if (CAS(state_word(slot), &full, state_of(position, POOL_RING_READING, (uint64_t)owner))) {
                uint64_t expected = position;
                __atomic_compare_exchange_n(&ring->head, &expected, position + 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
                *claimed = position;
                return slot;
            }
            continue;
        }
        uint64_t slot_position = state >> POOL_RING_POSITION_SHIFT, phase = state & 3;
        if (slot_position < position || (slot_position == position && phase != POOL_RING_READING)) {
            uint64_t now = LOAD(&ring->head, RELAXED);
            if (now == position) return NULL;
            position = now;
            continue;
        }
        uint64_t expected = position;
        __atomic_compare_exchange_n(&ring->head, &expected, position + 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        position = LOAD(&ring->head, RELAXED);
    }
}

static void signal_word(uint32_t *word) {
    __atomic_fetch_add(word, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* SharedRing.close: every item is in; consumers finding the ring empty return instead of sleeping. */
static void close_ring(void) {
    STORE(&ring->closed, 1, SEQ_CST);
    __atomic_fetch_add(&ring->not_empty, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &ring->not_empty, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
}

static inline void publish(unsigned char *slot, uint64_t position) {
    ((pool_ring_slot *)slot)->enqueued_ns = monotonic_ns();
    STORE(state_word(slot), state_of(position, POOL_RING_FULL, 0), SEQ_CST);
    if (LOAD(&ring->consumers_waiting, SEQ_CST) != 0) signal_word(&ring->not_empty);
}

static inline void release(unsigned char *slot, uint64_t position) {
    STORE(state_word(slot), state_of(position + (uint64_t)capacity, POOL_RING_FREE, 0), SEQ_CST);
    if (LOAD(&ring->producers_waiting, SEQ_CST) != 0) signal_word(&ring->not_full);
}

/* Spin, announce, look again, sleep one slice: SharedRing.wait. */
static unsigned char *claim_waiting(int owner, uint64_t *claimed, int writing) {
    for (int round = 0; round < SPIN; round++) {
        unsigned char *slot = writing ? try_claim_writing(owner, claimed) : try_claim_reading(owner, claimed);
        if (slot) return slot;
        pool_cpu_relax();
    }
    uint32_t *waiters = writing ? &ring->producers_waiting : &ring->consumers_waiting;
    uint32_t *word = writing ? &ring->not_full : &ring->not_empty;
    __atomic_fetch_add(waiters, 1, __ATOMIC_SEQ_CST);
    uint32_t seen = LOAD(word, SEQ_CST);
    unsigned char *slot = writing ? try_claim_writing(owner, claimed) : try_claim_reading(owner, claimed);
    if (!slot && !LOAD(&ring->closed, ACQUIRE)) {
        struct timespec timeout = {.tv_sec = SLICE / 1000000000, .tv_nsec = SLICE % 1000000000};
        syscall(SYS_futex, word, FUTEX_WAIT, seen, &timeout, NULL, 0);
        slot = writing ? try_claim_writing(owner, claimed) : try_claim_reading(owner, claimed);
    }
    __atomic_fetch_sub(waiters, 1, __ATOMIC_SEQ_CST);
    return slot;
}

static inline void beat(int participant, long *messages) {
    if ((++*messages & 255) == 0) STORE(&area->heartbeat[participant], monotonic_ns(), RELAXED);
}

static void produce(int index) {
    struct stats *mine = &area->stats[index];
    int64_t share = items / producers + (index < items % producers ? 1 : 0);
    uint64_t random = 1 + (uint64_t)index * 0x9E3779B9ull;  /* as poold seeds participant `index` */
    int64_t sent = 0, total = 0, full = 0;
    long messages = 0;
    while (sent < share) {
        uint64_t position;
        unsigned char *slot = try_claim_writing(index, &position);
        if (!slot) {
            full++;
            while (!(slot = claim_waiting(index, &position, 1))) STORE(&area->heartbeat[index], monotonic_ns(), RELAXED);
        }
        long count = batch < share - sent ? batch : share - sent;
        pool_ring_slot *header = (pool_ring_slot *)slot;
        header->producer = (uint32_t)index;
        header->count = (uint32_t)count;
        int64_t *values = (int64_t *)(slot + sizeof(pool_ring_slot));
        int64_t message_sum = 0;
        for (long item = 0; item < count; item++) {
            int64_t value = (int64_t)(splitmix64(&random) % 10 + 1);
            values[item * (PAYLOAD / 8)] = value;
            message_sum += value;
        }
        STORE(&mine->sum_before, total + message_sum, RELAXED);
        STORE(&mine->count_before, sent + count, RELEASE);
        publish(slot, position);
        sent += count;
        total += message_sum;
        beat(index, &messages);
        STORE(&mine->sum, total, RELEASE);
        STORE(&mine->count, sent, RELEASE);
        STORE(&mine->done, sent, RELAXED);
    }
    mine->waits = full;
}

static int64_t committed_total(void) {
    int64_t total = 0;
    for (long consumer = producers; consumer < producers + consumers; consumer++) total += LOAD(&area->stats[consumer].count, ACQUIRE);
    return total;
}

static void consume(int index) {
    struct stats *mine = &area->stats[index];
    int64_t *histogram = area->histograms[index - producers];
    int64_t received = 0, total = 0, empty = 0;
    long messages = 0;
    for (;;) {
        STORE(&mine->count_before, received, RELAXED);
        STORE(&mine->sum_before, total, RELEASE);
        uint64_t position;
        unsigned char *slot = try_claim_reading(index, &position);
        if (!slot) {
            empty++;
            while (!(slot = claim_waiting(index, &position, 0))) {
                if (committed_total() >= items) { mine->waits = empty; return; }
                STORE(&area->heartbeat[index], monotonic_ns(), RELAXED);
            }
        }
        pool_ring_slot *header = (pool_ring_slot *)slot;
        long count = header->count;
        histogram_record(histogram, monotonic_ns() - header->enqueued_ns);
        const int64_t *values = (const int64_t *)(slot + sizeof(pool_ring_slot));
        for (long item = 0; item < count; item++) total += values[item * (PAYLOAD / 8)];
        received += count;
        STORE(&mine->sum, total, RELAXED);
        STORE(&mine->count, received, RELEASE);
        STORE(&mine->done, received, RELAXED);
        int64_t hint = __atomic_add_fetch(&area->consumed_hint, count, __ATOMIC_ACQ_REL);
        release(slot, position);
        beat(index, &messages);
        if (hint >= items) { close_ring(); mine->waits = empty; return; }
    }
}

static long parse(const char *text, const char *what) {
    char *end;
    long value = strtol(text, &end, 10);
    if (*text == 0 || *end != 0 || value < 1) {
        fprintf(stderr, "ring: %s must be a positive integer, not '%s'\n", what, text);
        exit(2);
    }
    return value;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: ring CAPACITY BATCH PRODUCERS CONSUMERS ITEMS\n");
        return 2;
    }
    capacity = parse(argv[1], "CAPACITY");
    batch = parse(argv[2], "BATCH");
    producers = parse(argv[3], "PRODUCERS");
    consumers = parse(argv[4], "CONSUMERS");
    items = parse(argv[5], "ITEMS");
    if (producers + consumers > 64) { fprintf(stderr, "ring: at most 64 participants\n"); return 2; }
    /* SharedRing.slotStride */
    size_t bytes = sizeof(pool_ring_slot) + (size_t)batch * PAYLOAD;
    slot_bytes = bytes <= 32 ? 32 : bytes <= 64 ? 64 : (bytes + 63) & ~(size_t)63;
    long owners = producers + consumers;
    size_t ring_bytes = sizeof(pool_ring_header) + (size_t)owners * sizeof(pool_ring_hand) + (size_t)capacity * slot_bytes;
    void *mapping = mmap(NULL, sizeof(struct area) + ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) { perror("mmap"); return 1; }
    area = mapping;
    ring = (pool_ring_header *)((unsigned char *)mapping + ((sizeof(struct area) + 63) & ~(size_t)63));
    hands = (pool_ring_hand *)(ring + 1);
    slots = (unsigned char *)(hands + owners);
    ring->capacity = (uint64_t)capacity;
    ring->slot_bytes = slot_bytes;
    ring->owners = (uint64_t)owners;
    for (long index = 0; index < capacity; index++) *state_word(slots + (size_t)index * slot_bytes) = state_of((uint64_t)index, POOL_RING_FREE, 0);

    for (int index = 0; index < owners; index++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) {
            __atomic_fetch_add(&area->arrived, 1, __ATOMIC_ACQ_REL);
            while (LOAD(&area->arrived, ACQUIRE) < owners) pool_cpu_relax();
            area->started[index] = monotonic_ns();
            if (index < producers) produce(index); else consume(index);
            area->finished[index] = monotonic_ns();
            _exit(0);
        }
    }
    int failed = 0;
    for (int index = 0; index < owners; index++) {
        int status;
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    }
    int64_t first = INT64_MAX, last = INT64_MIN, produced = 0, consumed = 0, produced_sum = 0, consumed_sum = 0;
    for (int index = 0; index < owners; index++) {
        if (area->started[index] < first) first = area->started[index];
        if (area->finished[index] > last) last = area->finished[index];
        if (index < producers) { produced += area->stats[index].count; produced_sum += area->stats[index].sum; }
        else { consumed += area->stats[index].count; consumed_sum += area->stats[index].sum; }
    }
    double seconds = (double)(last - first) / 1e9;
    int ok = !failed && produced == items && consumed == items && produced_sum == consumed_sum;
    printf("{\"capacity\": %ld, \"batch\": %ld, \"producers\": %ld, \"consumers\": %ld, \"items\": %ld, "
           "\"seconds\": %.6f, \"itemsPerSecond\": %.0f, \"checksumOK\": %s}\n",
           capacity, batch, producers, consumers, items, seconds, seconds > 0 ? (double)items / seconds : 0, ok ? "true" : "false");
    return ok ? 0 : 1;
}
