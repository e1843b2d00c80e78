// AF_PACKET TPACKET_V3 ring setup (packet(7), Documentation/networking/packet_mmap.rst).
#define _GNU_SOURCE
#include "CDatapath.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <linux/if_ether.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define FAIL(call) do { int e = errno; *failed_call = (call); CDatapath_ring_close(ring); return -e; } while (0)

static int set_int(int fd, int option, int value) {
    return setsockopt(fd, SOL_PACKET, option, &value, sizeof(value));
}

int CDatapath_ring_open(const struct CDatapath_ring_config *c, struct CDatapath_ring *ring,
                        const char **failed_call) {
    memset(ring, 0, sizeof(*ring));
    ring->fd = -1;
    ring->map = MAP_FAILED;

    unsigned ifindex = if_nametoindex(c->ifname);
    if (ifindex == 0) {
        *failed_call = "if_nametoindex";
        return -ENODEV;
    }
    ring->ifindex = (int32_t)ifindex;

    // Protocol 0 until the rings exist: nothing is queued before we can read it.
    ring->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (ring->fd < 0) FAIL("socket");
    if (set_int(ring->fd, PACKET_VERSION, TPACKET_V3) < 0) FAIL("setsockopt(PACKET_VERSION)");
    if (c->reserve && set_int(ring->fd, PACKET_RESERVE, (int)c->reserve) < 0)
        FAIL("setsockopt(PACKET_RESERVE)");
    // Before the rings: the kernel refuses PACKET_VNET_HDR once they exist.
    if (c->vnet_hdr && set_int(ring->fd, PACKET_VNET_HDR, 1) < 0) FAIL("setsockopt(PACKET_VNET_HDR)");
    // Also before the rings: a TX frame the kernel cannot parse is skipped (made available,
    // the ring's head moves on) instead of stopping the ring at it (TP_STATUS_WRONG_FORMAT).
    // The datapath relies on it to discard frames the device keeps refusing.
    if (c->tx_frame_size && set_int(ring->fd, PACKET_LOSS, 1) < 0) FAIL("setsockopt(PACKET_LOSS)");

    size_t rx_size = 0, tx_size = 0;
    if (c->rx_block_size) {
        struct tpacket_req3 req;
        memset(&req, 0, sizeof(req));
        req.tp_block_size = c->rx_block_size;
        req.tp_block_nr = c->rx_block_count;
        req.tp_frame_size = c->rx_frame_size;
        req.tp_frame_nr = (c->rx_block_size / c->rx_frame_size) * c->rx_block_count;
        req.tp_retire_blk_tov = c->rx_retire_ms;
        req.tp_feature_req_word = c->fill_rxhash ? TP_FT_REQ_FILL_RXHASH : 0;
        if (setsockopt(ring->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
            FAIL("setsockopt(PACKET_RX_RING)");
        rx_size = (size_t)c->rx_block_size * c->rx_block_count;
    }
    if (c->tx_frame_size) {
        // TX with TPACKET_V3: retire timeout, private size and feature word must stay 0.
        struct tpacket_req3 req;
        memset(&req, 0, sizeof(req));
        uint32_t block = 1u << 16;
        if (block < c->tx_frame_size) block = c->tx_frame_size;
        uint32_t per_block = block / c->tx_frame_size;
        req.tp_block_size = block;
        req.tp_block_nr = (c->tx_frame_count + per_block - 1) / per_block;
        req.tp_frame_size = c->tx_frame_size;
        req.tp_frame_nr = req.tp_block_nr * per_block;
        if (setsockopt(ring->fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0)
            FAIL("setsockopt(PACKET_TX_RING)");
        tx_size = (size_t)req.tp_block_size * req.tp_block_nr;
        ring->tx_frame_size = req.tp_frame_size;
        ring->tx_frame_count = req.tp_frame_nr;
        ring->tx_data_offset = TPACKET_ALIGN(sizeof(struct tpacket3_hdr));
    }
    if (rx_size + tx_size) {
        ring->map_size = rx_size + tx_size;
        ring->map = mmap(NULL, ring->map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED | MAP_POPULATE,
                         ring->fd, 0);
        if (ring->map == MAP_FAILED) {
            // MAP_LOCKED can fail under a small RLIMIT_MEMLOCK: map without it.
            ring->map = mmap(NULL, ring->map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring->fd, 0);
            if (ring->map == MAP_FAILED) FAIL("mmap");
        }
        if (rx_size) {
            ring->rx_base = (uint8_t *)ring->map;
            ring->rx_block_size = c->rx_block_size;
            ring->rx_block_count = c->rx_block_count;
        }
        if (tx_size) ring->tx_base = (uint8_t *)ring->map + rx_size;
    }
    if (c->qdisc_bypass && set_int(ring->fd, PACKET_QDISC_BYPASS, 1) < 0)
        FAIL("setsockopt(PACKET_QDISC_BYPASS)");
    if (c->ignore_outgoing && set_int(ring->fd, PACKET_IGNORE_OUTGOING, 1) < 0)
        FAIL("setsockopt(PACKET_IGNORE_OUTGOING)");

    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = (int)ifindex;
    if (bind(ring->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) FAIL("bind");

    if (c->promiscuous) {
        struct packet_mreq mreq;
        memset(&mreq, 0, sizeof(mreq));
        mreq.mr_ifindex = (int)ifindex;
        mreq.mr_type = PACKET_MR_PROMISC;
        if (setsockopt(ring->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) < 0)
            FAIL("setsockopt(PACKET_ADD_MEMBERSHIP)");
    }
    if (c->fanout_group) {
        int arg = (int)((c->fanout_group & 0xffff) | (c->fanout_mode << 16));
        if (set_int(ring->fd, PACKET_FANOUT, arg) < 0) FAIL("setsockopt(PACKET_FANOUT)");
    }
    return 0;
}

void CDatapath_ring_close(struct CDatapath_ring *ring) {
    if (ring->map != MAP_FAILED && ring->map != NULL) munmap(ring->map, ring->map_size);
    ring->map = MAP_FAILED;
    ring->rx_base = NULL;
    ring->tx_base = NULL;
    if (ring->fd >= 0) close(ring->fd);
    ring->fd = -1;
}

int CDatapath_jumbo_open(int32_t ifindex, int32_t vnet_hdr, int32_t qdisc_bypass, const char **failed_call) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *failed_call = "socket";
        return -errno;
    }
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = 0;
    sll.sll_ifindex = ifindex;
    // Room for a few dozen super-frames in flight (the default send buffer holds about three);
    // SO_SNDBUFFORCE needs CAP_NET_ADMIN, SO_SNDBUF is capped by net.core.wmem_max.
    int sndbuf = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    const char *call = NULL;
    if (vnet_hdr && set_int(fd, PACKET_VNET_HDR, 1) < 0) call = "setsockopt(PACKET_VNET_HDR)";
    else if (qdisc_bypass && set_int(fd, PACKET_QDISC_BYPASS, 1) < 0) call = "setsockopt(PACKET_QDISC_BYPASS)";
    else if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) call = "bind";
    if (call) {
        int e = errno;
        close(fd);
        *failed_call = call;
        return -e;
    }
    return fd;
}

int CDatapath_send_with_header(int fd, const void *header, uint32_t header_length, const void *frame,
                               uint32_t length) {
    struct iovec iov[2] = {
        { .iov_base = (void *)header, .iov_len = header_length },
        { .iov_base = (void *)frame, .iov_len = length },
    };
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    for (;;) {
        // Never block a worker: a full send buffer is a drop, as a full TX ring is.
        if (sendmsg(fd, &msg, MSG_DONTWAIT) >= 0) return 0;
        if (errno == EINTR) continue;
        return -errno;
    }
}

int CDatapath_tx_kick(int fd) {
    for (;;) {
        if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0) return 0;
        if (errno == EINTR) continue;
        return -errno;
    }
}

int CDatapath_multicast_membership(int fd, int32_t ifindex, const uint8_t mac[6], int32_t add) {
    struct packet_mreq mreq;
    memset(&mreq, 0, sizeof(mreq));
    mreq.mr_ifindex = (int)ifindex;
    mreq.mr_type = PACKET_MR_MULTICAST;
    mreq.mr_alen = 6;
    memcpy(mreq.mr_address, mac, 6);
    if (setsockopt(fd, SOL_PACKET, add ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP, &mreq, sizeof(mreq)) < 0)
        return -errno;
    return 0;
}

int CDatapath_ring_stats(int fd, uint32_t *packets, uint32_t *drops, uint32_t *freezes) {
    struct tpacket_stats_v3 st;
    socklen_t len = sizeof(st);
    memset(&st, 0, sizeof(st));
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0) return -errno;
    *packets = st.tp_packets;
    *drops = st.tp_drops;
    *freezes = st.tp_freeze_q_cnt;
    return 0;
}
