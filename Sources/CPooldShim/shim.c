// Compiled with _GNU_SOURCE so that mq_*, pidfd, signalfd and closefrom are declared. The header
// stays free of it: a feature macro there would give Swift a second, conflicting view of Glibc's types.
#define _GNU_SOURCE 1
#include "CPooldShim.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <stdio.h>
#include <sys/wait.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// MARK: POSIX message queues

/// Opens (or creates, with O_CREAT in `oflag`) a queue with the given depth and message size.
int pool_mq_open(const char *name, int oflag, unsigned int mode, long maxmsg, long msgsize) {
    if (oflag & O_CREAT) {
        struct mq_attr attr = {0};
        attr.mq_maxmsg = maxmsg;
        attr.mq_msgsize = msgsize;
        return (int)mq_open(name, oflag, (mode_t)mode, &attr);
    }
    return (int)mq_open(name, oflag);
}

int pool_mq_send(int mq, const void *buffer, size_t length, unsigned int priority) {
    return mq_send((mqd_t)mq, (const char *)buffer, length, priority);
}

ssize_t pool_mq_receive(int mq, void *buffer, size_t capacity, unsigned int *priority) {
    return mq_receive((mqd_t)mq, (char *)buffer, capacity, priority);
}

/// Receives with an absolute CLOCK_REALTIME deadline, as mq_timedreceive requires.
ssize_t pool_mq_timedreceive(int mq, void *buffer, size_t capacity, int64_t deadline_ns) {
    struct timespec ts = { .tv_sec = deadline_ns / 1000000000LL, .tv_nsec = deadline_ns % 1000000000LL };
    return mq_timedreceive((mqd_t)mq, (char *)buffer, capacity, NULL, &ts);
}

int pool_mq_timedsend(int mq, const void *buffer, size_t length, int64_t deadline_ns) {
    struct timespec ts = { .tv_sec = deadline_ns / 1000000000LL, .tv_nsec = deadline_ns % 1000000000LL };
    return mq_timedsend((mqd_t)mq, (const char *)buffer, length, 0, &ts);
}

int pool_mq_getattr(int mq, long *flags, long *maxmsg, long *msgsize, long *curmsgs) {
    struct mq_attr attr;
    int rc = mq_getattr((mqd_t)mq, &attr);
    if (rc == 0) {
        *flags = attr.mq_flags;
        *maxmsg = attr.mq_maxmsg;
        *msgsize = attr.mq_msgsize;
        *curmsgs = attr.mq_curmsgs;
    }
    return rc;
}

int pool_mq_close(int mq) { return mq_close((mqd_t)mq); }
int pool_mq_unlink(const char *name) { return mq_unlink(name); }

// MARK: Processes

int pool_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int pool_thread_name_and_background(const char *name) {
    char kept[16];
    snprintf(kept, sizeof kept, "%s", name);
    pthread_setname_np(pthread_self(), kept);
    // Nice 19 first: it is what the thread keeps if SCHED_IDLE is refused, and what it runs at
    // when raised from SCHED_IDLE (pool_thread_set_idle), which RLIMIT_NICE then permits at 1.
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), 19) != 0) return -1;
    struct sched_param none = {0};
    return sched_setscheduler(0, SCHED_IDLE, &none) == 0 ? 0 : 1;
}

int pool_thread_set_idle(pid_t tid, int idle) {
    struct sched_param none = {0};
    return sched_setscheduler(tid, idle ? SCHED_IDLE : SCHED_OTHER, &none);
}

pid_t pool_gettid(void) { return gettid(); }

int pool_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/// Reaps the process behind `pidfd` without blocking. Returns 1 when reaped (with `code` being
/// CLD_EXITED/CLD_KILLED/CLD_DUMPED and `status` the exit code or signal), 0 if it still runs, -1 on error.
int pool_pidfd_reap(int pidfd, int *code, int *status) {
    siginfo_t info = {0};
    if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG) != 0) return -1;
    if (info.si_pid == 0) return 0;
    *code = info.si_code;
    *status = info.si_status;
    return 1;
}

/// posix_spawn with what a supervisor wants for its children: every descriptor above stderr closed,
/// an empty signal mask, default dispositions for every signal, and a process group of its own (so a
/// terminal's Ctrl-C reaches the daemon, which stops its workers in order, rather than all at once).
int pool_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[]) {
    return pool_spawn_inheriting(pid, path, argv, envp, -1);
}

