// The load of `Scripts/bench-veth udp-echo`: offers UDP datagrams to an echo server at a fixed
// rate over N flows and counts the echoes that come back intact. Kernel sockets only.
//
//   udp-echo-client --target IP [--port P] [--flows N] [--rate PPS] [--seconds S] [--size BYTES]
//                   [--source-port BASE]
//   (defaults: port 7, 16 flows, 1000000 datagrams/s, 5 s, 64-byte payloads, source ports from 20000)
//
// Flow i is a socket bound to source port BASE+i and connected to IP:P. Every 100 µs the
// client sends what the offered rate owes so far (rate × elapsed, less what it offered),
// spread round-robin over the flows, one sendmmsg per flow; a client that falls behind by more
// than 10 ms skips the excess rather than bursting it. Echoes are read with recvmmsg whenever poll says so.
// Each payload carries a magic, its flow and a sequence number, and the rest is a pattern of
// the sequence number; an echo counts when its length, flow and pattern match a datagram
// that was sent, and only once. After S seconds it keeps reading for up to 0.5 s (ending
// early once every datagram is answered or 100 ms pass without an echo), then prints on stdout
//
//   sent N received M bytes B invalid I offered O skipped K
//
// (B: payload bytes of the counted echoes; I: echoes that matched nothing sent, or repeated
// one; O: datagrams the schedule offered, of which K were skipped because the client fell
// behind and O − N − K refused by the socket: a full send queue).
// Before the clock starts, one datagram per flow is sent until each flow has had an echo (up to
// 2 s; ARP resolves then) — those carry another magic and are never counted.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x55444531u          // "UDE1"
#define WARMUP_MAGIC 0x55444530u   // "UDE0"
#define HEADER 16                  // magic u32, flow u32, seq u64 (host order: we read our own)
#define TICK_NS 100000LL
#define MAX_LAG_NS 10000000LL
#define SEND_BATCH 1024
#define RECV_BATCH 64

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void fail(const char *what, const char *call) {
    fprintf(stderr, "udp-echo-client: %s: %s (%s)\n", what, strerror(errno), call);
    exit(1);
}

static double parse_number(const char *option, const char *value, double min, double max) {
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || *end || !(v >= min && v <= max)) {
        fprintf(stderr, "udp-echo-client: %s wants a number in %g…%g, not '%s'\n", option, min, max, value);
        exit(2);
    }
    return v;
}

static void fill(uint8_t *p, uint32_t magic, uint32_t flow, uint64_t seq, size_t size) {
    memcpy(p, &magic, 4);
    memcpy(p + 4, &flow, 4);
    memcpy(p + 8, &seq, 8);
    for (size_t k = HEADER; k < size; k++) p[k] = (uint8_t)(seq + k);
}

struct client {
    int flows;
    int *fds;
    size_t size;
    uint64_t next_seq;       // datagrams the kernel accepted: their seqs are [0, next_seq)
    uint8_t *answered;       // one bit per seq
    uint64_t received, bytes, invalid, warmup_echoes;
    uint8_t *warm;           // per flow: an echo of the warm-up came back
    uint8_t *send_buf, *recv_buf, *expected;
    struct mmsghdr *send_msgs, *recv_msgs;
    struct iovec *send_iovs, *recv_iovs;
};

// Sends `count` datagrams on flow f; returns how many the kernel took.
static uint64_t send_flow(struct client *c, int f, uint64_t count) {
    uint64_t sent = 0;
    while (sent < count) {
        unsigned n = count - sent > SEND_BATCH ? SEND_BATCH : (unsigned)(count - sent);
        for (unsigned i = 0; i < n; i++) {
            uint8_t *p = c->send_buf + (size_t)i * c->size;
            fill(p, MAGIC, (uint32_t)f, c->next_seq + i, c->size);
            c->send_iovs[i] = (struct iovec){.iov_base = p, .iov_len = c->size};
            c->send_msgs[i].msg_hdr = (struct msghdr){.msg_iov = &c->send_iovs[i], .msg_iovlen = 1};
        }
        int m = sendmmsg(c->fds[f], c->send_msgs, n, MSG_DONTWAIT);
        if (m < 0) {
            if (errno == EINTR) continue;
            // EAGAIN/ENOBUFS (a full queue), ECONNREFUSED (an ICMP port unreachable came
            // back): these datagrams are not sent; the schedule moves on.
            return sent;
        }
        c->next_seq += (unsigned)m;
        sent += (unsigned)m;
        if ((unsigned)m < n) return sent;
    }
    return sent;
}

