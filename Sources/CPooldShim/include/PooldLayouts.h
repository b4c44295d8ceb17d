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

/// One entry of the table below: a layout's size (`field` empty), or one field's offset and size.
typedef struct {
    const char *layout;
    const char *field;
    size_t offset;
    size_t size;
} pool_layout_entry;

/// Every layout of this header, with its fields but the reserved bytes, as C sees them, so that a
/// test can hold Swift's view against it (shim.c keeps the table; a new layout or field goes in it
/// and in SharedLayoutTests' list).
const pool_layout_entry *pool_layout_entries(size_t *count);

// MARK: The job segment

#define POOL_JOB_MAGIC 0x504F4F4Cu  // "POOL"
/// A job segment the daemon keeps for reuse: between jobs, no worker may attach it.
#define POOL_JOB_FREE_MAGIC 0x46524545u  // "FREE"
/// A job segment the daemon discarded (unlinked, never reused): a worker that still maps it unmaps it.
#define POOL_JOB_RETIRED_MAGIC 0x44454144u  // "DEAD"

/// The header every job's segment starts with; a `pool_job_participant` per participant follows,
/// then the kind's own area (on a cache line).
typedef struct {
    uint32_t magic;          // POOL_JOB_MAGIC
    uint32_t kind;           // a JobKindCode
    uint32_t participants;
    uint32_t cancel;         // a futex word, set by the daemon to stop the job
    uint32_t barrier;        // a futex word: participants that reached the start line
    uint32_t running;        // participants past the start gate and running
    uint32_t go;             // set once all were seen running: they leave the gate together
    uint8_t reserved[36];
} pool_job_header;

/// One participant's record: its progress and timing, and who runs it.
typedef struct {
    int64_t done;            // operations or items done so far
    int64_t startedNanos;
    int64_t finishedNanos;
    int64_t pid;
    int64_t slot;
    int64_t extra;           // kind-specific (lock recoveries)
    int64_t gateStamp;       // when it last spun at the start gate
    int64_t reserved;
} pool_job_participant;

_Static_assert(offsetof(pool_job_header, magic) == 0, "job segment layout");
_Static_assert(offsetof(pool_job_header, kind) == 4, "job segment layout");
_Static_assert(offsetof(pool_job_header, participants) == 8, "job segment layout");
_Static_assert(offsetof(pool_job_header, cancel) == 12, "job segment layout");
_Static_assert(offsetof(pool_job_header, barrier) == 16, "job segment layout");
_Static_assert(offsetof(pool_job_header, running) == 20, "job segment layout");
_Static_assert(offsetof(pool_job_header, go) == 24, "job segment layout");
_Static_assert(sizeof(pool_job_header) == POOL_CACHE_LINE, "job segment layout");
_Static_assert(offsetof(pool_job_participant, done) == 0, "job segment layout");
_Static_assert(offsetof(pool_job_participant, startedNanos) == 8, "job segment layout");
_Static_assert(offsetof(pool_job_participant, finishedNanos) == 16, "job segment layout");
_Static_assert(offsetof(pool_job_participant, pid) == 24, "job segment layout");
_Static_assert(offsetof(pool_job_participant, slot) == 32, "job segment layout");
_Static_assert(offsetof(pool_job_participant, extra) == 40, "job segment layout");
_Static_assert(offsetof(pool_job_participant, gateStamp) == 48, "job segment layout");
_Static_assert(sizeof(pool_job_participant) == POOL_CACHE_LINE, "job segment layout");

// MARK: The scoreboard

#define POOL_SCOREBOARD_MAGIC 0x50534231u  // "PSB1"
/// Raised whenever this section's layout changes (2: no state, progress or jobs-done count, which
/// nobody read).
#define POOL_SCOREBOARD_VERSION 2u

/// The scoreboard's header, written once by its creator after it took the instance's lock; a
/// `pool_scoreboard_record` per slot follows.
typedef struct {
    uint32_t magic;          // POOL_SCOREBOARD_MAGIC, written last (release): the header is complete
    uint32_t version;        // POOL_SCOREBOARD_VERSION
    int32_t pid;             // the creator's
    uint32_t capacity;       // slots
    uint8_t reserved[48];
} pool_scoreboard_header;

/// What a slot's worker says about itself: who it is, the job it runs, that it lives.
typedef struct {
    int32_t pid;
    uint32_t reserved0;
    uint64_t jobID;          // the job it runs, 0 when none
    int64_t heartbeat;       // CLOCK_MONOTONIC of its last sign of life
    uint8_t reserved1[40];
} pool_scoreboard_record;

