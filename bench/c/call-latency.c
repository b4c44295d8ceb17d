/* Round-trip latency of one varlink call on one kept connection to a Unix socket: sends MESSAGE
 * (NUL-terminated) WARMUP times, then CALLS times, each time reading the whole NUL-terminated
 * reply; a reply with an "error" is a failure. (Stands in for the round-trip work's rtclient
 * until that lands; the same output.)
 *
 * usage: call-latency SOCKET CALLS WARMUP MESSAGE   prints p50_us=.. p99_us=.. n=.. */
#include "bench.h"
#include <sys/socket.h>
#include <sys/un.h>

static char reply[1 << 20];

static void call(int fd, const char *message, size_t length) {
    if (write(fd, message, length) != (ssize_t)length) { perror("write"); exit(1); }
    size_t have = 0;
    for (;;) {
        ssize_t got = read(fd, reply + have, sizeof reply - 1 - have);
        if (got <= 0) { fprintf(stderr, "the server closed the connection\n"); exit(1); }
        have += (size_t)got;
        if (reply[have - 1] == 0) break;
        if (have == sizeof reply - 1) { fprintf(stderr, "reply too long\n"); exit(1); }
    }
    if (strstr(reply, "\"error\"")) { fprintf(stderr, "call failed: %s\n", reply); exit(1); }
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: call-latency SOCKET CALLS WARMUP MESSAGE\n"); return 2; }
    long calls = parse_count(argv[2], "CALLS"), warmup = strtol(argv[3], NULL, 10);
    size_t length = strlen(argv[4]) + 1;  /* with its NUL */
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof address.sun_path, "%s", argv[1]);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) { perror(argv[1]); return 1; }
    for (long i = 0; i < warmup; i++) call(fd, argv[4], length);
    int64_t *took = malloc((size_t)calls * sizeof *took);
    for (long i = 0; i < calls; i++) {
        int64_t start = monotonic_ns();
        call(fd, argv[4], length);
        took[i] = monotonic_ns() - start;
    }
    double p50 = (double)percentile_of(took, (size_t)calls, 50) / 1e3, p99 = (double)percentile_of(took, (size_t)calls, 99) / 1e3;
    printf("p50_us=%.1f p99_us=%.1f n=%ld\n", p50, p99, calls);
    return 0;
}
