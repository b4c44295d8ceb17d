/* The C reference for `poolctl run counter --workers 2 --split`: two processes on a shared mapping,
 * one adding 1 ITERATIONS times, the other subtracting 1 ITERATIONS+1 times, doing what poold's
 * CounterJob does per update, in chunks of 16384 with the progress published between them:
 *   unsafe  a separate relaxed load and store of a tally (1 << 32 up, 1 down), each process pinned
 *           to a CPU of its own and kept abreast of the other at every chunk;
 *   locked  a robust process-shared pthread mutex around the update and its intent record
 *           (before, done, marker; the counter; the count; the marker cleared);
 *   atomic  __atomic_fetch_add, relaxed.
 *
 * usage: counter MODE ITERATIONS START
 *   prints {"mode", "operations", "seconds", "opsPerSecond", "expected", "actual", "lost"} */
#include "bench.h"
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>

enum { CHUNK = 16384 };

struct participant { _Alignas(64) int64_t done, progress, heartbeat, started, finished; };

struct area {
    _Alignas(64) int64_t arrived;
    _Alignas(64) int64_t cancelled;
    _Alignas(64) int64_t counter;
    int64_t pending_participant, pending_before, pending_done;
    _Alignas(64) pthread_mutex_t mutex;
    struct participant participants[2];
};

enum mode { UNSAFE, LOCKED, ATOMIC };

static long iterations;

static long operations_of(int participant) { return participant == 0 ? iterations : iterations + 1; }

static void pin_to_cpu(int index) {
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    int wanted = index % CPU_COUNT(&allowed);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &allowed) && wanted-- == 0) {
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            sched_setaffinity(0, sizeof one, &one);
            return;
        }
    }
}

/* As poold's keepAbreast: spin (5 ms at most) while the other, unfinished, is a chunk behind. */
static void keep_abreast(struct area *area, int participant, long done) {
    int64_t deadline = monotonic_ns() + 5000000;
    const struct participant *other = &area->participants[1 - participant];
    while (!__atomic_load_n(&area->cancelled, __ATOMIC_RELAXED) && monotonic_ns() < deadline) {
        int64_t theirs = __atomic_load_n(&other->done, __ATOMIC_RELAXED);
        if (!(theirs < operations_of(1 - participant) && theirs + CHUNK < done)) return;
        __builtin_ia32_pause();
    }
}

static void run(struct area *area, enum mode mode, int participant) {
    struct participant *mine = &area->participants[participant];
    int64_t delta = participant == 0 ? 1 : -1;
    long operations = operations_of(participant), done = 0;
    int64_t me = participant + 1;
    while (done < operations) {
        long count = CHUNK < operations - done ? CHUNK : operations - done;
        switch (mode) {
        case UNSAFE: {
            keep_abreast(area, participant, done);
            int64_t step = delta > 0 ? (int64_t)1 << 32 : 1;
            for (long i = 0; i < count; i++) {
                int64_t value = __atomic_load_n(&area->counter, __ATOMIC_RELAXED);
                __atomic_store_n(&area->counter, value + step, __ATOMIC_RELAXED);
            }
            done += count;
            break;
        }
        case LOCKED:
            for (long i = 0; i < count; i++) {
                int rc = pthread_mutex_lock(&area->mutex);
                if (rc == EOWNERDEAD) rc = pthread_mutex_consistent(&area->mutex);
                if (rc != 0) { fprintf(stderr, "lock: %s\n", strerror(rc)); exit(1); }
                int64_t before = __atomic_load_n(&area->counter, __ATOMIC_RELAXED);
                __atomic_store_n(&area->pending_before, before, __ATOMIC_RELAXED);
                __atomic_store_n(&area->pending_done, done + 1, __ATOMIC_RELAXED);
                __atomic_store_n(&area->pending_participant, me, __ATOMIC_RELEASE);
                __atomic_store_n(&area->counter, before + delta, __ATOMIC_RELEASE);
                done += 1;
                __atomic_store_n(&mine->done, done, __ATOMIC_RELEASE);
                __atomic_store_n(&area->pending_participant, 0, __ATOMIC_RELEASE);
                pthread_mutex_unlock(&area->mutex);
            }
            break;
        case ATOMIC:
            for (long i = 0; i < count; i++) __atomic_fetch_add(&area->counter, delta, __ATOMIC_RELAXED);
            done += count;
            break;
        }
        __atomic_store_n(&mine->done, done, __ATOMIC_RELAXED);
        __atomic_store_n(&mine->progress, done, __ATOMIC_RELAXED);
        __atomic_store_n(&mine->heartbeat, monotonic_ns(), __ATOMIC_RELAXED);
        if (__atomic_load_n(&area->cancelled, __ATOMIC_RELAXED)) exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: counter unsafe|locked|atomic ITERATIONS START\n"); return 2; }
    enum mode mode;
    if (strcmp(argv[1], "unsafe") == 0) mode = UNSAFE;
    else if (strcmp(argv[1], "locked") == 0) mode = LOCKED;
    else if (strcmp(argv[1], "atomic") == 0) mode = ATOMIC;
    else { fprintf(stderr, "MODE is unsafe, locked or atomic, not '%s'\n", argv[1]); return 2; }
    iterations = parse_count(argv[2], "ITERATIONS");
    long start = strtol(argv[3], NULL, 10);
    struct area *area = shared_mapping(sizeof *area);
    area->counter = mode == UNSAFE ? 0 : start;
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&area->mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);

    pid_t children[2];
    for (int participant = 0; participant < 2; participant++) {
        children[participant] = fork();
        if (children[participant] < 0) { perror("fork"); return 1; }
        if (children[participant] == 0) {
            /* Unsafe mode races on CPUs of its own, as poold's does when there are enough. */
            if (mode == UNSAFE && sysconf(_SC_NPROCESSORS_ONLN) >= 2) pin_to_cpu(participant);
            start_gate(&area->arrived, 2);
            area->participants[participant].started = monotonic_ns();
            run(area, mode, participant);
            area->participants[participant].finished = monotonic_ns();
            _exit(0);
        }
    }
    for (int participant = 0; participant < 2; participant++) {
        int status;
        waitpid(children[participant], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "counter: a participant failed\n"); return 1; }
    }
    const struct participant *p = area->participants;
    int64_t first = p[0].started < p[1].started ? p[0].started : p[1].started;
    int64_t last = p[0].finished > p[1].finished ? p[0].finished : p[1].finished;
    double seconds = (double)(last - first) / 1e9;
    long operations = operations_of(0) + operations_of(1);
    int64_t expected = start + operations_of(0) - operations_of(1), actual, lost;
    if (mode == UNSAFE) {
        int64_t up = (int64_t)((uint64_t)area->counter >> 32), down = (int64_t)((uint64_t)area->counter & 0xFFFFFFFFu);
        actual = start + up - down;
        lost = (operations_of(0) - up) + (operations_of(1) - down);
    } else {
        actual = area->counter;
        lost = expected > actual ? expected - actual : actual - expected;
    }
    printf("{\"mode\": \"%s\", \"operations\": %ld, \"seconds\": %.9f, \"opsPerSecond\": %.1f, "
           "\"expected\": %lld, \"actual\": %lld, \"lost\": %lld}\n",
           argv[1], operations, seconds, (double)operations / seconds, (long long)expected, (long long)actual, (long long)lost);
    return 0;
}
