# `Scripts/bench-veth forward`: the Linux kernel vs `datapath forward` as the router of the
# routed lab (lab_up_router), fed by the same `datapath gen` on CPU 0. Sourced by bench-veth,
# which sets SECS, SIZE, FLOWS, RUNS, BIN, HZ.

# The destinations: 198.18.16.0 … 198.19.255.255 (126976 addresses), routed via the sink.
# Both routers reach the sink through a permanent neighbour entry with a MAC that is not s0's:
# the sink's kernel counts each frame on s0 and drops it at once (PACKET_OTHERHOST) instead of
# routing it (which, for a destination it does not own, costs a dst per packet on the router's
# CPU, in the softirq after the router's transmit).
SINK_MAC=02:00:00:00:00:99
ROUTES="198.18.16.0/20 198.18.32.0/19 198.18.64.0/18 198.18.128.0/17 198.19.0.0/16"
FIRST_DESTINATION=198.18.16.0

sink_rx() { ip -n "$NS_SINK" -s -j link show s0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }        # utime + stime
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }
. Scripts/lib/cpu.sh  # cpu1_busy

kernel_router_up() {
    ip -n "$NS_DUT" addr add 198.18.1.1/24 dev x0
    ip -n "$NS_DUT" addr add 198.18.2.1/24 dev x1
    for r in $ROUTES; do ip -n "$NS_DUT" route add "$r" via 198.18.2.2; done
    ip -n "$NS_DUT" neigh replace 198.18.2.2 lladdr "$SINK_MAC" nud permanent dev x1
    ip netns exec "$NS_DUT" sysctl -qw net.ipv4.ip_forward=1
    # Receive work for x0 on CPU 1 (the generator's sends would otherwise do it on CPU 0).
    ip netns exec "$NS_DUT" sh -c 'echo 2 > /sys/class/net/x0/queues/rx-0/rps_cpus'
}

kernel_router_down() {
    ip netns exec "$NS_DUT" sysctl -qw net.ipv4.ip_forward=0
    ip netns exec "$NS_DUT" sh -c 'echo 0 > /sys/class/net/x0/queues/rx-0/rps_cpus'
    ip -n "$NS_DUT" addr flush dev x0
    ip -n "$NS_DUT" addr flush dev x1
}

# feed SIZE: the generator for SECS seconds; prints the sink's packet count delta.
feed() {
    local before after vary=""
    [ "$FLOWS" -gt 1 ] && vary="--vary-dst"
    before=$(sink_rx)
    ip netns exec "$NS_GEN" taskset -c 0 "$BIN" gen --dev g0 --src-mac "$(lab_mac g0)" --dst-mac "$(lab_mac x0)" \
        --src 198.18.1.2 --dst "$FIRST_DESTINATION" --size "$1" --flows "$FLOWS" $vary \
        --count 1000000000 --duration "$SECS" >/dev/null
    sleep 0.5
    after=$(sink_rx)
    echo $((after - before))
}

# run_kernel SIZE → "pps cpu_ns_per_packet"
run_kernel() {
    kernel_router_up
    local b a n
    b=$(cpu1_busy); n=$(feed "$1"); a=$(cpu1_busy)
    kernel_router_down
    python3 -c "import sys; n=$n; ns=($a-$b); print(f'{n/$SECS:.0f} {ns/n if n else float(\"inf\"):.1f}')"
}

# run_datapath SIZE → "pps cpu_ns_per_packet cpu1_ns_per_packet user_ns_per_packet"
run_datapath() {
    local conf="/tmp/bench-veth-$$.conf"
    {
        echo "link add eth0 type afpacket dev x0"; echo "link add eth1 type afpacket dev x1"
        echo "addr add 198.18.1.1/24 dev eth0"; echo "addr add 198.18.2.1/24 dev eth1"
        for r in $ROUTES; do echo "route add $r via 198.18.2.2"; done
        echo "neigh add 198.18.2.2 lladdr $SINK_MAC dev eth1"
    } >"$conf"
    ip netns exec "$NS_DUT" taskset -c 1 "$BIN" forward --config "$conf" --quiet ${FORWARD_FLAGS:-} ${DP_FLAGS:-} --duration $((SECS + 15)) \
        >"/tmp/bench-veth-forward-$$.log" 2>&1 &
    local pid=$!
    sleep 1.5
    local b a b1 a1 bu au n
    b=$(cpu_ticks "$pid"); bu=$(user_ticks "$pid"); b1=$(cpu1_busy); n=$(feed "$1")
    a=$(cpu_ticks "$pid"); au=$(user_ticks "$pid"); a1=$(cpu1_busy)
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    python3 -c "n=$n; p=($a-$b)/$HZ*1e9; u=($au-$bu)/$HZ*1e9; c=($a1-$b1); f=lambda x: x/n if n else float('inf'); print(f'{n/$SECS:.0f} {f(p):.1f} {f(c):.1f} {f(u):.1f}')"
}

bench_forward() {
    lab_up_router
    local sizes="${SIZE:-64 1500}"
    echo "== bench-veth forward: sizes $sizes, $FLOWS flows (destinations), ${SECS}s per run, $RUNS runs each"
    for size in $sizes; do
        local rows=()
        for run in $(seq "$RUNS"); do
            local k d
            k=$(run_kernel "$size"); d=$(run_datapath "$size")
            echo "size $size run $run: kernel $k | datapath $d   (pps, CPU ns/packet[, CPU 1 busy, user ns/packet])"
            rows+=("$k $d")
        done
        printf '%s\n' "${rows[@]}" | python3 -c "
import sys, statistics as st
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
k_pps = st.median(r[0] for r in rows); k_cpu = st.median(r[1] for r in rows)
d_pps = st.median(r[2] for r in rows); d_cpu = st.median(r[3] for r in rows); d_cpu1 = st.median(r[4] for r in rows)
d_user = st.median(r[5] for r in rows)
print(f'size $size: Linux forwarding   {k_pps/1e6:.3f} Mpps at the sink, {k_cpu:.0f} ns CPU per forwarded packet (CPU 1 busy)')
print(f'size $size: datapath forward   {d_pps/1e6:.3f} Mpps at the sink, {d_cpu:.0f} ns CPU per forwarded packet (process; {d_user:.0f} of it in user space), {d_cpu1:.0f} (CPU 1 busy)')
print(f'size $size: ratios datapath/Linux: pps {d_pps/k_pps:.2f} (target >= 1.0), CPU/packet {d_cpu/k_cpu:.2f} (target <= 0.5; CPU 1 busy: {d_cpu1/k_cpu:.2f})')
"
    done
}