_Static_assert(offsetof(pool_scoreboard_header, magic) == 0, "scoreboard layout");
_Static_assert(offsetof(pool_scoreboard_header, version) == 4, "scoreboard layout");
_Static_assert(offsetof(pool_scoreboard_header, pid) == 8, "scoreboard layout");
_Static_assert(offsetof(pool_scoreboard_header, capacity) == 12, "scoreboard layout");
_Static_assert(sizeof(pool_scoreboard_header) == POOL_CACHE_LINE, "scoreboard layout");
_Static_assert(offsetof(pool_scoreboard_record, pid) == 0, "scoreboard layout");
_Static_assert(offsetof(pool_scoreboard_record, jobID) == 8, "scoreboard layout");
_Static_assert(offsetof(pool_scoreboard_record, heartbeat) == 16, "scoreboard layout");
_Static_assert(sizeof(pool_scoreboard_record) == POOL_CACHE_LINE, "scoreboard layout");

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

// MARK: Kind area: append

/// The append job's area, followed by one `pool_append_writer` per participant, then the shared
/// string (as many bytes as all writers append), then each writer's private copy.
typedef struct {
    uint32_t memory;         // 0 shared, 1 private
    uint8_t reserved0[60];
    int64_t length;          // under the mutex: the shared string's length
    uint8_t reserved1[56];
    pthread_mutex_t mutex;
    uint8_t reserved2[POOL_MUTEX_LINE_PADDING + POOL_CACHE_LINE];
} pool_append_area;

/// One writer's parameters, and where its private copy goes.
typedef struct {
    int64_t character;
    int64_t count;
    int64_t interval;        // nanoseconds between appends
    int64_t copyOffset;      // from the start of the area
} pool_append_writer;

_Static_assert(offsetof(pool_append_area, memory) == 0, "append layout");
_Static_assert(offsetof(pool_append_area, length) == 64, "append layout");
_Static_assert(offsetof(pool_append_area, mutex) == 128, "append layout");
_Static_assert(sizeof(pool_append_area) == 256, "append layout: the writers start at 256");
_Static_assert(offsetof(pool_append_writer, character) == 0, "append layout");
_Static_assert(offsetof(pool_append_writer, count) == 8, "append layout");
_Static_assert(offsetof(pool_append_writer, interval) == 16, "append layout");
_Static_assert(offsetof(pool_append_writer, copyOffset) == 24, "append layout");
_Static_assert(sizeof(pool_append_writer) == 32, "append layout");

// MARK: Kind area: lockcell

/// The lock cell's area, followed by its log: `pool_lockcell_trace_entry`s, one per line.
typedef struct {
    int64_t increments;
    int64_t pauseLow;        // nanoseconds
    int64_t pauseHigh;
    uint64_t seed;
    uint8_t reserved0[32];
    int64_t counter;         // under the mutex
    uint8_t reserved1[56];
    int64_t finished;        // atomic: workers that said Done
    uint8_t reserved2[56];
    int64_t traceNext;       // atomic: the next trace entry
    uint8_t reserved3[56];
    pthread_mutex_t mutex;
    uint8_t reserved4[POOL_MUTEX_LINE_PADDING];
} pool_lockcell_area;

/// One line of the job's log; `time` is written last (release): the entry is complete once set.
typedef struct {
    uint32_t step;
    uint32_t participant;
    int64_t value;
    int64_t time;
} pool_lockcell_trace_entry;

_Static_assert(offsetof(pool_lockcell_area, increments) == 0, "lockcell layout");
_Static_assert(offsetof(pool_lockcell_area, pauseLow) == 8, "lockcell layout");
_Static_assert(offsetof(pool_lockcell_area, pauseHigh) == 16, "lockcell layout");
_Static_assert(offsetof(pool_lockcell_area, seed) == 24, "lockcell layout");
_Static_assert(offsetof(pool_lockcell_area, counter) == 64, "lockcell layout");
_Static_assert(offsetof(pool_lockcell_area, finished) == 128, "lockcell layout");
_Static_assert(offsetof(pool_lockcell_area, traceNext) == 192, "lockcell layout");
_Static_assert(offsetof(pool_lockcell_area, mutex) == 256, "lockcell layout");
_Static_assert(sizeof(pool_lockcell_area) == 320, "lockcell layout: the log starts at 320");
_Static_assert(offsetof(pool_lockcell_trace_entry, step) == 0, "lockcell layout");
_Static_assert(offsetof(pool_lockcell_trace_entry, participant) == 4, "lockcell layout");
_Static_assert(offsetof(pool_lockcell_trace_entry, value) == 8, "lockcell layout");
_Static_assert(offsetof(pool_lockcell_trace_entry, time) == 16, "lockcell layout");
_Static_assert(sizeof(pool_lockcell_trace_entry) == 24, "lockcell layout");

