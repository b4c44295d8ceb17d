/* echo: the C reference for poold's Status: a bare reply over the Unix socket, no other hop.
 *
 *   cc -O2 -o echo echo.c
 *   echo SOCKET             serve on SOCKET until SIGTERM or SIGINT
 *
 * One thread in epoll; each NUL-terminated message a client sends is answered at once with a
 * NUL-terminated reply of about the size of poold's Status reply to a pool of one worker
 * (the reference does no more work than writing it). Prints `ready socket=SOCKET pid=PID` on
 * stdout once it accepts clients; removes the socket on exit. Measure it with rtclient.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct client {
    char buffer[4096];
    size_t have;
};
static struct client *clients[1024];

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: echo SOCKET\n");
        return 2;
    }
    const char *socket_path = argv[1];
    static char reply[512];
    int length = snprintf(reply, sizeof reply - 1, "{\"parameters\":{\"pid\":%d,\"version\":\"0\",\"poolSize\":1,\"workers\":[{\"slot\":0,\"state\":\"ready\"}]}}", getpid());
    /* Padded with spaces to a Status-sized reply; the NUL ends it. */
    while (length < 400) reply[length++] = ' ';
    reply[length++] = 0;

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigprocmask(SIG_BLOCK, &signals, NULL);
    int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);

    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, socket_path, sizeof address.sun_path - 1);
    unlink(socket_path);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 64) != 0) {
        perror("echo: bind");
        return 1;
    }
    int poller = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(poller, EPOLL_CTL_ADD, listener, &event);
    event.data.fd = signal_fd;
    epoll_ctl(poller, EPOLL_CTL_ADD, signal_fd, &event);
    printf("ready socket=%s pid=%d\n", socket_path, getpid());
    fflush(stdout);

    int running = 1;
    while (running) {
        struct epoll_event ready[16];
        int count = epoll_wait(poller, ready, 16, -1);
        if (count < 0) {
            if (errno == EINTR) continue;
            perror("echo: epoll_wait");
            return 1;
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
                    struct epoll_event client_event = {.events = EPOLLIN, .data.fd = accepted};
                    epoll_ctl(poller, EPOLL_CTL_ADD, accepted, &client_event);
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
                    send(fd, reply, (size_t)length, MSG_NOSIGNAL);
                    start = end + 1;
                }
                client->have -= (size_t)(start - client->buffer);
                memmove(client->buffer, start, client->have);
                if (client->have == sizeof client->buffer) client->have = 0;
            }
        }
    }
    unlink(socket_path);
    return 0;
}
