// The Linux kernel's side of `Scripts/bench-veth udp-echo`: a UDP echo server on kernel
// sockets, one socket, one thread, batches of 64 (recvmmsg → sendmmsg back to each sender).
//
//   udp-echo-server [--port P] [--rcvbuf BYTES] [--duration SECONDS]
//
// Prints `udp-echo-server: echoing on 0.0.0.0:P` on stderr when bound, and
// `echoed N received M send_errors E` on stdout at SIGTERM/SIGINT or after the duration
// (default 600 s: a server its script lost track of still ends).
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_DATAGRAM 65536

static volatile sig_atomic_t stopping;

static void on_signal(int signo) { (void)signo; stopping = 1; }

static void fail(const char *what, const char *call) {
    fprintf(stderr, "udp-echo-server: %s: %s (%s)\n", what, strerror(errno), call);
    exit(1);
}

static long parse_long(const char *option, const char *value, long min, long max) {
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || *end || v < min || v > max) {
        fprintf(stderr, "udp-echo-server: %s wants a number in %ld…%ld, not '%s'\n", option, min, max, value);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    long port = 7, rcvbuf = 4 << 20, duration = 600;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) goto usage;
        if (!strcmp(argv[i], "--port")) port = parse_long(argv[i], argv[i + 1], 1, 65535);
        else if (!strcmp(argv[i], "--rcvbuf")) rcvbuf = parse_long(argv[i], argv[i + 1], 0, 1L << 30);
        else if (!strcmp(argv[i], "--duration")) duration = parse_long(argv[i], argv[i + 1], 1, 86400);
        else goto usage;
    }

    // No SA_RESTART: a signal ends a blocked recvmmsg with EINTR.
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("cannot open a UDP socket", "socket");
    // A deep queue, so that the offered bursts (every 100 µs) are not what limits the kernel.
    // SO_RCVBUFFORCE passes net.core.rmem_max when we are root; otherwise take what we get.
    int size = (int)rcvbuf;
    if (rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    // Wakes a blocked receive now and then, so a signal that lands just before recvmmsg
    // (after the check of `stopping`) still ends the loop within 100 ms.
    struct timeval tick = {.tv_sec = 0, .tv_usec = 100000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick)) < 0)
        fail("cannot set a receive timeout", "setsockopt(SO_RCVTIMEO)");
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0)
        fail("cannot bind 0.0.0.0 (port in use? below 1024 needs root)", "bind");
    fprintf(stderr, "udp-echo-server: echoing on 0.0.0.0:%ld\n", port);

    static char buffers[BATCH][MAX_DATAGRAM];
    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];
    struct sockaddr_in peers[BATCH];
    unsigned long long received = 0, echoed = 0, send_errors = 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    time_t end = now.tv_sec + duration;
    while (!stopping) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec >= end) break;
        for (int i = 0; i < BATCH; i++) {
            iovs[i] = (struct iovec){.iov_base = buffers[i], .iov_len = MAX_DATAGRAM};
            msgs[i].msg_hdr = (struct msghdr){.msg_name = &peers[i], .msg_namelen = sizeof(peers[i]),
                                              .msg_iov = &iovs[i], .msg_iovlen = 1};
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            fail("cannot receive", "recvmmsg");
        }
        received += (unsigned)n;
        // Each datagram goes back to its sender (msg_name as recvmmsg filled it), as received.
        for (int i = 0; i < n; i++) iovs[i].iov_len = msgs[i].msg_len;
        int done = 0;
        while (done < n) {
            int m = sendmmsg(fd, msgs + done, (unsigned)(n - done), 0);
            if (m < 0) {
                if (errno == EINTR) continue;
                // ENOBUFS, EAGAIN…: this datagram is lost, as a kernel echo would lose it.
                send_errors++;
                done++;
                continue;
            }
            done += m;
            echoed += (unsigned)m;
        }
    }
    printf("echoed %llu received %llu send_errors %llu\n", echoed, received, send_errors);
    return 0;

usage:
    fprintf(stderr, "usage: udp-echo-server [--port P] [--rcvbuf BYTES] [--duration SECONDS]\n");
    return 2;
}
