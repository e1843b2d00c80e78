// poll, interface facts, CPU affinity and clocks for swift-datapath.
#define _GNU_SOURCE
#include "CDatapath.h"
#include <sys/eventfd.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/socket.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

int CDatapath_eventfd_open(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void CDatapath_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t n;
    do { n = write(fd, &one, sizeof one); } while (n < 0 && errno == EINTR);
}

void CDatapath_eventfd_clear(int fd) {
    uint64_t value;
    ssize_t n;
    do { n = read(fd, &value, sizeof value); } while (n < 0 && errno == EINTR);
}

int CDatapath_poll_in(const int32_t *fds, int32_t count, int32_t timeout_ms, uint8_t *ready) {
    struct pollfd p[64];
    if (count > 64) count = 64;
    for (int i = 0; i < count; i++) {
        p[i].fd = fds[i];
        p[i].events = POLLIN | POLLERR;
        p[i].revents = 0;
    }
    int n;
    do {
        n = poll(p, (nfds_t)count, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (int i = 0; i < count; i++) {
        ready[i] = p[i].revents ? 1 : 0;
        if (p[i].revents & POLLERR) {
            // A pending socket error (AF_PACKET sets ENETDOWN when the interface goes down or
            // away) keeps poll readable until it is read: take it, so an idle worker sleeps.
            int err = 0;
            socklen_t len = sizeof(err);
            (void)getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
        }
    }
    return n;
}

int CDatapath_interface_info(const char *ifname, int32_t *ifindex, uint8_t mac[6], int32_t *mtu,
                             uint32_t *flags) {
    if (strlen(ifname) >= IFNAMSIZ) return -ENAMETOOLONG;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    int rc = 0;
    if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) { rc = -errno; goto out; }
    *ifindex = ifr.ifr_ifindex;
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) { rc = -errno; goto out; }
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    if (ioctl(fd, SIOCGIFMTU, &ifr) < 0) { rc = -errno; goto out; }
    *mtu = ifr.ifr_mtu;
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) { rc = -errno; goto out; }
    *flags = (uint32_t)(uint16_t)ifr.ifr_flags;
out:
    close(fd);
    return rc;
}

int CDatapath_interface_driver(const char *ifname, char *driver, uint32_t size) {
    if (strlen(ifname) >= IFNAMSIZ) return -ENAMETOOLONG;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct ethtool_drvinfo info;
    memset(&info, 0, sizeof(info));
    info.cmd = ETHTOOL_GDRVINFO;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    ifr.ifr_data = (char *)&info;
    int rc = ioctl(fd, SIOCETHTOOL, &ifr) < 0 ? -errno : 0;
    close(fd);
    if (rc == 0 && size > 0) {
        strncpy(driver, info.driver, size - 1);
        driver[size - 1] = 0;
    }
    return rc;
}

#define CDATAPATH_HUGE (2u << 20)

void *CDatapath_alloc_large(size_t bytes) {
    size_t rounded = (bytes + CDATAPATH_HUGE - 1) & ~(size_t)(CDATAPATH_HUGE - 1);
    // Over-map by one huge page so the start can be aligned, then trim both ends.
    size_t mapped = rounded + CDATAPATH_HUGE;
    uint8_t *raw = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uint8_t *aligned = (uint8_t *)(((uintptr_t)raw + CDATAPATH_HUGE - 1) & ~(uintptr_t)(CDATAPATH_HUGE - 1));
    if (aligned > raw) munmap(raw, (size_t)(aligned - raw));
    size_t tail = (size_t)((raw + mapped) - (aligned + rounded));
    if (tail > 0) munmap(aligned + rounded, tail);
    madvise(aligned, rounded, MADV_HUGEPAGE);
    return aligned;
}

void CDatapath_free_large(void *p, size_t bytes) {
    if (p == NULL) return;
    size_t rounded = (bytes + CDATAPATH_HUGE - 1) & ~(size_t)(CDATAPATH_HUGE - 1);
    munmap(p, rounded);
}

int CDatapath_link_state(int fd, const char *ifname, uint32_t *flags, int32_t *carrier, int32_t *mtu,
                         int32_t *ifindex) {
    if (strlen(ifname) >= IFNAMSIZ) return -ENAMETOOLONG;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) return -errno;
    *ifindex = ifr.ifr_ifindex;
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) return -errno;
    *flags = (uint16_t)ifr.ifr_flags;
    if (ioctl(fd, SIOCGIFMTU, &ifr) < 0) return -errno;
    *mtu = ifr.ifr_mtu;
    // Carrier itself (netif_carrier_ok) from ETHTOOL_GLINK: IFF_RUNNING follows operstate,
    // which linkwatch sets up to a second after carrier comes. Drivers without get_link: the
    // flag.
    struct ethtool_value link = {.cmd = ETHTOOL_GLINK};
    ifr.ifr_data = (void *)&link;
    *carrier = ioctl(fd, SIOCETHTOOL, &ifr) == 0 ? (link.data != 0) : ((*flags & IFF_RUNNING) != 0);
    return 0;
}

int CDatapath_enter_netns(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = setns(fd, CLONE_NEWNET);
    int e = errno;
    close(fd);
    return rc < 0 ? -e : 0;
}

int CDatapath_pin_current_thread(int32_t cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int CDatapath_current_cpu(void) { return sched_getcpu(); }

int CDatapath_allowed_cpus(int32_t *out, int32_t max) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++) {
        if (CPU_ISSET(cpu, &set)) out[n++] = cpu;
    }
    return n;
}

int CDatapath_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static uint64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t CDatapath_monotonic_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t CDatapath_realtime_ns(void) { return clock_ns(CLOCK_REALTIME); }
uint64_t CDatapath_thread_cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }
uint64_t CDatapath_process_cpu_ns(void) { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }
