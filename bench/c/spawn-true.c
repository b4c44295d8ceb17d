/* A process per job, the cost a pool avoids: posix_spawn + waitpid of /bin/true, CALLS times
 * after WARMUP. (Stands in for the round-trip work's spawn until that lands; the same output.)
 *
 * usage: spawn-true CALLS WARMUP   prints p50_us=.. p99_us=.. n=.. */
#include "bench.h"
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static void spawn_true(void) {
    char *arguments[] = {"/bin/true", NULL};
    pid_t child;
    int status;
    int rc = posix_spawn(&child, arguments[0], NULL, NULL, arguments, environ);
    if (rc != 0) { fprintf(stderr, "posix_spawn: %s\n", strerror(rc)); exit(1); }
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "/bin/true failed\n"); exit(1); }
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: spawn-true CALLS WARMUP\n"); return 2; }
    long calls = parse_count(argv[1], "CALLS"), warmup = strtol(argv[2], NULL, 10);
    for (long i = 0; i < warmup; i++) spawn_true();
    int64_t *took = malloc((size_t)calls * sizeof *took);
    for (long i = 0; i < calls; i++) {
        int64_t start = monotonic_ns();
        spawn_true();
        took[i] = monotonic_ns() - start;
    }
    double p50 = (double)percentile_of(took, (size_t)calls, 50) / 1e3, p99 = (double)percentile_of(took, (size_t)calls, 99) / 1e3;
    printf("p50_us=%.1f p99_us=%.1f n=%ld\n", p50, p99, calls);
    return 0;
}
