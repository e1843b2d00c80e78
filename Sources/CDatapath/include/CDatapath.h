// C shim for swift-datapath: AF_PACKET TPACKET_V3 rings, poll, interface facts, CPU affinity.
// Logic lives in Swift; this file only wraps syscalls and the kernel's ring layout.
#ifndef CDATAPATH_H
#define CDATAPATH_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/if_packet.h>

#ifdef __cplusplus
extern "C" {
#endif

/// What one AF_PACKET socket with its rings should look like.
struct CDatapath_ring_config {
    const char *ifname;
    uint32_t rx_block_size;      ///< power of two, multiple of the page size; 0 = no RX ring
    uint32_t rx_block_count;
    uint32_t rx_frame_size;      ///< a hint for tpacket_req3's frame fields
    uint32_t rx_retire_ms;       ///< block retire timeout
    uint32_t tx_frame_size;      ///< 0 = no TX ring
    uint32_t tx_frame_count;
    uint32_t reserve;            ///< PACKET_RESERVE: headroom before each received frame
    uint32_t fanout_group;       ///< 0 = no fanout
    uint32_t fanout_mode;        ///< PACKET_FANOUT_HASH, PACKET_FANOUT_CPU, ...
    int32_t promiscuous;
    int32_t qdisc_bypass;
    int32_t ignore_outgoing;
    int32_t fill_rxhash;         ///< TP_FT_REQ_FILL_RXHASH
    int32_t vnet_hdr;            ///< PACKET_VNET_HDR: a virtio_net_hdr before each RX and TX frame
};

/// An open socket and its single mapping (RX ring first, then TX ring).
struct CDatapath_ring {
    int32_t fd;
    int32_t ifindex;
    void *map;
    size_t map_size;
    uint8_t *rx_base;
    uint32_t rx_block_size;
    uint32_t rx_block_count;
    uint8_t *tx_base;
    uint32_t tx_frame_size;
    uint32_t tx_frame_count;
    uint32_t tx_data_offset;     ///< TPACKET_ALIGN(sizeof(struct tpacket3_hdr))
};

/// Opens and maps. Returns 0, or -errno with *failed_call naming the call that failed.
int CDatapath_ring_open(const struct CDatapath_ring_config *config, struct CDatapath_ring *ring,
                        const char **failed_call);
void CDatapath_ring_close(struct CDatapath_ring *ring);

/// A transmit-only AF_PACKET socket on `ifindex` (bound with protocol 0: it receives nothing),
/// for frames larger than a TX ring frame (GSO super-frames). Returns the fd or -errno; the
/// failing call in `failed_call`.
int CDatapath_jumbo_open(int32_t ifindex, int32_t vnet_hdr, int32_t qdisc_bypass, const char **failed_call);
/// Sends `header` (`header_length` bytes, the virtio_net_hdr) then `frame` as one packet
/// (sendmsg with two iovecs, MSG_DONTWAIT). Returns 0 or -errno (-EAGAIN/-ENOBUFS: no room).
int CDatapath_send_with_header(int fd, const void *header, uint32_t header_length, const void *frame,
                               uint32_t length);

/// Attaches a BPF program that drops every frame to `ifindex`'s tcx ingress hook (after the
/// packet taps: AF_PACKET sockets still receive), so the kernel's own stack stops processing
/// the interface's frames. Kernel 6.6 or later, CAP_BPF and CAP_NET_ADMIN. Returns the link's fd
/// (closing it detaches the program) or -errno with the failing call in `failed_call`.
int CDatapath_ingress_drop_attach(int32_t ifindex, const char **failed_call);

/// Flushes the TX ring: sendto(fd, NULL, 0, MSG_DONTWAIT). Returns 0 or -errno.
int CDatapath_tx_kick(int fd);
/// poll(2) for POLLIN on up to 64 fds; ready[i] is set to 1 for readable ones. A pending socket
/// error is read and cleared here, so the next poll sleeps.
/// Returns the count ready, 0 on timeout, or -errno.
int CDatapath_poll_in(const int32_t *fds, int32_t count, int32_t timeout_ms, uint8_t *ready);

/// A non-blocking, close-on-exec eventfd (a worker's doorbell); -errno on failure.
int CDatapath_eventfd_open(void);
/// Adds one to the eventfd's counter (wakes a poll on it).
void CDatapath_eventfd_signal(int fd);
/// Reads the counter back to zero.
void CDatapath_eventfd_clear(int fd);
/// Interface facts by name. Returns 0 or -errno.
int CDatapath_interface_info(const char *ifname, int32_t *ifindex, uint8_t mac[6], int32_t *mtu,
                             uint32_t *flags);
/// The interface's driver name (ethtool's GDRVINFO: "veth", "mlx5_core", ...), NUL-terminated
/// in `driver`. Returns 0 or -errno.
int CDatapath_interface_driver(const char *ifname, char *driver, uint32_t size);
/// PACKET_STATISTICS (tpacket_stats_v3): resets the kernel's counters on read.
/// Adds (add != 0) or drops a link-layer multicast address on the interface for this socket
/// (PACKET_MR_MULTICAST: the NIC's filter lets the group's frames in). 0 or -errno.
int CDatapath_multicast_membership(int fd, int32_t ifindex, const uint8_t mac[6], int32_t add);
int CDatapath_ring_stats(int fd, uint32_t *packets, uint32_t *drops, uint32_t *freezes);

/// Moves the calling thread into the network namespace at `path` (setns(2), CLONE_NEWNET).
/// Returns 0 or -errno.
int CDatapath_enter_netns(const char *path);

int CDatapath_pin_current_thread(int32_t cpu);
int CDatapath_current_cpu(void);
int CDatapath_cpu_count(void);
/// The CPUs this process may run on (its affinity mask, as `taskset` sets it), ascending, at
/// most `max` of them; returns how many (0 if the mask cannot be read).
int CDatapath_allowed_cpus(int32_t *out, int32_t max);
uint64_t CDatapath_monotonic_ns(void);
uint64_t CDatapath_realtime_ns(void);
uint64_t CDatapath_thread_cpu_ns(void);
uint64_t CDatapath_process_cpu_ns(void);

/// A cheap cycle counter for per-stage cost (TSC on x86-64, the virtual counter on arm64).
static inline uint64_t CDatapath_cycles(void) {
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return 0;
#endif
}

// ---- reference counts shared between workers (skb data, ring blocks) ----

static inline uint32_t CDatapath_atomic_load_u32(const uint32_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void CDatapath_atomic_store_u32(uint32_t *p, uint32_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline long CDatapath_atomic_load_relaxed_long(const long *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void CDatapath_atomic_store_relaxed_long(long *p, long v) {
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline uint32_t CDatapath_atomic_load_relaxed_u32(const uint32_t *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void CDatapath_atomic_store_relaxed_u32(uint32_t *p, uint32_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
/// Adds and returns the new value.
static inline uint32_t CDatapath_atomic_add_u32(uint32_t *p, uint32_t v) {
    return __atomic_add_fetch(p, v, __ATOMIC_ACQ_REL);
}
/// Subtracts and returns the new value.
static inline uint32_t CDatapath_atomic_sub_u32(uint32_t *p, uint32_t v) {
    return __atomic_sub_fetch(p, v, __ATOMIC_ACQ_REL);
}

// ---- words shared between workers and the control plane (neighbours, FDB, link state) ----

static inline uint64_t CDatapath_atomic_load_u64(const uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline uint64_t CDatapath_atomic_load_relaxed_u64(const uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void CDatapath_atomic_store_u64(uint64_t *p, uint64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline void CDatapath_atomic_store_relaxed_u64(uint64_t *p, uint64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
/// Stores `desired` if `*p` still holds `expected`; returns whether it did.
static inline bool CDatapath_atomic_cas_u64(uint64_t *p, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}
static inline void CDatapath_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
static inline void CDatapath_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }

/// `bytes` of zeroed anonymous memory, aligned to 2 MiB and advised for transparent huge pages
/// (fewer TLB misses for large lookup tables); NULL on failure. Free with CDatapath_free_large.
void *CDatapath_alloc_large(size_t bytes);
void CDatapath_free_large(void *p, size_t bytes);

/// Flags (IFF_*), carrier (ETHTOOL_GLINK, else IFF_RUNNING), MTU and kernel index of `ifname` as
/// seen from socket `fd`'s network namespace. Returns 0 or -errno (-ENODEV: no such interface).
int CDatapath_link_state(int fd, const char *ifname, uint32_t *flags, int32_t *carrier, int32_t *mtu,
                         int32_t *ifindex);

// ---- ring layout accessors (inline, so Swift calls cost nothing) ----

static inline uint32_t CDatapath_block_status(const void *block) {
    const struct tpacket_block_desc *b = (const struct tpacket_block_desc *)block;
    return __atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
}
static inline void CDatapath_block_release(void *block) {
    struct tpacket_block_desc *b = (struct tpacket_block_desc *)block;
    __atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}
static inline uint32_t CDatapath_block_packet_count(const void *block) {
    return ((const struct tpacket_block_desc *)block)->hdr.bh1.num_pkts;
}
static inline uint32_t CDatapath_block_first_offset(const void *block) {
    return ((const struct tpacket_block_desc *)block)->hdr.bh1.offset_to_first_pkt;
}
static inline uint32_t CDatapath_packet_next_offset(const void *p) {
    return ((const struct tpacket3_hdr *)p)->tp_next_offset;
}
static inline uint32_t CDatapath_packet_snaplen(const void *p) {
    return ((const struct tpacket3_hdr *)p)->tp_snaplen;
}
static inline uint32_t CDatapath_packet_wire_length(const void *p) {
    return ((const struct tpacket3_hdr *)p)->tp_len;
}
static inline uint32_t CDatapath_packet_mac_offset(const void *p) {
    return ((const struct tpacket3_hdr *)p)->tp_mac;
}
static inline uint32_t CDatapath_packet_status(const void *p) {
    return ((const struct tpacket3_hdr *)p)->tp_status;
}
static inline uint32_t CDatapath_packet_rxhash(const void *p) {
    return ((const struct tpacket3_hdr *)p)->hv1.tp_rxhash;
}
static inline uint32_t CDatapath_packet_sec(const void *p) {
    return ((const struct tpacket3_hdr *)p)->tp_sec;
}
static inline uint32_t CDatapath_packet_nsec(const void *p) {
    return ((const struct tpacket3_hdr *)p)->tp_nsec;
}
/// The sockaddr_ll packet type (PACKET_HOST, PACKET_OUTGOING, ...) that follows the header.
static inline uint8_t CDatapath_packet_pkttype(const void *p) {
    const uint8_t *sll = (const uint8_t *)p + TPACKET_ALIGN(sizeof(struct tpacket3_hdr));
    return ((const struct sockaddr_ll *)sll)->sll_pkttype;
}
static inline uint32_t CDatapath_tx_frame_status(const void *frame) {
    return __atomic_load_n(&((const struct tpacket3_hdr *)frame)->tp_status, __ATOMIC_ACQUIRE);
}
static inline void CDatapath_tx_frame_submit(void *frame, uint32_t length) {
    struct tpacket3_hdr *h = (struct tpacket3_hdr *)frame;
    h->tp_len = length;
    h->tp_snaplen = length;
    h->tp_next_offset = 0;
    __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
}

enum {
    CDatapath_TP_STATUS_KERNEL = TP_STATUS_KERNEL,
    CDatapath_TP_STATUS_USER = TP_STATUS_USER,
    CDatapath_TP_STATUS_AVAILABLE = TP_STATUS_AVAILABLE,
    CDatapath_TP_STATUS_SEND_REQUEST = TP_STATUS_SEND_REQUEST,
    CDatapath_TP_STATUS_SENDING = TP_STATUS_SENDING,
    CDatapath_TP_STATUS_WRONG_FORMAT = TP_STATUS_WRONG_FORMAT,
    CDatapath_TP_STATUS_CSUM_VALID = TP_STATUS_CSUM_VALID,
    CDatapath_TP_STATUS_CSUMNOTREADY = TP_STATUS_CSUMNOTREADY,
    CDatapath_FANOUT_HASH = PACKET_FANOUT_HASH,
    CDatapath_FANOUT_CPU = PACKET_FANOUT_CPU,
    CDatapath_PACKET_OUTGOING = PACKET_OUTGOING,
};

#ifdef __cplusplus
}
#endif
#endif
