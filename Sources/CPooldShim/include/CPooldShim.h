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

/// Names the calling thread (at most 15 bytes are kept) and makes it a background thread: nice 19
/// and SCHED_IDLE (0), or only nice 19 where SCHED_IDLE is refused (1); -1 with errno when even
/// nice 19 is. Neither needs a privilege: both only lower the calling thread's own priority.
int pool_thread_name_and_background(const char *name);

/// Puts thread `tid` of this process under SCHED_IDLE (`idle` 1) or back under SCHED_OTHER at
/// its nice value (0). Going back needs CAP_SYS_NICE or an RLIMIT_NICE that permits that nice
/// value (1 for nice 19). Returns 0, or -1 with errno.
int pool_thread_set_idle(pid_t tid, int idle);

/// The calling thread's id.
pid_t pool_gettid(void);

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

#endif
