/* spawn: a process per job, the cost the pool exists to avoid: posix_spawn + waitpid of /bin/true.
 *
 *   cc -O2 -o spawn spawn.c
 *   spawn [-n JOBS] [-w WARMUP] [PROGRAM]
 *
 * Spawns PROGRAM (default /bin/true) WARMUP times, then JOBS times, each time waiting for it to
 * exit, and prints one line: p50_us=.. p99_us=.. mean_us=.. min_us=.. max_us=.. n=..
 * Default JOBS 500, WARMUP 50. Exit 1 when a spawn fails or the program exits non-zero.
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int compare(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static int run(char *program) {
    char *arguments[] = {program, NULL};
    pid_t pid;
    int error = posix_spawn(&pid, program, NULL, NULL, arguments, environ);
    if (error != 0) {
        fprintf(stderr, "spawn: %s: %s\n", program, strerror(error));
        return -1;
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "spawn: %s did not exit with 0\n", program);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int jobs = 500, warmup = 50, option;
    while ((option = getopt(argc, argv, "n:w:")) != -1) {
        switch (option) {
        case 'n': jobs = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: spawn [-n JOBS] [-w WARMUP] [PROGRAM]\n");
            return 2;
        }
    }
    if (jobs < 1 || warmup < 0 || argc - optind > 1) {
        fprintf(stderr, "usage: spawn [-n JOBS] [-w WARMUP] [PROGRAM]\n");
        return 2;
    }
    char *program = optind < argc ? argv[optind] : "/bin/true";
    for (int i = 0; i < warmup; i++)
        if (run(program) != 0) return 1;
    long long *samples = malloc(sizeof *samples * (size_t)jobs);
    double sum = 0;
    for (int i = 0; i < jobs; i++) {
        long long start = now_ns();
        if (run(program) != 0) return 1;
        samples[i] = now_ns() - start;
        sum += (double)samples[i];
    }
    qsort(samples, (size_t)jobs, sizeof *samples, compare);
    printf("p50_us=%.1f p99_us=%.1f mean_us=%.1f min_us=%.1f max_us=%.1f n=%d\n", samples[jobs / 2] / 1e3,
           samples[(long long)jobs * 99 / 100] / 1e3, sum / jobs / 1e3, samples[0] / 1e3, samples[jobs - 1] / 1e3, jobs);
    return 0;
}