static void check_echo(struct client *c, int f, const uint8_t *p, size_t len, int truncated) {
    uint32_t magic, flow;
    uint64_t seq;
    if (len < HEADER) { c->invalid++; return; }
    memcpy(&magic, p, 4);
    memcpy(&flow, p + 4, 4);
    memcpy(&seq, p + 8, 8);
    if (magic == WARMUP_MAGIC && flow == (uint32_t)f && len == c->size && !truncated) {
        c->warm[f] = 1;
        c->warmup_echoes++;
        return;
    }
    if (magic != MAGIC || flow != (uint32_t)f || len != c->size || truncated || seq >= c->next_seq ||
        (c->answered[seq >> 3] & (1u << (seq & 7)))) {
        c->invalid++;
        return;
    }
    fill(c->expected, MAGIC, flow, seq, c->size);
    if (memcmp(p, c->expected, c->size) != 0) { c->invalid++; return; }
    c->answered[seq >> 3] |= (uint8_t)(1u << (seq & 7));
    c->received++;
    c->bytes += len;
}

// Reads every echo queued on flow f (non-blocking).
static void drain_flow(struct client *c, int f) {
    size_t cap = c->size + 1;   // one byte more than we send: a longer echo shows as longer
    for (;;) {
        for (int i = 0; i < RECV_BATCH; i++) {
            c->recv_iovs[i] = (struct iovec){.iov_base = c->recv_buf + (size_t)i * cap, .iov_len = cap};
            c->recv_msgs[i].msg_hdr = (struct msghdr){.msg_iov = &c->recv_iovs[i], .msg_iovlen = 1};
        }
        int n = recvmmsg(c->fds[f], c->recv_msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;   // EAGAIN; or ECONNREFUSED, reported once and cleared by this read
        }
        for (int i = 0; i < n; i++)
            check_echo(c, f, c->recv_buf + (size_t)i * cap, c->recv_msgs[i].msg_len,
                       (c->recv_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0);
        if (n < RECV_BATCH) return;
    }
}

// Waits up to timeout_ns for echoes and reads them; returns whether any socket was readable.
static int poll_and_drain(struct client *c, struct pollfd *pfds, long long timeout_ns) {
    struct timespec t = {.tv_sec = timeout_ns / 1000000000LL, .tv_nsec = timeout_ns % 1000000000LL};
    int ready = ppoll(pfds, (nfds_t)c->flows, timeout_ns > 0 ? &t : &(struct timespec){0, 0}, NULL);
    if (ready <= 0) return 0;
    for (int f = 0; f < c->flows; f++)
        if (pfds[f].revents) drain_flow(c, f);
    return 1;
}

int main(int argc, char **argv) {
    const char *target = NULL;
    double port = 7, flows = 16, rate = 1000000, seconds = 5, size = 64, source_port = 20000;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) goto usage;
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--target")) target = v;
        else if (!strcmp(o, "--port")) port = parse_number(o, v, 1, 65535);
        else if (!strcmp(o, "--flows")) flows = parse_number(o, v, 1, 4096);
        else if (!strcmp(o, "--rate")) rate = parse_number(o, v, 1, 1e8);
        else if (!strcmp(o, "--seconds")) seconds = parse_number(o, v, 0.01, 3600);
        else if (!strcmp(o, "--size")) size = parse_number(o, v, HEADER, 65507);
        else if (!strcmp(o, "--source-port")) source_port = parse_number(o, v, 1, 65535);
        else goto usage;
    }
    if (!target) goto usage;
    struct in_addr target_addr;
    if (inet_pton(AF_INET, target, &target_addr) != 1) {
        fprintf(stderr, "udp-echo-client: --target wants an IPv4 address, not '%s'\n", target);
        return 2;
    }
    if (source_port + flows - 1 > 65535) {
        fprintf(stderr, "udp-echo-client: source ports %g…%g run past 65535; lower --source-port or --flows\n",
                source_port, source_port + flows - 1);
        return 2;
    }
    uint64_t offered_total = (uint64_t)(rate * seconds);
    if (offered_total > (1ull << 32)) {
        fprintf(stderr, "udp-echo-client: rate × seconds is %llu datagrams; at most 2^32 are tracked\n",
                (unsigned long long)offered_total);
        return 2;
    }

    struct client c;
    memset(&c, 0, sizeof(c));
    c.flows = (int)flows;
    c.size = (size_t)size;
    c.fds = calloc((size_t)c.flows, sizeof(int));
    c.warm = calloc((size_t)c.flows, 1);
    c.answered = calloc(offered_total / 8 + 1, 1);
    c.send_buf = malloc((size_t)SEND_BATCH * c.size);
    c.recv_buf = malloc((size_t)RECV_BATCH * (c.size + 1));
    c.expected = malloc(c.size);
    c.send_msgs = calloc(SEND_BATCH, sizeof(struct mmsghdr));
    c.send_iovs = calloc(SEND_BATCH, sizeof(struct iovec));
    c.recv_msgs = calloc(RECV_BATCH, sizeof(struct mmsghdr));
    c.recv_iovs = calloc(RECV_BATCH, sizeof(struct iovec));
    struct pollfd *pfds = calloc((size_t)c.flows, sizeof(struct pollfd));
    if (!c.fds || !c.warm || !c.answered || !c.send_buf || !c.recv_buf || !c.expected || !c.send_msgs ||
        !c.send_iovs || !c.recv_msgs || !c.recv_iovs || !pfds)
        fail("out of memory", "malloc");
    // ppoll's 100 µs waits would otherwise stretch by the default 50 µs timer slack.
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = target_addr};
    for (int f = 0; f < c.flows; f++) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) fail("cannot open a UDP socket", "socket");
        // Room for the echoes of a few bursts per flow, as the server has for its whole input.
        int buf = 1 << 20;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
        struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(source_port + f)),
                                    .sin_addr.s_addr = htonl(INADDR_ANY)};
        if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0)
            fail("cannot bind a flow's source port (in use? try another --source-port)", "bind");
        if (connect(fd, (struct sockaddr *)&server, sizeof(server)) < 0)
            fail("cannot connect to the target (no route to it?)", "connect");
        c.fds[f] = fd;
        pfds[f] = (struct pollfd){.fd = fd, .events = POLLIN};
    }

    // Warm-up: resolves the server's MAC and checks it answers, outside the measured window.
    long long warm_end = now_ns() + 2000000000LL;
    int warm_flows = 0;
    while (warm_flows < c.flows && now_ns() < warm_end) {
        for (int f = 0; f < c.flows; f++) {
            if (c.warm[f]) continue;
            fill(c.send_buf, WARMUP_MAGIC, (uint32_t)f, 0, c.size);
            if (send(c.fds[f], c.send_buf, c.size, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ECONNREFUSED)
                fail("cannot send", "send");
        }
        // Up to 100 ms for these echoes, then the flows still unanswered send again.
        long long wait_end = now_ns() + 100000000LL;
        while (warm_flows < c.flows && now_ns() < wait_end) {
            poll_and_drain(&c, pfds, wait_end - now_ns());
            warm_flows = 0;
            for (int f = 0; f < c.flows; f++) warm_flows += c.warm[f];
        }
    }
    if (warm_flows < c.flows)
        fprintf(stderr, "udp-echo-client: warm-up: %d of %d flows had an echo from %s:%g within 2 s\n",
                warm_flows, c.flows, target, port);
    c.invalid = 0;   // a late warm-up echo is not an error of the measured run

    uint64_t offered = 0, skipped = 0;
    int next_flow = 0;
    long long start = now_ns(), end = start + (long long)(seconds * 1e9), tick = start;
    for (long long now = start; now < end; now = now_ns()) {
        uint64_t due = (uint64_t)((double)(now - start) * rate / 1e9);
        if (due > offered_total) due = offered_total;
        // Behind by more than MAX_LAG_NS (the client was descheduled): skip, don't burst.
        uint64_t max_lag = (uint64_t)(rate * MAX_LAG_NS / 1e9) + 1;
        if (due > offered + max_lag) {
            skipped += due - max_lag - offered;
            offered = due - max_lag;
        }
        uint64_t owed = due - offered;
        offered = due;
        if (owed) {
            // Round-robin over the flows from where the last burst stopped.
            uint64_t each = owed / (uint64_t)c.flows, extra = owed % (uint64_t)c.flows;
            for (int k = 0; k < c.flows; k++) {
                int f = (next_flow + k) % c.flows;
                uint64_t count = each + ((uint64_t)k < extra);
                if (count) send_flow(&c, f, count);
            }
            next_flow = (int)((next_flow + extra) % (uint64_t)c.flows);
        }
        tick += TICK_NS;
        if (tick < now) tick = now + TICK_NS;
        poll_and_drain(&c, pfds, tick - now_ns());
    }
    // Drain: up to 0.5 s, shorter once all are answered or the echoes stop for 100 ms.
    long long drain_end = now_ns() + 500000000LL, quiet_since = now_ns();
    while (now_ns() < drain_end && c.received < c.next_seq && now_ns() - quiet_since < 100000000LL) {
        if (poll_and_drain(&c, pfds, 10000000LL)) quiet_since = now_ns();
    }

    printf("sent %llu received %llu bytes %llu invalid %llu offered %llu skipped %llu\n",
           (unsigned long long)c.next_seq, (unsigned long long)c.received, (unsigned long long)c.bytes,
           (unsigned long long)c.invalid, (unsigned long long)offered, (unsigned long long)skipped);
    return 0;

usage:
    fprintf(stderr, "usage: udp-echo-client --target IP [--port P] [--flows N] [--rate PPS] [--seconds S] "
                    "[--size BYTES] [--source-port BASE]\n");
    return 2;
}
