// Keeps the kernel's own stack off an interface the datapath drives: a two-instruction BPF
// program on the interface's tcx ingress hook that drops every frame (TC_ACT_SHOT). tcx ingress
// runs in __netif_receive_skb_core after the packet taps, so AF_PACKET sockets still get every
// frame; the kernel just stops running ip_rcv (and, for an interface without an address, a
// route lookup and a dst allocation per frame) on what the datapath already handles.
//
// Numbers, not names, for what Debian 12's 6.1 headers lack (BPF_TCX_INGRESS: kernel 6.6).
#define _GNU_SOURCE
#include "CDatapath.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <sys/syscall.h>

enum {
    TCX_INGRESS_ATTACH = 46,  // BPF_TCX_INGRESS in enum bpf_attach_type
    TC_ACTION_SHOT = 2,       // TC_ACT_SHOT
};

static long bpf_call(int command, void *attr, unsigned size) {
    return syscall(__NR_bpf, command, attr, size);
}

int CDatapath_ingress_drop_attach(int32_t ifindex, const char **failed_call) {
    // r0 = TC_ACT_SHOT; exit
    struct bpf_insn program[2];
    memset(program, 0, sizeof(program));
    program[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    program[0].dst_reg = BPF_REG_0;
    program[0].imm = TC_ACTION_SHOT;
    program[1].code = BPF_JMP | BPF_EXIT;

    union bpf_attr load;
    memset(&load, 0, sizeof(load));
    load.prog_type = BPF_PROG_TYPE_SCHED_CLS;
    load.insn_cnt = 2;
    load.insns = (uint64_t)(uintptr_t)program;
    load.license = (uint64_t)(uintptr_t)"MIT";
    load.expected_attach_type = TCX_INGRESS_ATTACH;
    strncpy(load.prog_name, "dp_ingress_drop", sizeof(load.prog_name) - 1);
    int prog = (int)bpf_call(BPF_PROG_LOAD, &load, sizeof(load));
    if (prog < 0) {
        *failed_call = "bpf(BPF_PROG_LOAD)";
        return -errno;
    }

    // link_create: prog_fd, target_ifindex, attach_type, flags, then tcx's relative_fd and
    // expected_revision, all 0 (no ordering against other programs).
    union bpf_attr link;
    memset(&link, 0, sizeof(link));
    link.link_create.prog_fd = (uint32_t)prog;
    link.link_create.target_ifindex = (uint32_t)ifindex;
    link.link_create.attach_type = TCX_INGRESS_ATTACH;
    int fd = (int)bpf_call(BPF_LINK_CREATE, &link, sizeof(link));
    int saved = errno;
    close(prog);  // the link holds the program
    if (fd < 0) {
        *failed_call = "bpf(BPF_LINK_CREATE, tcx ingress)";
        return -saved;
    }
    return fd;
}
