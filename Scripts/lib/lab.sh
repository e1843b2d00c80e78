# A three-namespace lab joined by veth pairs, for the demo and the veth benchmarks:
#
#   [ns gen] g0 ──── x0 [ns dut] x1 ──── s0 [ns sink]
#   198.18.0.1/24                        198.18.0.2/24  (xconnect: one L2 segment)
#
# The DUT's interfaces carry no kernel address and no IPv6, so the kernel never answers for
# the datapath. Only 198.18.0.0/15 (RFC 2544) is used. Names carry the PID; `lab_down` (run it
# from a trap) deletes everything, this lab's and lab_up_echo's.
LAB_ID="${LAB_ID:-dp$$}"
NS_GEN="${LAB_ID}-gen"
NS_DUT="${LAB_ID}-dut"
NS_SINK="${LAB_ID}-sink"
NS_CLIENT="${LAB_ID}-client"
NS_SERVER="${LAB_ID}-server"

lab_down() {
    for ns in "$NS_GEN" "$NS_DUT" "$NS_SINK" "$NS_CLIENT" "$NS_SERVER"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}

lab_quiet_link() {  # ns dev: up, no IPv6, no offloads that veth would otherwise fake
    ip -n "$1" link set "$2" up
    ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
}

# lab_up: the L2 lab (gen and sink on one segment through the DUT).
lab_up() {
    ip netns add "$NS_GEN"
    ip netns add "$NS_DUT"
    ip netns add "$NS_SINK"
    ip link add g0 netns "$NS_GEN" type veth peer name x0 netns "$NS_DUT"
    ip link add s0 netns "$NS_SINK" type veth peer name x1 netns "$NS_DUT"
    for pair in "$NS_GEN g0" "$NS_DUT x0" "$NS_DUT x1" "$NS_SINK s0"; do
        read -r ns dev <<<"$pair"
        ip -n "$ns" link set "$dev" address "$(lab_mac "$dev")"
        lab_quiet_link "$ns" "$dev"
    done
    ip -n "$NS_GEN" addr add 198.18.0.1/24 dev g0
    ip -n "$NS_SINK" addr add 198.18.0.2/24 dev s0
    ip -n "$NS_GEN" link set lo up
    ip -n "$NS_SINK" link set lo up
}

# lab_up_router: the routed lab. The DUT routes between two subnets; the hosts send through it.
#   [gen] g0 198.18.1.2/24 ── x0 [dut: 198.18.1.1 | 198.18.2.1] x1 ── s0 198.18.2.2/24 [sink]
# Both hosts route 198.18.0.0/15 via the DUT. Their TCP segmentation offload stays on: the
# forwarder's rings carry virtio-net headers, so TSO super-frames cross it whole as GSO packets.
lab_up_router() {
    lab_up
    ip -n "$NS_GEN" addr flush dev g0
    ip -n "$NS_SINK" addr flush dev s0
    ip -n "$NS_GEN" addr add 198.18.1.2/24 dev g0
    ip -n "$NS_SINK" addr add 198.18.2.2/24 dev s0
    ip -n "$NS_GEN" route add 198.18.0.0/15 via 198.18.1.1
    ip -n "$NS_SINK" route add 198.18.0.0/15 via 198.18.2.1
}

# lab_up_echo: two namespaces, for a client and the server it talks to.
#   [ns client] c0 198.18.0.2/24 ──── s0 [ns server]  (s0's address is the server's business)
lab_up_echo() {
    ip netns add "$NS_CLIENT"
    ip netns add "$NS_SERVER"
    ip link add c0 netns "$NS_CLIENT" type veth peer name s0 netns "$NS_SERVER"
    for pair in "$NS_CLIENT c0" "$NS_SERVER s0"; do
        read -r ns dev <<<"$pair"
        ip -n "$ns" link set "$dev" address "$(lab_mac "$dev")"
        lab_quiet_link "$ns" "$dev"
        ip -n "$ns" link set lo up
    done
    ip -n "$NS_CLIENT" addr add 198.18.0.2/24 dev c0
}

lab_mac() {  # fixed, locally administered MACs so scripts can name them
    case "$1" in
        g0|c0) echo 02:00:00:00:00:01 ;;
        s0) echo 02:00:00:00:00:02 ;;
        x0) echo 02:00:00:00:01:00 ;;
        x1) echo 02:00:00:00:01:01 ;;
    esac
}