// MARK: Kind area: prodcons

#define POOL_LATENCY_BUCKETS 1024

/// The producer/consumer job's area. After it, each sized by the job's parameters: a
/// `pool_prodcons_stats` per participant, a `pool_latency_histogram` per consumer, a ledger per
/// participant (room for one message, rounded up to cache lines), `POOL_PRODCONS_PARKED_SLOTS`
/// parking places per producer (a `pool_prodcons_parked` header, then room for a message), and
/// the trace (`pool_prodcons_trace_entry`s) when the job traces.
typedef struct {
    int64_t items;
    int64_t capacity;
    int64_t payloadBytes;
    int64_t batch;
    uint64_t seed;
    int64_t producers;
    int64_t trace;           // 1: the job traces every item
    int64_t transport;       // 1: the queue is the ring after the trace (--transport shm), 0: a message queue
    int64_t produceLow;      // nanoseconds of delay around each put
    int64_t produceHigh;
    int64_t consumeLow;      // and around each get
    int64_t consumeHigh;
    uint8_t reserved1[32];
    int64_t consumed;        // atomic: items consumed by all, as reported (a hint)
    uint8_t reserved2[56];
    int64_t traceNext;       // atomic: the next trace entry
    uint8_t reserved3[56];
} pool_prodcons_area;

/// A participant's record. A producer's count and sum say what it has sent, a consumer's what it
/// has committed; the `before` pair is written ahead of each message (see ProdConsJob.Stats).
typedef struct {
    int64_t count;
    int64_t sum;
    int64_t waits;           // a producer's sends that found the queue full, a consumer's receives that found it empty
    int64_t countBefore;
    int64_t sumBefore;
    int64_t recovered;       // items redelivered from the ledger or sent again
    int64_t receives;        // a consumer's returns from the queue
    int64_t reserved;
} pool_prodcons_stats;

/// A consumer's latency histogram (see LatencyHistogram), recorded by the consumer alone.
typedef struct {
    int64_t counts[POOL_LATENCY_BUCKETS];
    int64_t maximum;         // the largest value recorded
} pool_latency_histogram;

#define POOL_PRODCONS_PARKED_SLOTS 4

/// A parking place's header; the message follows it.
typedef struct {
    int64_t state;           // free, uncertain or arrived (ProdConsJob.ParkedState)
    int64_t items;
    int64_t sum;
    uint8_t reserved[40];
} pool_prodcons_parked;

/// One produced or consumed item; `time` is written last (release): the entry is complete once set.
typedef struct {
    uint32_t kind;           // 1 produced, 2 consumed
    uint32_t participant;
    int64_t value;
    int64_t queueLength;
    int64_t time;
} pool_prodcons_trace_entry;

/// A queue message's header; `count` items of `payloadBytes` follow (each item's value in its
/// first 8 bytes). A message with no items is the end-of-stream sentinel. In a ledger, `producer`
/// is the mark of a message in flight (all ones when the ledger holds none).
typedef struct {
    uint32_t producer;
    uint32_t count;
    int64_t enqueuedNanos;   // CLOCK_MONOTONIC when it was built
} pool_prodcons_message_header;

_Static_assert(offsetof(pool_prodcons_area, items) == 0, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_area, capacity) == 8, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_area, payloadBytes) == 16, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_area, batch) == 24, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_area, seed) == 32, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_area, producers) == 40, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_area, trace) == 48, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_area, transport) == 56, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_area, produceLow) == 64, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_area, produceHigh) == 72, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_area, consumeLow) == 80, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_area, consumeHigh) == 88, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_area, consumed) == 128, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_area, traceNext) == 192, "prodcons layout");
_Static_assert(sizeof(pool_prodcons_area) == 256, "prodcons layout: the stats start at 256");
_Static_assert(offsetof(pool_prodcons_stats, count) == 0, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_stats, sum) == 8, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_stats, waits) == 16, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_stats, countBefore) == 24, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_stats, sumBefore) == 32, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_stats, recovered) == 40, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_stats, receives) == 48, "prodcons layout");
_Static_assert(sizeof(pool_prodcons_stats) == POOL_CACHE_LINE, "prodcons layout");
_Static_assert(sizeof(pool_latency_histogram) == (POOL_LATENCY_BUCKETS + 1) * 8, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_parked, state) == 0, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_parked, items) == 8, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_parked, sum) == 16, "prodcons layout");
_Static_assert(sizeof(pool_prodcons_parked) == POOL_CACHE_LINE, "prodcons layout: the message starts a cache line in");
_Static_assert(offsetof(pool_prodcons_trace_entry, kind) == 0, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_trace_entry, participant) == 4, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_trace_entry, value) == 8, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_trace_entry, queueLength) == 16, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_trace_entry, time) == 24, "prodcons layout");
_Static_assert(sizeof(pool_prodcons_trace_entry) == 32, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_message_header, producer) == 0, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_message_header, count) == 4, "prodcons layout");
_Static_assert(offsetof(pool_prodcons_message_header, enqueuedNanos) == 8, "prodcons layout");
_Static_assert(sizeof(pool_prodcons_message_header) == 16, "prodcons layout");

