/* The C reference for `poolctl run prodcons` over a POSIX message queue (1 producer, 1 consumer):
 * two processes doing poold's per-item work (ProdConsJob+Worker.swift) without the daemon. The
 * producer builds each message in a ledger in shared memory (header: producer, count, enqueue
 * time; then `batch` 8-byte items drawn as randint(1, 10)), records its intent, tries a
 * non-blocking send, then blocks in slices of 100 ms, and records the send. The consumer records
 * its state, receives into its ledger (non-blocking first, then in slices), records the latency in
 * poold's histogram, sums the items, commits, bumps the shared hint and clears its ledger.
 *
 * usage: mqpc ITEMS BATCH CAPACITY   prints {"items", "seconds", "itemsPerSecond", "checksumOK"} */
#include "bench.h"
#include <fcntl.h>
#include <mqueue.h>
#include <sys/wait.h>

enum { HEADER = 16, PAYLOAD = 8, SLICE = 100000000 };

struct stats { int64_t count, sum, waits, count_before, sum_before, recovered, receives, done; };

struct area {
    _Alignas(64) int64_t arrived;
    _Alignas(64) int64_t consumed_hint;
    _Alignas(64) int64_t cancelled;
    _Alignas(64) struct stats producer;
    _Alignas(64) struct stats consumer;
    _Alignas(64) int64_t started[2], finished[2], heartbeat[2];
    _Alignas(64) int64_t histogram[HISTOGRAM_BUCKETS + 1];
    _Alignas(64) unsigned char ledgers[];
};

static long items, batch;
static size_t message_size, ledger_stride;

static void beat(struct area *area, int participant, long *messages) {
    if ((++*messages & 255) == 0) __atomic_store_n(&area->heartbeat[participant], monotonic_ns(), __ATOMIC_RELAXED);
}

static void produce(struct area *area, mqd_t blocking, mqd_t polling) {
    unsigned char *ledger = area->ledgers;
    struct stats *mine = &area->producer;
    uint64_t random = 1;  /* poold's default seed, as producer 0 draws it on a first attempt */
    int64_t sent = 0, total = 0, full = 0;
    long messages = 0;
    while (sent < items) {
        long count = batch < items - sent ? batch : items - sent;
        *(uint32_t *)ledger = 0;
        *(uint32_t *)(ledger + 4) = (uint32_t)count;
        int64_t message_sum = 0;
        for (long item = 0; item < count; item++) {
            int64_t value = (int64_t)(splitmix64(&random) % 10 + 1);
            *(int64_t *)(ledger + HEADER + item * PAYLOAD) = value;
            message_sum += value;
        }
        *(int64_t *)(ledger + 8) = monotonic_ns();
        __atomic_store_n(&mine->sum_before, total + message_sum, __ATOMIC_RELAXED);
        __atomic_store_n(&mine->count_before, sent + count, __ATOMIC_RELEASE);
        size_t length = HEADER + (size_t)count * PAYLOAD;
        if (mq_send(polling, (const char *)ledger, length, 0) != 0) {
            if (errno != EAGAIN) { perror("mq_send"); exit(1); }
            full++;
            for (;;) {
                if (__atomic_load_n(&area->cancelled, __ATOMIC_RELAXED)) exit(1);
                __atomic_store_n(&area->heartbeat[0], monotonic_ns(), __ATOMIC_RELAXED);
                struct timespec deadline = timespec_of(realtime_ns() + SLICE);
                if (mq_timedsend(blocking, (const char *)ledger, length, 0, &deadline) == 0) break;
                if (errno != ETIMEDOUT) { perror("mq_timedsend"); exit(1); }
            }
        }
        sent += count;
        total += message_sum;
        beat(area, 0, &messages);
        __atomic_store_n(&mine->sum, total, __ATOMIC_RELEASE);
        __atomic_store_n(&mine->count, sent, __ATOMIC_RELEASE);
        __atomic_store_n(&mine->done, sent, __ATOMIC_RELAXED);
    }
    mine->waits = full;
}