int pool_spawn_inheriting(pid_t *pid, const char *path, char *const argv[], char *const envp[], int inherit) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t empty, all;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) { posix_spawn_file_actions_destroy(&actions); return rc; }
    sigemptyset(&empty);
    sigfillset(&all);
    // dup2 clears close-on-exec on the copy (glibc does so even when `inherit` is 3 already).
    if (inherit >= 0 && (rc = posix_spawn_file_actions_adddup2(&actions, inherit, 3)) != 0) {
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&actions);
        return rc;
    }
    if ((rc = posix_spawn_file_actions_addclosefrom_np(&actions, inherit >= 0 ? 4 : 3)) == 0 &&
        (rc = posix_spawnattr_setsigmask(&attr, &empty)) == 0 &&
        (rc = posix_spawnattr_setsigdefault(&attr, &all)) == 0 &&
        (rc = posix_spawnattr_setpgroup(&attr, 0)) == 0 &&
        (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)) == 0) {
        rc = posix_spawn(pid, path, &actions, &attr, argv, envp);
    }
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    return rc;
}

/// Asks the kernel to send `sig` to this process when its parent thread exits.
int pool_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0, 0, 0); }

// MARK: Signals and wake-ups

/// Blocks `signals` (a 0-terminated list) in the calling thread (and the threads it creates later)
/// and returns a non-blocking, close-on-exec signalfd that reports them.
int pool_signalfd_for(const int *signals) {
    sigset_t set;
    sigemptyset(&set);
    for (const int *s = signals; *s != 0; s++) sigaddset(&set, *s);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/// Reads one pending signal from a signalfd; returns its number, or -1 (EAGAIN when none).
int pool_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    return n == (ssize_t)sizeof info ? (int)info.ssi_signo : -1;
}

int pool_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

// MARK: Futex words in shared memory

/// Waits while `*word == expected`, at most `timeout_ns` (negative: forever). Returns 0 when woken
/// (or when the word had already changed), ETIMEDOUT, or EINTR.
int pool_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        tsp = &ts;
    }
    long rc = syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, NULL, 0);
    if (rc == 0) return 0;
    return errno == EAGAIN ? 0 : errno;
}

int pool_futex_wake(uint32_t *word, int count) {
    return (int)syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
}

// MARK: Process-shared robust mutexes

int pool_robust_mutex_init(void *mutex) {
    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);
    if (rc != 0) return rc;
    if ((rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED)) == 0 &&
        (rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST)) == 0) {
        rc = pthread_mutex_init(mutex, &attr);
    }
    pthread_mutexattr_destroy(&attr);
    return rc;
}

int pool_mutex_consistent(void *mutex) { return pthread_mutex_consistent(mutex); }
size_t pool_mutex_size(void) { return sizeof(pthread_mutex_t); }

// MARK: Clocks

int64_t pool_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t pool_realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}



int64_t pool_msgqueue_rlimit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_MSGQUEUE, &limit) != 0) return -2;
    return limit.rlim_cur == RLIM_INFINITY ? -1 : (int64_t)limit.rlim_cur;
}

int pool_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

const char *pool_signal_abbreviation(int signal) { return sigabbrev_np(signal); }

// MARK: CPU affinity

_Static_assert(sizeof(pool_cpu_mask) == sizeof(cpu_set_t), "pool_cpu_mask must hold a cpu_set_t");

int pool_pin_to_nth_cpu(int index, pool_cpu_mask *saved) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return errno;
    memcpy(saved, &allowed, sizeof allowed);
    int count = CPU_COUNT(&allowed);
    if (count <= 0) return EINVAL;
    int wanted = index % count;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed)) continue;
        if (wanted-- == 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            return sched_setaffinity(0, sizeof one, &one) == 0 ? 0 : errno;
        }
    }
    return EINVAL;
}

int pool_restore_affinity(const pool_cpu_mask *saved) {
    cpu_set_t mask;
    memcpy(&mask, saved, sizeof mask);
    return sched_setaffinity(0, sizeof mask, &mask) == 0 ? 0 : errno;
}

// MARK: The shared-memory layouts, as C sees them (PooldLayouts.h)

#define POOL_LAYOUT(type) { #type, "", 0, sizeof(type) }
#define POOL_LAYOUT_FIELD(type, name) { #type, #name, offsetof(type, name), sizeof(((type *)0)->name) }

