/* rtclient: round-trip latency of one varlink call over a Unix socket, on one kept connection.
 *
 *   cc -O2 -o rtclient rtclient.c
 *   rtclient [-n CALLS] [-w WARMUP] [-m MESSAGE] [-p PID]... SOCKET
 *
 * Sends MESSAGE (a varlink call; a NUL is appended) WARMUP times, then CALLS times, each time
 * waiting for the whole NUL-terminated reply, and prints one line:
 *   p50_us=.. p99_us=.. mean_us=.. min_us=.. max_us=.. n=..
 * With -p PID (repeatable), what every thread of PID and of its children (the daemon and its
 * workers) did over the timed calls is added to that line, per call: context switches
 * (voluntary: a sleep and a wake-up; involuntary: preempted), and CPU time (from schedstat, in
 * ns), of PID's own threads and of its children's:
 *   ctxsw_per_call=.. nvctxsw_per_call=.. cpu_us_per_call=.. server_cpu_us=.. children_cpu_us=..
 * A reply carrying an "error" key is a failure: it is printed and the program exits 1.
 * The default MESSAGE is poold's trivial Run: one task of `tasks`, on one worker. Default CALLS
 * 2000, WARMUP 200. Exit 2 on bad usage, 1 on a failed call.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *default_message =
    "{\"method\":\"io.poold.Pool.Run\",\"parameters\":{\"kind\":\"tasks\",\"parameters\":{\"count\":1}}}";

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int compare(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* What the watched processes did: context switches and CPU time (ns). */
struct usage {
    long long voluntary, involuntary, server_ns, children_ns;
};

/* Adds the context switches and CPU time of every thread of `pid`. */
static void add_usage(int pid, int is_child, struct usage *usage) {
    char path[300];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *tasks = opendir(path);
    if (!tasks) return;
    struct dirent *entry;
    while ((entry = readdir(tasks))) {
        if (entry->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/status", pid, entry->d_name);
        FILE *status = fopen(path, "r");
        if (!status) continue;
        char line[256];
        long long value;
        while (fgets(line, sizeof line, status)) {
            if (sscanf(line, "voluntary_ctxt_switches: %lld", &value) == 1) usage->voluntary += value;
            else if (sscanf(line, "nonvoluntary_ctxt_switches: %lld", &value) == 1) usage->involuntary += value;
        }
        fclose(status);
        snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", pid, entry->d_name);
        FILE *schedstat = fopen(path, "r");
        if (!schedstat) continue;
        if (fscanf(schedstat, "%lld", &value) == 1) *(is_child ? &usage->children_ns : &usage->server_ns) += value;
        fclose(schedstat);
    }
    closedir(tasks);
}

/* The process and its direct children (a daemon's workers, whichever thread spawned them), every
 * thread. */
static void measure_usage(const int *pids, int count, struct usage *usage) {
    *usage = (struct usage){0};
    for (int i = 0; i < count; i++) {
        add_usage(pids[i], 0, usage);
        char path[300];
        snprintf(path, sizeof path, "/proc/%d/task", pids[i]);
        DIR *tasks = opendir(path);
        if (!tasks) continue;
        struct dirent *entry;
        while ((entry = readdir(tasks))) {
            if (entry->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "/proc/%d/task/%s/children", pids[i], entry->d_name);
            FILE *children = fopen(path, "r");
            if (!children) continue;
            int child;
            while (fscanf(children, "%d", &child) == 1) add_usage(child, 1, usage);
            fclose(children);
        }
        closedir(tasks);
    }
}

static char *reply_buffer;
static size_t reply_capacity = 1 << 16;

/* Sends one call and reads its reply (up to the NUL). Returns 0, or -1 with the reason printed. */
static int call(int fd, const char *message, size_t length) {
    size_t sent = 0;
    while (sent < length) {
        ssize_t n = send(fd, message + sent, length - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("rtclient: send");
            return -1;
        }
        sent += (size_t)n;
    }
    size_t have = 0;
    for (;;) {
        if (have == reply_capacity) {
            reply_capacity *= 2;
            reply_buffer = realloc(reply_buffer, reply_capacity);
        }
        ssize_t n = recv(fd, reply_buffer + have, reply_capacity - have, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fprintf(stderr, "rtclient: %s\n", n == 0 ? "the server closed the connection" : strerror(errno));
            return -1;
        }
        void *end = memchr(reply_buffer + have, 0, (size_t)n);
        have += (size_t)n;
        if (end) {
            if ((char *)end != reply_buffer + have - 1) {
                fprintf(stderr, "rtclient: more than one reply to one call (use a call without \"more\")\n");
                return -1;
            }
            break;
        }
    }
    if (strstr(reply_buffer, "\"error\"")) {
        fprintf(stderr, "rtclient: the call failed: %s\n", reply_buffer);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int calls = 2000, warmup = 200, pids[16], pid_count = 0;
    const char *message = default_message;
    int option;
    while ((option = getopt(argc, argv, "n:w:m:p:")) != -1) {
        switch (option) {
        case 'n': calls = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 'm': message = optarg; break;
        case 'p':
            if (pid_count < 16) pids[pid_count++] = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: rtclient [-n CALLS] [-w WARMUP] [-m MESSAGE] [-p PID]... SOCKET\n");
            return 2;
        }
    }
    if (optind != argc - 1 || calls < 1 || warmup < 0) {
        fprintf(stderr, "usage: rtclient [-n CALLS] [-w WARMUP] [-m MESSAGE] [-p PID]... SOCKET\n");
        return 2;
    }
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(argv[optind]) >= sizeof address.sun_path) {
        fprintf(stderr, "rtclient: socket path too long: %s\n", argv[optind]);
        return 2;
    }
    strcpy(address.sun_path, argv[optind]);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        fprintf(stderr, "rtclient: cannot connect to %s: %s\n", argv[optind], strerror(errno));
        return 1;
    }
    size_t length = strlen(message) + 1; /* with its NUL */
    reply_buffer = malloc(reply_capacity);
    for (int i = 0; i < warmup; i++)
        if (call(fd, message, length) != 0) return 1;

    long long *samples = malloc(sizeof *samples * (size_t)calls);
    struct usage before, after;
    if (pid_count) measure_usage(pids, pid_count, &before);
    for (int i = 0; i < calls; i++) {
        long long start = now_ns();
        if (call(fd, message, length) != 0) return 1;
        samples[i] = now_ns() - start;
    }
    if (pid_count) measure_usage(pids, pid_count, &after);

    double sum = 0;
    for (int i = 0; i < calls; i++) sum += (double)samples[i];
    qsort(samples, (size_t)calls, sizeof *samples, compare);
    printf("p50_us=%.1f p99_us=%.1f mean_us=%.1f min_us=%.1f max_us=%.1f n=%d", samples[calls / 2] / 1e3,
           samples[(long long)calls * 99 / 100] / 1e3, sum / calls / 1e3, samples[0] / 1e3, samples[calls - 1] / 1e3, calls);
    if (pid_count) {
        double server = (double)(after.server_ns - before.server_ns) / calls / 1e3;
        double children = (double)(after.children_ns - before.children_ns) / calls / 1e3;
        printf(" ctxsw_per_call=%.2f nvctxsw_per_call=%.2f cpu_us_per_call=%.1f server_cpu_us=%.1f children_cpu_us=%.1f",
               (double)(after.voluntary - before.voluntary) / calls, (double)(after.involuntary - before.involuntary) / calls,
               server + children, server, children);
    }
    printf("\n");
    close(fd);
    return 0;
}
