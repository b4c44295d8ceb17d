// The few Linux calls that `import Glibc` does not expose to Swift (mq_*, pidfd, futex, signalfd,
// posix_spawn close-from), as thin allocation-free wrappers implemented in shim.c.
#ifndef CPOOLD_SHIM_H
#define CPOOLD_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// Opens (or creates, with O_CREAT in `oflag`) a queue with the given depth and message size.
int pool_mq_open(const char *name, int oflag, unsigned int mode, long maxmsg, long msgsize);

int pool_mq_send(int mq, const void *buffer, size_t length, unsigned int priority);

ssize_t pool_mq_receive(int mq, void *buffer, size_t capacity, unsigned int *priority);

/// Receives with an absolute CLOCK_REALTIME deadline, as mq_timedreceive requires.
ssize_t pool_mq_timedreceive(int mq, void *buffer, size_t capacity, int64_t deadline_ns);

int pool_mq_timedsend(int mq, const void *buffer, size_t length, int64_t deadline_ns);

int pool_mq_getattr(int mq, long *flags, long *maxmsg, long *msgsize, long *curmsgs);

int pool_mq_close(int mq);

int pool_mq_unlink(const char *name);

int pool_pidfd_open(pid_t pid);

int pool_pidfd_send_signal(int pidfd, int sig);

/// Reaps the process behind `pidfd` without blocking. Returns 1 when reaped (with `code` being
/// CLD_EXITED/CLD_KILLED/CLD_DUMPED and `status` the exit code or signal), 0 if it still runs, -1 on error.
int pool_pidfd_reap(int pidfd, int *code, int *status);

/// posix_spawn with what a supervisor wants for its children: every descriptor above stderr closed,
/// an empty signal mask, default dispositions for every signal, and a process group of its own (so a
/// terminal's Ctrl-C reaches the daemon, which stops its workers in order, rather than all at once).
int pool_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[]);

/// pool_spawn that hands the child one more descriptor: `inherit` (unless -1) becomes its fd 3,
/// and every descriptor above that is closed.
int pool_spawn_inheriting(pid_t *pid, const char *path, char *const argv[], char *const envp[], int inherit);

/// Asks the kernel to send `sig` to this process when its parent thread exits.
int pool_set_parent_death_signal(int sig);

/// Blocks `signals` (a 0-terminated list) in the calling thread (and the threads it creates later)
/// and returns a non-blocking, close-on-exec signalfd that reports them.
int pool_signalfd_for(const int *signals);

/// Reads one pending signal from a signalfd; returns its number, or -1 (EAGAIN when none).
int pool_signalfd_read(int fd);

int pool_eventfd(void);

/// Waits while `*word == expected`, at most `timeout_ns` (negative: forever). Returns 0 when woken
/// (or when the word had already changed), ETIMEDOUT, or EINTR.
int pool_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns);

int pool_futex_wake(uint32_t *word, int count);

/// The CPU's spin-wait hint (x86 `pause`): a spinning core yields its pipeline to its sibling and
/// leaves the loop without a memory-order flush when the awaited word changes.
static inline void pool_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

int pool_robust_mutex_init(void *mutex);


int pool_mutex_consistent(void *mutex);

size_t pool_mutex_size(void);

int64_t pool_monotonic_ns(void);

int64_t pool_realtime_ns(void);

/// RLIMIT_MSGQUEUE soft limit in bytes; -1 for unlimited, -2 when it cannot be read.
int64_t pool_msgqueue_rlimit(void);

/// Names the calling thread (15 bytes at most), for top -H and gdb.
int pool_set_thread_name(const char *name);

/// The signal's abbreviation without "SIG" ("BUS" for 7), or NULL when it has none (sigabbrev_np).
const char *pool_signal_abbreviation(int signal);

/// A saved CPU affinity mask (the size of glibc's cpu_set_t).
typedef struct { unsigned char bits[128]; } pool_cpu_mask;

/// Pins the calling thread to the `index`-th CPU it may run on (counted modulo their number),
/// saving the mask it had in `saved`. Returns 0 or an errno.
int pool_pin_to_nth_cpu(int index, pool_cpu_mask *saved);

/// Gives the calling thread back a mask saved by pool_pin_to_nth_cpu.
int pool_restore_affinity(const pool_cpu_mask *saved);

// The shared-memory layouts.
#include "PooldLayouts.h"

// MARK: The shared-memory ring (prodcons --transport shm; Sources/PoolIPC/SharedRing.swift)
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