static void consume(struct area *area, mqd_t blocking, mqd_t polling) {
    unsigned char *ledger = area->ledgers + ledger_stride;
    struct stats *mine = &area->consumer;
    int64_t received = 0, total = 0, empty = 0;
    long messages = 0;
    for (;;) {
        __atomic_store_n(&mine->count_before, received, __ATOMIC_RELAXED);
        __atomic_store_n(&mine->sum_before, total, __ATOMIC_RELEASE);
        ssize_t got = mq_receive(polling, (char *)ledger, message_size, NULL);
        __atomic_fetch_add(&mine->receives, 1, __ATOMIC_RELEASE);
        if (got < 0) {
            if (errno != EAGAIN) { perror("mq_receive"); exit(1); }
            empty++;
            for (;;) {
                if (__atomic_load_n(&area->cancelled, __ATOMIC_RELAXED)) exit(1);
                if (__atomic_load_n(&mine->count, __ATOMIC_ACQUIRE) >= items) goto finished;
                __atomic_store_n(&area->heartbeat[1], monotonic_ns(), __ATOMIC_RELAXED);
                struct timespec deadline = timespec_of(realtime_ns() + SLICE);
                got = mq_timedreceive(blocking, (char *)ledger, message_size, NULL, &deadline);
                __atomic_fetch_add(&mine->receives, 1, __ATOMIC_RELEASE);
                if (got >= 0) break;
                if (errno != ETIMEDOUT) { perror("mq_timedreceive"); exit(1); }
            }
        }
        uint32_t count = *(uint32_t *)(ledger + 4);
        histogram_record(area->histogram, monotonic_ns() - *(int64_t *)(ledger + 8));
        for (uint32_t item = 0; item < count; item++) total += *(int64_t *)(ledger + HEADER + item * PAYLOAD);
        received += count;
        __atomic_store_n(&mine->sum, total, __ATOMIC_RELAXED);
        __atomic_store_n(&mine->count, received, __ATOMIC_RELEASE);
        __atomic_store_n(&mine->done, received, __ATOMIC_RELAXED);
        int64_t hint = __atomic_add_fetch(&area->consumed_hint, count, __ATOMIC_ACQ_REL);
        __atomic_store_n((uint32_t *)ledger, UINT32_MAX, __ATOMIC_RELEASE);
        beat(area, 1, &messages);
        if (hint >= items) break;
    }
finished:
    mine->waits = empty;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: mqpc ITEMS BATCH CAPACITY\n"); return 2; }
    items = parse_count(argv[1], "ITEMS");
    batch = parse_count(argv[2], "BATCH");
    long capacity = parse_count(argv[3], "CAPACITY");
    message_size = HEADER + (size_t)batch * PAYLOAD;
    ledger_stride = (message_size + 63) & ~(size_t)63;
    struct area *area = shared_mapping(sizeof(struct area) + 2 * ledger_stride);

    /* Named like poold's objects, and unlinked as soon as both ends hold it: nothing is left behind. */
    char name[64];
    snprintf(name, sizeof name, "/poold-bench-mqpc-%d", (int)getpid());
    struct mq_attr attributes = {.mq_maxmsg = capacity, .mq_msgsize = (long)message_size};
    mqd_t blocking = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attributes);
    if (blocking == (mqd_t)-1) { perror("mq_open"); return 1; }
    mqd_t polling = mq_open(name, O_RDWR | O_NONBLOCK);
    mq_unlink(name);
    if (polling == (mqd_t)-1) { perror("mq_open"); return 1; }

    pid_t children[2];
    for (int participant = 0; participant < 2; participant++) {
        children[participant] = fork();
        if (children[participant] < 0) { perror("fork"); return 1; }
        if (children[participant] == 0) {
            start_gate(&area->arrived, 2);
            area->started[participant] = monotonic_ns();
            if (participant == 0) produce(area, blocking, polling); else consume(area, blocking, polling);
            area->finished[participant] = monotonic_ns();
            _exit(0);
        }
    }
    int failed = 0;
    for (int participant = 0; participant < 2; participant++) {
        int status;
        waitpid(children[participant], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    }
    if (failed) { fprintf(stderr, "mqpc: a participant failed\n"); return 1; }
    int64_t first = area->started[0] < area->started[1] ? area->started[0] : area->started[1];
    int64_t last = area->finished[0] > area->finished[1] ? area->finished[0] : area->finished[1];
    double seconds = (double)(last - first) / 1e9;
    int ok = area->producer.count == items && area->consumer.count == items && area->producer.sum == area->consumer.sum;
    printf("{\"items\": %ld, \"seconds\": %.9f, \"itemsPerSecond\": %.1f, \"checksumOK\": %s}\n",
           items, seconds, (double)items / seconds, ok ? "true" : "false");
    return ok ? 0 : 1;
}