// MARK: The shared-memory ring (prodcons --transport shm, at the end of its kind area; Sources/PoolIPC/SharedRing.swift)
//
// A bounded multi-producer, multi-consumer ring of slots in a shared segment, after Vyukov's:
// each slot has a state word that says which position (the count of slots ever claimed) it holds
// and in which phase. A producer claims the slot at `tail` with one compare-and-swap on its state
// (FREE -> WRITING, with its owner number in the word), a consumer the one at `head` (FULL ->
// READING). The claim and its owner are one atomic store, so a process killed at any point leaves
// a slot that says who held it: its replacement finishes what it held, nothing is lost or doubled.
// `head` and `tail` only say where to look: whoever sees a claimed slot advances them.
// The ring is a header, `owners` hand records, then `capacity` slots of `slot_bytes`.

#define POOL_RING_MAGIC 0x474E4952u  /* "RING" */
#define POOL_RING_VERSION 1u

/// The phase in a slot state's low 2 bits; the owner in the next 18; the position above them.
enum {
    POOL_RING_FREE = 0,     /* may be claimed for its position by a producer */
    POOL_RING_WRITING = 1,  /* claimed by the producer in the owner bits */
    POOL_RING_FULL = 2,     /* published; may be claimed by a consumer */
    POOL_RING_READING = 3,  /* claimed by the consumer in the owner bits */
};
#define POOL_RING_OWNER_SHIFT 2
#define POOL_RING_OWNER_BITS 18
#define POOL_RING_POSITION_SHIFT 20

typedef struct {
    uint32_t magic;
    uint32_t version;
    uint64_t capacity;           /* slots */
    uint64_t slot_bytes;         /* stride between slots: the slot header and its items */
    uint64_t owners;             /* hand records */
    uint32_t closed;             /* 1: nothing more will be published (consumers do not sleep) */
    uint8_t reserved0[28];
    uint64_t tail;               /* next position to produce into; written by producers only */
    uint8_t reserved1[56];
    uint64_t head;               /* next position to consume; written by consumers only */
    uint8_t reserved2[56];
    uint32_t not_empty;          /* futex: bumped after a publish when consumers sleep */
    uint32_t consumers_waiting;  /* consumers about to sleep or asleep on not_empty */
    uint8_t reserved3[56];
    uint32_t not_full;           /* futex: bumped after a release when producers sleep */
    uint32_t producers_waiting;
    uint8_t reserved4[56];
} pool_ring_header;

/// One participant's record, on a cache line of its own: the position + 1 of the slot it last
/// claimed for writing, 0 while it claims the next. With the slot's state, it tells a replacement
/// whether its predecessor's last message was published.
typedef struct {
    uint64_t claimed;
    uint8_t reserved[56];
} pool_ring_hand;

/// A slot's header; its items follow.
typedef struct {
    uint64_t state;
    int64_t enqueued_ns;         /* when its producer published it: the items' latency starts here */
    uint32_t producer;
    uint32_t count;              /* items in the slot */
} pool_ring_slot;

_Static_assert(sizeof(pool_ring_header) == 320, "ring header: five cache lines");
_Static_assert(offsetof(pool_ring_header, closed) == 32, "closed beside the constants");
_Static_assert(offsetof(pool_ring_header, tail) == 64, "tail on its own cache line");
_Static_assert(offsetof(pool_ring_header, head) == 128, "head on its own cache line");
_Static_assert(offsetof(pool_ring_header, not_empty) == 192, "not_empty on its own cache line");
_Static_assert(offsetof(pool_ring_header, consumers_waiting) == 196, "beside not_empty");
_Static_assert(offsetof(pool_ring_header, not_full) == 256, "not_full on its own cache line");
_Static_assert(offsetof(pool_ring_header, producers_waiting) == 260, "beside not_full");
_Static_assert(sizeof(pool_ring_hand) == 64, "a hand per cache line");
_Static_assert(sizeof(pool_ring_slot) == 24, "slot header");
_Static_assert(offsetof(pool_ring_slot, enqueued_ns) == 8 && offsetof(pool_ring_slot, producer) == 16
               && offsetof(pool_ring_slot, count) == 20, "slot header fields");

#endif
