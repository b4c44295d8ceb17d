/* chain: the C reference for poold's trivial Run: the same chain of hops, and nothing else.
 *
 *   cc -O2 -o chain chain.c -lrt
 *   chain SOCKET            serve on SOCKET until SIGTERM or SIGINT
 *
 * client --Unix socket--> server --POSIX queue--> pre-spawned worker --POSIX queue--> server
 * (waiting in epoll on the sockets and the answer queue: an mqd_t is a pollable fd on Linux)
 * --Unix socket--> client. Each NUL-terminated message a client sends is one job: the server
 * sends it to the worker (spawned at start, `chain worker CMDQ ANSQ`, blocked in mq_receive),
 * which answers at once; the server then writes a small JSON reply, NUL-terminated, like a
 * varlink reply. One server thread, one worker process, no other work.
 * Prints `ready socket=SOCKET pid=PID worker=PID` on stdout once it accepts clients; removes its
 * queues and socket on exit. Measure it with rtclient (any message).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct job {
    int32_t client; /* the server's descriptor of the client that asked */
    int32_t stop;   /* 1: the worker exits */
    int64_t id;
};

static int worker(const char *commands_name, const char *answers_name) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    mqd_t commands = mq_open(commands_name, O_RDONLY);
    mqd_t answers = mq_open(answers_name, O_WRONLY);
    if (commands == (mqd_t)-1 || answers == (mqd_t)-1) {
        perror("chain worker: mq_open");
        return 1;
    }
    struct job job;
    for (;;) {
        ssize_t n = mq_receive(commands, (char *)&job, sizeof job, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("chain worker: mq_receive");
            return 1;
        }
        if (job.stop) return 0;
        if (mq_send(answers, (const char *)&job, sizeof job, 0) != 0) {
            perror("chain worker: mq_send");
            return 1;
        }
    }
}

#define MAX_CLIENTS 64
struct client {
    int fd;
    char buffer[4096];
    size_t have;
};
static struct client *clients[1024];

static void fail(const char *what) {
    perror(what);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "worker") == 0) return worker(argv[2], argv[3]);
    if (argc != 2) {
        fprintf(stderr, "usage: chain SOCKET\n");
        return 2;
    }
    const char *socket_path = argv[1];
    char commands_name[64], answers_name[64];
    snprintf(commands_name, sizeof commands_name, "/cbench-chain-%d-cmd", getpid());
    snprintf(answers_name, sizeof answers_name, "/cbench-chain-%d-ans", getpid());
    struct mq_attr attributes = {.mq_maxmsg = 2, .mq_msgsize = sizeof(struct job)};
    mqd_t commands = mq_open(commands_name, O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &attributes);
    if (commands == (mqd_t)-1) fail("chain: mq_open commands");
    attributes.mq_maxmsg = 10;
    mqd_t answers = mq_open(answers_name, O_RDONLY | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &attributes);
    if (answers == (mqd_t)-1) {
        mq_unlink(commands_name);
        fail("chain: mq_open answers");
    }

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigprocmask(SIG_BLOCK, &signals, NULL);
    int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);

    pid_t worker_pid;
    char *worker_argv[] = {"chain", "worker", commands_name, answers_name, NULL};
    posix_spawnattr_t spawn_attributes;
    posix_spawnattr_init(&spawn_attributes);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&spawn_attributes, &none);
    posix_spawnattr_setflags(&spawn_attributes, POSIX_SPAWN_SETSIGMASK);
    if (posix_spawn(&worker_pid, "/proc/self/exe", NULL, &spawn_attributes, worker_argv, environ) != 0) {
        mq_unlink(commands_name);
        mq_unlink(answers_name);
        fail("chain: posix_spawn");
    }

    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, socket_path, sizeof address.sun_path - 1);
    unlink(socket_path);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 64) != 0) {
        mq_unlink(commands_name);
        mq_unlink(answers_name);
        kill(worker_pid, SIGKILL);
        fail("chain: bind");
    }

    int poller = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = {.events = EPOLLIN};
    event.data.fd = listener;
    epoll_ctl(poller, EPOLL_CTL_ADD, listener, &event);
    event.data.fd = (int)answers;
    epoll_ctl(poller, EPOLL_CTL_ADD, (int)answers, &event);
    event.data.fd = signal_fd;
    epoll_ctl(poller, EPOLL_CTL_ADD, signal_fd, &event);
    printf("ready socket=%s pid=%d worker=%d\n", socket_path, getpid(), worker_pid);
    fflush(stdout);

    int64_t next_id = 1;
    int running = 1;
    while (running) {
        struct epoll_event ready[16];
        int count = epoll_wait(poller, ready, 16, -1);
        if (count < 0) {
            if (errno == EINTR) continue;
            fail("chain: epoll_wait");
        }
        for (int i = 0; i < count; i++) {
            int fd = ready[i].data.fd;
            if (fd == signal_fd) {
                running = 0;
            } else if (fd == listener) {
                int accepted;
                while ((accepted = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
                    if (accepted >= 1024) {
                        close(accepted);
                        continue;
                    }
                    clients[accepted] = calloc(1, sizeof(struct client));
                    clients[accepted]->fd = accepted;
                    struct epoll_event client_event = {.events = EPOLLIN, .data.fd = accepted};
                    epoll_ctl(poller, EPOLL_CTL_ADD, accepted, &client_event);
                }
            } else if (fd == (int)answers) {
                struct job job;
                while (mq_receive(answers, (char *)&job, sizeof job, NULL) == sizeof job) {
                    if (!clients[job.client]) continue; /* gone meanwhile */
                    char reply[256];
                    int length = snprintf(reply, sizeof reply,
                                          "{\"parameters\":{\"job\":{\"id\":%lld,\"kind\":\"tasks\",\"state\":\"succeeded\"}}}",
                                          (long long)job.id);
                    send(job.client, reply, (size_t)length + 1, MSG_NOSIGNAL);
                }
            } else {
                struct client *client = clients[fd];
                ssize_t n = recv(fd, client->buffer + client->have, sizeof client->buffer - client->have, 0);
                if (n <= 0) {
                    if (n < 0 && errno == EAGAIN) continue;
                    epoll_ctl(poller, EPOLL_CTL_DEL, fd, NULL);
                    close(fd);
                    free(client);
                    clients[fd] = NULL;
                    continue;
                }
                client->have += (size_t)n;
                char *start = client->buffer, *end;
                while ((end = memchr(start, 0, client->have - (size_t)(start - client->buffer)))) {
                    struct job job = {.client = fd, .stop = 0, .id = next_id++};
                    if (mq_send(commands, (const char *)&job, sizeof job, 0) != 0) perror("chain: mq_send");
                    start = end + 1;
                }
                client->have -= (size_t)(start - client->buffer);
                memmove(client->buffer, start, client->have);
                if (client->have == sizeof client->buffer) client->have = 0; /* a message too long: dropped */
            }
        }
    }
    struct job stop = {.stop = 1};
    mq_send(commands, (const char *)&stop, sizeof stop, 0);
    waitpid(worker_pid, NULL, 0);
    mq_unlink(commands_name);
    mq_unlink(answers_name);
    unlink(socket_path);
    return 0;
}