static const pool_layout_entry pool_layout_table[] = {
    POOL_LAYOUT(pool_job_header),
    POOL_LAYOUT_FIELD(pool_job_header, magic),
    POOL_LAYOUT_FIELD(pool_job_header, kind),
    POOL_LAYOUT_FIELD(pool_job_header, participants),
    POOL_LAYOUT_FIELD(pool_job_header, cancel),
    POOL_LAYOUT_FIELD(pool_job_header, barrier),
    POOL_LAYOUT_FIELD(pool_job_header, running),
    POOL_LAYOUT_FIELD(pool_job_header, go),
    POOL_LAYOUT(pool_job_participant),
    POOL_LAYOUT_FIELD(pool_job_participant, done),
    POOL_LAYOUT_FIELD(pool_job_participant, startedNanos),
    POOL_LAYOUT_FIELD(pool_job_participant, finishedNanos),
    POOL_LAYOUT_FIELD(pool_job_participant, pid),
    POOL_LAYOUT_FIELD(pool_job_participant, slot),
    POOL_LAYOUT_FIELD(pool_job_participant, extra),
    POOL_LAYOUT_FIELD(pool_job_participant, gateStamp),
    POOL_LAYOUT(pool_scoreboard_header),
    POOL_LAYOUT_FIELD(pool_scoreboard_header, magic),
    POOL_LAYOUT_FIELD(pool_scoreboard_header, version),
    POOL_LAYOUT_FIELD(pool_scoreboard_header, pid),
    POOL_LAYOUT_FIELD(pool_scoreboard_header, capacity),
    POOL_LAYOUT(pool_scoreboard_record),
    POOL_LAYOUT_FIELD(pool_scoreboard_record, pid),
    POOL_LAYOUT_FIELD(pool_scoreboard_record, jobID),
    POOL_LAYOUT_FIELD(pool_scoreboard_record, heartbeat),
    POOL_LAYOUT(pool_counter_area),
    POOL_LAYOUT_FIELD(pool_counter_area, mode),
    POOL_LAYOUT_FIELD(pool_counter_area, split),
    POOL_LAYOUT_FIELD(pool_counter_area, iterations),
    POOL_LAYOUT_FIELD(pool_counter_area, start),
    POOL_LAYOUT_FIELD(pool_counter_area, counter),
    POOL_LAYOUT_FIELD(pool_counter_area, pendingParticipant),
    POOL_LAYOUT_FIELD(pool_counter_area, pendingBefore),
    POOL_LAYOUT_FIELD(pool_counter_area, pendingDone),
    POOL_LAYOUT_FIELD(pool_counter_area, mutex),
    POOL_LAYOUT(pool_tasks_area),
    POOL_LAYOUT_FIELD(pool_tasks_area, count),
    POOL_LAYOUT_FIELD(pool_tasks_area, createdNanos),
    POOL_LAYOUT(pool_task_record),
    POOL_LAYOUT_FIELD(pool_task_record, slot),
    POOL_LAYOUT_FIELD(pool_task_record, pid),
    POOL_LAYOUT_FIELD(pool_task_record, startedNanos),
    POOL_LAYOUT_FIELD(pool_task_record, participant),
    POOL_LAYOUT(pool_event_area),
    POOL_LAYOUT_FIELD(pool_event_area, timeout),
    POOL_LAYOUT_FIELD(pool_event_area, waiters),
    POOL_LAYOUT_FIELD(pool_event_area, event),
    POOL_LAYOUT_FIELD(pool_event_area, setNanos),
    POOL_LAYOUT(pool_event_record),
    POOL_LAYOUT_FIELD(pool_event_record, received),
    POOL_LAYOUT_FIELD(pool_event_record, timeouts),
    POOL_LAYOUT_FIELD(pool_event_record, wokeNanos),
    POOL_LAYOUT(pool_append_area),
    POOL_LAYOUT_FIELD(pool_append_area, memory),
    POOL_LAYOUT_FIELD(pool_append_area, length),
    POOL_LAYOUT_FIELD(pool_append_area, mutex),
    POOL_LAYOUT(pool_append_writer),
    POOL_LAYOUT_FIELD(pool_append_writer, character),
    POOL_LAYOUT_FIELD(pool_append_writer, count),
    POOL_LAYOUT_FIELD(pool_append_writer, interval),
    POOL_LAYOUT_FIELD(pool_append_writer, copyOffset),
    POOL_LAYOUT(pool_lockcell_area),
    POOL_LAYOUT_FIELD(pool_lockcell_area, increments),
    POOL_LAYOUT_FIELD(pool_lockcell_area, pauseLow),
    POOL_LAYOUT_FIELD(pool_lockcell_area, pauseHigh),
    POOL_LAYOUT_FIELD(pool_lockcell_area, seed),
    POOL_LAYOUT_FIELD(pool_lockcell_area, counter),
    POOL_LAYOUT_FIELD(pool_lockcell_area, finished),
    POOL_LAYOUT_FIELD(pool_lockcell_area, traceNext),
    POOL_LAYOUT_FIELD(pool_lockcell_area, mutex),
    POOL_LAYOUT(pool_lockcell_trace_entry),
    POOL_LAYOUT_FIELD(pool_lockcell_trace_entry, step),
    POOL_LAYOUT_FIELD(pool_lockcell_trace_entry, participant),
    POOL_LAYOUT_FIELD(pool_lockcell_trace_entry, value),
    POOL_LAYOUT_FIELD(pool_lockcell_trace_entry, time),
    POOL_LAYOUT(pool_prodcons_area),
    POOL_LAYOUT_FIELD(pool_prodcons_area, items),
    POOL_LAYOUT_FIELD(pool_prodcons_area, capacity),
    POOL_LAYOUT_FIELD(pool_prodcons_area, payloadBytes),
    POOL_LAYOUT_FIELD(pool_prodcons_area, batch),
    POOL_LAYOUT_FIELD(pool_prodcons_area, seed),
    POOL_LAYOUT_FIELD(pool_prodcons_area, producers),
    POOL_LAYOUT_FIELD(pool_prodcons_area, trace),
    POOL_LAYOUT_FIELD(pool_prodcons_area, transport),
    POOL_LAYOUT_FIELD(pool_prodcons_area, produceLow),
    POOL_LAYOUT_FIELD(pool_prodcons_area, produceHigh),
    POOL_LAYOUT_FIELD(pool_prodcons_area, consumeLow),
    POOL_LAYOUT_FIELD(pool_prodcons_area, consumeHigh),
    POOL_LAYOUT_FIELD(pool_prodcons_area, consumed),
    POOL_LAYOUT_FIELD(pool_prodcons_area, traceNext),
    POOL_LAYOUT(pool_prodcons_stats),
    POOL_LAYOUT_FIELD(pool_prodcons_stats, count),
    POOL_LAYOUT_FIELD(pool_prodcons_stats, sum),
    POOL_LAYOUT_FIELD(pool_prodcons_stats, waits),
    POOL_LAYOUT_FIELD(pool_prodcons_stats, countBefore),
    POOL_LAYOUT_FIELD(pool_prodcons_stats, sumBefore),
    POOL_LAYOUT_FIELD(pool_prodcons_stats, recovered),
    POOL_LAYOUT_FIELD(pool_prodcons_stats, receives),
    POOL_LAYOUT(pool_latency_histogram),
    POOL_LAYOUT_FIELD(pool_latency_histogram, counts),
    POOL_LAYOUT_FIELD(pool_latency_histogram, maximum),
    POOL_LAYOUT(pool_prodcons_parked),
    POOL_LAYOUT_FIELD(pool_prodcons_parked, state),
    POOL_LAYOUT_FIELD(pool_prodcons_parked, items),
    POOL_LAYOUT_FIELD(pool_prodcons_parked, sum),
    POOL_LAYOUT(pool_prodcons_trace_entry),
    POOL_LAYOUT_FIELD(pool_prodcons_trace_entry, kind),
    POOL_LAYOUT_FIELD(pool_prodcons_trace_entry, participant),
    POOL_LAYOUT_FIELD(pool_prodcons_trace_entry, value),
    POOL_LAYOUT_FIELD(pool_prodcons_trace_entry, queueLength),
    POOL_LAYOUT_FIELD(pool_prodcons_trace_entry, time),
    POOL_LAYOUT(pool_prodcons_message_header),
    POOL_LAYOUT_FIELD(pool_prodcons_message_header, producer),
    POOL_LAYOUT_FIELD(pool_prodcons_message_header, count),
    POOL_LAYOUT_FIELD(pool_prodcons_message_header, enqueuedNanos),
    // The shared-memory ring.
    POOL_LAYOUT(pool_ring_header),
    POOL_LAYOUT_FIELD(pool_ring_header, magic),
    POOL_LAYOUT_FIELD(pool_ring_header, version),
    POOL_LAYOUT_FIELD(pool_ring_header, capacity),
    POOL_LAYOUT_FIELD(pool_ring_header, slot_bytes),
    POOL_LAYOUT_FIELD(pool_ring_header, owners),
    POOL_LAYOUT_FIELD(pool_ring_header, closed),
    POOL_LAYOUT_FIELD(pool_ring_header, tail),
    POOL_LAYOUT_FIELD(pool_ring_header, head),
    POOL_LAYOUT_FIELD(pool_ring_header, not_empty),
    POOL_LAYOUT_FIELD(pool_ring_header, consumers_waiting),
    POOL_LAYOUT_FIELD(pool_ring_header, not_full),
    POOL_LAYOUT_FIELD(pool_ring_header, producers_waiting),
    POOL_LAYOUT(pool_ring_hand),
    POOL_LAYOUT_FIELD(pool_ring_hand, claimed),
    POOL_LAYOUT(pool_ring_slot),
    POOL_LAYOUT_FIELD(pool_ring_slot, state),
    POOL_LAYOUT_FIELD(pool_ring_slot, enqueued_ns),
    POOL_LAYOUT_FIELD(pool_ring_slot, producer),
    POOL_LAYOUT_FIELD(pool_ring_slot, count),
};

const pool_layout_entry *pool_layout_entries(size_t *count) {
    *count = sizeof pool_layout_table / sizeof pool_layout_table[0];
    return pool_layout_table;
}
