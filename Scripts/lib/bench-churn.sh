# `Scripts/bench-veth churn`: route changes on the control socket of `datapath forward` holding
# an Internet-sized table (--routes, default 1 000 000 random /16–/24 prefixes outside
# 198.18.0.0/15) in the routed lab, measured three ways in one run:
#   1. forwarding alone: `datapath gen` on CPU 0 at full speed, the forwarder on CPU 1;
#   2. churn alone: Scripts/lib/control-churn.py (on CPU 0) adding and deleting /24s as single
#      requests (windows of 1 000) and as batches of 1 000 lines, for SECS seconds each;
#   3. both: the generator offering half of (1)'s rate while single-request churn runs, both on
#      CPU 0 — the forwarder's worker and its control thread share CPU 1 — and what reaches the
#      sink against what was offered;
#   4. full speed: the generator unpaced, as in (1), beside the churn: the sink's rate against (1)'s.
# Sourced by bench-veth, which sets SECS, SIZE, BIN, HZ. Uses bench-forward.sh's helpers.

bench_churn() {
    . Scripts/lib/bench-forward.sh
    lab_up_router
    local conf="/tmp/bench-veth-$$.conf" sock="/tmp/bench-veth-$$.sock"
    {
        echo "link add eth0 type afpacket dev x0"; echo "link add eth1 type afpacket dev x1"
        echo "addr add 198.18.1.1/24 dev eth0"; echo "addr add 198.18.2.1/24 dev eth1"
        for r in $ROUTES; do echo "route add $r via 198.18.2.2"; done
        echo "neigh add 198.18.2.2 lladdr $SINK_MAC dev eth1"
        python3 - "$CHURN_ROUTES" <<'PY'
import random, sys
random.seed(42)
seen = set()
while len(seen) < int(sys.argv[1]):
    length = random.randint(16, 24)
    a = random.getrandbits(32) & (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
    if a >> 17 == 0xC612 >> 1 or a >> 22 == (100 << 2 | 1) or (a, length) in seen:
        continue   # not the lab's 198.18.0.0/15, not the churn's 100.64.0.0/10
    seen.add((a, length))
    print(f"route add {a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}/{length} via 198.18.2.2")
PY
    } >"$conf"
    local size="${SIZE:-64}"
    echo "== bench-veth churn: $CHURN_ROUTES routes, ${size}-byte frames, $FLOWS flows, ${SECS}s per phase"
    local start=$SECONDS
    ip netns exec "$NS_DUT" taskset -c 1 "$BIN" forward --config "$conf" --control "$sock" --quiet \
        --duration $((SECS * 5 + 120)) >"/tmp/bench-veth-forward-$$.log" 2>&1 &
    local pid=$!
    while [ ! -S "$sock" ] && kill -0 "$pid" 2>/dev/null && [ $((SECONDS - start)) -lt 100 ]; do sleep 0.2; done
    [ -S "$sock" ] || { echo "the forwarder did not come up:"; cat "/tmp/bench-veth-forward-$$.log"; return 1; }
    echo "forwarder up with its table after $((SECONDS - start)) s"
    local alone single batch
    alone=$(feed "$size")
    echo "1. forwarding alone: $((alone / SECS)) pps at the sink"
    single=$(taskset -c 0 python3 Scripts/lib/control-churn.py "$sock" "$SECS" single 1000)
    batch=$(taskset -c 0 python3 Scripts/lib/control-churn.py "$sock" "$SECS" batch 1000)
    python3 -c "c, s = map(float, '$single'.split()); print(f'2. churn alone: single requests {c / s:.0f} changes/s')"
    python3 -c "c, s = map(float, '$batch'.split()); print(f'   churn alone: batches of 1000 {c / s:.0f} changes/s')"
    local rate=$((alone / SECS / 2)) before after churned
    before=$(sink_rx)
    taskset -c 0 python3 Scripts/lib/control-churn.py "$sock" "$SECS" single 1000 >"/tmp/bench-veth-churn-$$.out" &
    local churn=$!
    ip netns exec "$NS_GEN" taskset -c 0 "$BIN" gen --dev g0 --src-mac "$(lab_mac g0)" --dst-mac "$(lab_mac x0)" \
        --src 198.18.1.2 --dst "$FIRST_DESTINATION" --size "$size" --flows "$FLOWS" --vary-dst \
        --pps "$rate" --count $((rate * SECS)) --duration "$SECS" >/dev/null
    wait "$churn"
    sleep 0.5
    after=$(sink_rx)
    churned=$(cat "/tmp/bench-veth-churn-$$.out")
    python3 -c "
c, s = map(float, '$churned'.split()); got = $after - $before; offered = $rate * $SECS
print(f'3. both: {c / s:.0f} changes/s (single requests) while {offered:.0f} frames were offered at {$rate} pps: '
      f'{got:.0f} reached the sink ({got / offered:.3f})')"
    # 4. Full speed: the generator unpaced, as in (1), with the churn beside it. On this
    # two-core machine nothing is left for the control plane: the churn client shares CPU 0
    # with the generator, the control thread CPU 1 with the worker.
    taskset -c 0 python3 Scripts/lib/control-churn.py "$sock" "$SECS" single 1000 >"/tmp/bench-veth-churn-$$.out" &
    churn=$!
    local full
    full=$(feed "$size")
    wait "$churn"
    churned=$(cat "/tmp/bench-veth-churn-$$.out")
    python3 -c "
c, s = map(float, '$churned'.split())
print(f'4. full speed: {c / s:.0f} changes/s (single requests) while {$full / $SECS:.0f} pps reached the sink '
      f'({$full / $alone:.3f} of forwarding alone; the worker shares its core with the control thread)')"
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    grep -E "pools|routes" "/tmp/bench-veth-forward-$$.log" | tail -3
    rm -f "$conf" "$sock" "/tmp/bench-veth-churn-$$.out"
}
