// Every layout poold places in shared memory, declared once. Swift reaches the fields through
// these types (`UnsafeMutablePointer.field(_:)` and `.atomic(_:)` in PoolIPC), never through
// byte offsets, and the asserts below pin each offset the code (and a process of another build,
// or a reader such as the stale-instance cleaner) relies on.
//
// The fields are plain integers: whoever writes a field another process reads concurrently does so
// through an atomic (swift-atomics' UnsafeAtomic over the field's address), with the ordering the
// code documents. Fields written by different processes are kept on cache lines of their own
// (`POOL_CACHE_LINE`), so that one's writes do not slow the other's. Field names are Swift's.
//
// One section per segment; a new layout goes in a section of its own at the end.
#ifndef POOLD_LAYOUTS_H
#define POOLD_LAYOUTS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_CACHE_LINE 64

/// The bytes that pad a robust mutex to a cache line of its own.
#define POOL_MUTEX_LINE_PADDING (POOL_CACHE_LINE - sizeof(pthread_mutex_t))
_Static_assert(sizeof(pthread_mutex_t) < POOL_CACHE_LINE, "a mutex fits in a cache line");

// MARK: Kind area: counter

/// The counter race's area: parameters, then the counter and the locked mode's intent record,
/// then the mutex, each on a cache line of its own so that the race is on the counter alone.
typedef struct {
    uint32_t mode;           // 0 unsafe, 1 locked, 2 atomic
    uint32_t split;          // 1: the second half of the participants subtracts
    int64_t iterations;
    int64_t start;
    uint8_t reserved0[40];
    /// The counter; in `unsafe` mode two tallies instead (additions in the upper 32 bits,
    /// subtractions in the lower), see `CounterJob.UnsafeTally`.
    int64_t counter;
    // The locked mode's intent record, written under the mutex beside the counter: the values,
    // then the marker (release), so that a set marker always comes with its own values.
    int64_t pendingParticipant;  // participant + 1, 0 when none
    int64_t pendingBefore;       // the counter before the update
    int64_t pendingDone;         // the participant's `done` after it
    uint8_t reserved1[32];
    pthread_mutex_t mutex;
    uint8_t reserved2[POOL_MUTEX_LINE_PADDING];
} pool_counter_area;

_Static_assert(offsetof(pool_counter_area, mode) == 0, "counter layout");
_Static_assert(offsetof(pool_counter_area, split) == 4, "counter layout");
_Static_assert(offsetof(pool_counter_area, iterations) == 8, "counter layout");
_Static_assert(offsetof(pool_counter_area, start) == 16, "counter layout");
_Static_assert(offsetof(pool_counter_area, counter) == 64, "counter layout");
_Static_assert(offsetof(pool_counter_area, pendingParticipant) == 72, "counter layout");
_Static_assert(offsetof(pool_counter_area, pendingBefore) == 80, "counter layout");
_Static_assert(offsetof(pool_counter_area, pendingDone) == 88, "counter layout");
_Static_assert(offsetof(pool_counter_area, mutex) == 128, "counter layout");
_Static_assert(sizeof(pool_counter_area) == 192, "counter layout");

// MARK: Kind area: tasks

/// The tasks job's area, followed by one `pool_task_record` per task.
typedef struct {
    int64_t count;
    uint8_t reserved0[120];
    int64_t createdNanos;    // CLOCK_MONOTONIC when the job was set up
    uint8_t reserved1[56];
} pool_tasks_area;

/// Who ran a task and when; written by the worker that ran it, read once the job has ended.
typedef struct {
    int32_t slot;
    int32_t pid;
    int64_t startedNanos;    // 0 until it ran
    int64_t participant;
} pool_task_record;

_Static_assert(offsetof(pool_tasks_area, count) == 0, "tasks layout");
_Static_assert(offsetof(pool_tasks_area, createdNanos) == 128, "tasks layout");
_Static_assert(sizeof(pool_tasks_area) == 192, "tasks layout: the records start at 192");
_Static_assert(offsetof(pool_task_record, slot) == 0, "tasks layout");
_Static_assert(offsetof(pool_task_record, pid) == 4, "tasks layout");
_Static_assert(offsetof(pool_task_record, startedNanos) == 8, "tasks layout");
_Static_assert(offsetof(pool_task_record, participant) == 16, "tasks layout");
_Static_assert(sizeof(pool_task_record) == 24, "tasks layout");

// MARK: Kind area: event

/// The Event job's area, followed by one `pool_event_record` per participant.
typedef struct {
    int64_t timeout;         // nanoseconds, for the timeout waiters
    int64_t waiters;         // participants below this wait without a timeout
    uint8_t reserved0[48];
    uint32_t event;          // the futex word: 0 clear, 1 set
    uint32_t reserved1;
    int64_t setNanos;        // CLOCK_MONOTONIC when the daemon set it
    uint8_t reserved2[48];
} pool_event_area;

/// What one waiter saw.
typedef struct {
    int64_t received;        // 1 once it received the event
    int64_t timeouts;        // waits that timed out first
    int64_t wokeNanos;       // CLOCK_MONOTONIC when it received it
    int64_t reserved;
} pool_event_record;

_Static_assert(offsetof(pool_event_area, timeout) == 0, "event layout");
_Static_assert(offsetof(pool_event_area, waiters) == 8, "event layout");
_Static_assert(offsetof(pool_event_area, event) == 64, "event layout");
_Static_assert(offsetof(pool_event_area, setNanos) == 72, "event layout");
_Static_assert(sizeof(pool_event_area) == 128, "event layout: the records start at 128");
_Static_assert(offsetof(pool_event_record, received) == 0, "event layout");
_Static_assert(offsetof(pool_event_record, timeouts) == 8, "event layout");
_Static_assert(offsetof(pool_event_record, wokeNanos) == 16, "event layout");
_Static_assert(sizeof(pool_event_record) == 32, "event layout");

#endif
