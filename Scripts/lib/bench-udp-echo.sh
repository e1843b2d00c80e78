# `Scripts/bench-veth udp-echo` (#12): a UDP echo server on Linux's sockets vs the stack's
# `udp-echo`, on the two-namespace lab (lab_up_echo), loaded by the same client:
#   (a) kernel: `udp-echo-server` (Scripts/bench/udp-echo-server.c, recvmmsg → sendmmsg in
#       batches of 64) on 198.18.0.1:7, s0 carrying 198.18.0.1/24
#   (b) stack:  `udp-echo --config … --port 7` on an AF_PACKET link over s0, which carries no
#       kernel address
# Both servers are pinned to CPU 1; the client (Scripts/bench/udp-echo-client.c: FLOWS sockets,
# RATE datagrams/s offered in 100 µs bursts, SIZE-byte payloads checked on return) to CPU 0.
# For each it prints the echoes/s counted at the client, and the CPU time per echo two ways: the
# server process's utime+stime, and CPU 1's busy time (cpu1_busy). veth delivers a frame in the
# sender's softirq, so RPS sends s0's receive work to CPU 1 and c0's to CPU 0, in both runs: the
# kernel's UDP receive up to the socket queue (a) and AF_PACKET's copy into the ring (b) land on
# CPU 1, with the server, and the client's receive stays on its own CPU. CPU 1 busy therefore
# holds all the server side's work, its softirq included — in (b) that includes the kernel
# stack's own look at each frame on s0 (ip_rcv, no route without an address, dropped), which a
# real deployment of the stack on AF_PACKET pays too. Anything else running on CPU 1 counts too.
# RPS costs an IPI per burst each way, which in a VM is a VM exit on both CPUs: --no-rps leaves
# it off, and then CPU 1 holds the server, the client's receive of the echoes (run in the
# softirq of the server's transmit), but not the server's receive (run in the client's send).
# Sourced by bench-veth, which sets SECS, SIZE, FLOWS, RATE, RUNS, KERNEL_ONLY, NO_RPS, BIN, HZ.

. Scripts/lib/cpu.sh  # cpu1_busy
ECHO_DIR="/tmp/bench-veth-$$.d"   # bench-veth's trap removes it
ECHO_ADDRESS=198.18.0.1
ECHO_PORT=7

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }        # utime + stime

udp_echo_build_tools() {
    mkdir -p "$ECHO_DIR"
    for tool in udp-echo-client udp-echo-server; do
        gcc -O2 -Wall -Wextra -o "$ECHO_DIR/$tool" "Scripts/bench/$tool.c"
    done
}

# wait_ready PID LOG TEXT: returns once TEXT is in LOG (10 s at most); fails if PID dies first,
# and kills PID if it never says TEXT.
wait_ready() {
    for _ in $(seq 100); do
        grep -qF "$3" "$2" 2>/dev/null && return 0
        kill -0 "$1" 2>/dev/null || { echo "the server exited before it was ready:" >&2; cat "$2" >&2; exit 1; }
        sleep 0.1
    done
    kill -TERM "$1" 2>/dev/null || true
    echo "the server did not say '$3' within 10 s:" >&2
    cat "$2" >&2
    exit 1
}

# measure PID NAME: runs the client against the server PID; prints
# "echoes_per_s process_ns_per_echo cpu1_busy_ns_per_echo sent received invalid".
measure() {
    local pid="$1" name="$2" b a b1 a1 out
    ip -n "$NS_CLIENT" neigh flush dev c0   # each run resolves its server afresh (in the warm-up)
    b=$(cpu_ticks "$pid"); b1=$(cpu1_busy)
    out=$(ip netns exec "$NS_CLIENT" taskset -c 0 "$ECHO_DIR/udp-echo-client" --target "$ECHO_ADDRESS" \
        --port "$ECHO_PORT" --flows "$FLOWS" --rate "$RATE" --seconds "$SECS" --size "$SIZE" \
        2>"/tmp/bench-veth-client-$name.log") || { cat "/tmp/bench-veth-client-$name.log" >&2; return 1; }
    a=$(cpu_ticks "$pid"); a1=$(cpu1_busy)
    [ -s "/tmp/bench-veth-client-$name.log" ] && sed 's/^/  /' "/tmp/bench-veth-client-$name.log" >&2
    echo "$out" >>"/tmp/bench-veth-client-$name.log"
    python3 - "$out" "$b" "$a" "$b1" "$a1" "$SECS" "$HZ" <<'PY'
import sys
fields = sys.argv[1].split()
counts = dict(zip(fields[0::2], map(int, fields[1::2])))
b, a, b1, a1, secs, hz = map(float, sys.argv[2:])
n = counts["received"]
per = lambda ns: ns / n if n else float("inf")
print(f"{n / secs:.0f} {per((a - b) / hz * 1e9):.1f} {per(a1 - b1):.1f} {counts['sent']} {n} {counts['invalid']}")
PY
}

# run_kernel_echo → measure's line, for Linux's echo server.
run_kernel_echo() {
    ip -n "$NS_SERVER" addr add "$ECHO_ADDRESS/24" dev s0
    ip netns exec "$NS_SERVER" taskset -c 1 "$ECHO_DIR/udp-echo-server" --port "$ECHO_PORT" --duration $((SECS + 30)) \
        >"/tmp/bench-veth-udp-echo-server.log" 2>&1 &
    local pid=$! result
    wait_ready "$pid" "/tmp/bench-veth-udp-echo-server.log" "udp-echo-server: echoing on"
    result=$(measure "$pid" kernel) || { kill -TERM "$pid"; exit 1; }
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    ip -n "$NS_SERVER" addr flush dev s0
    echo "$result"
}

# run_stack_echo → measure's line, for the stack's `udp-echo` on s0 (no kernel address there).
run_stack_echo() {
    local conf="$ECHO_DIR/udp-echo.conf"
    ip -n "$NS_SERVER" addr flush dev s0
    printf '%s\n' "link add eth0 type afpacket dev s0" "link set eth0 up" "addr add $ECHO_ADDRESS/24 dev eth0" >"$conf"
    # --duration: it ends by itself should this script be killed without its trap.
    ip netns exec "$NS_SERVER" taskset -c 1 "$BIN" --config "$conf" --port "$ECHO_PORT" --duration $((SECS + 30)) \
        >"/tmp/bench-veth-udp-echo.log" 2>&1 &
    local pid=$! result
    wait_ready "$pid" "/tmp/bench-veth-udp-echo.log" "udp-echo: echoing on $ECHO_ADDRESS:$ECHO_PORT"
    result=$(measure "$pid" stack) || { kill -INT "$pid"; exit 1; }
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "$result"
}

bench_udp_echo() {
    SIZE="${SIZE:-64}"
    udp_echo_build_tools
    lab_up_echo
    if [ -z "$NO_RPS" ]; then
        ip netns exec "$NS_SERVER" sh -c 'echo 2 > /sys/class/net/s0/queues/rx-0/rps_cpus'   # CPU 1
        ip netns exec "$NS_CLIENT" sh -c 'echo 1 > /sys/class/net/c0/queues/rx-0/rps_cpus'   # CPU 0
    fi
    echo "== bench-veth udp-echo: ${SIZE}-byte payloads, $FLOWS flows, $RATE datagrams/s offered, ${SECS}s per run, $RUNS runs each${NO_RPS:+, no RPS}${KERNEL_ONLY:+ (kernel only)}"
    local rows=() run k s
    for run in $(seq "$RUNS"); do
        k=$(run_kernel_echo)
        if [ -n "$KERNEL_ONLY" ]; then
            s="nan nan nan 0 0 0"
            echo "run $run: kernel $k   (echoes/s, CPU ns/echo: process, CPU 1 busy; sent, received, invalid)"
        else
            s=$(run_stack_echo)
            echo "run $run: kernel $k | udp-echo $s   (echoes/s, CPU ns/echo: process, CPU 1 busy; sent, received, invalid)"
        fi
        rows+=("$k $s")
    done
    printf '%s\n' "${rows[@]}" | python3 -c "
import math, sys, statistics as st
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
med = lambda i: st.median(r[i] for r in rows)
def line(name, o):
    pps, proc, cpu1, sent, got = med(o), med(o + 1), med(o + 2), med(o + 3), med(o + 4)
    loss = 1 - got / sent if sent else float('nan')
    print(f'{name} {pps/1e6:.3f} Mpps echoed of {sent/$SECS/1e6:.3f} sent ({loss:.1%} lost), {proc:.0f} ns CPU per echo (server process), {cpu1:.0f} (CPU 1 busy) (median)')
    if sent < 0.95 * $RATE * $SECS:
        print(f'  the client sent {sent/($RATE*$SECS):.0%} of the {$RATE/1e6:.3f} Mpps offered: it, not the server, set that rate (see /tmp/bench-veth-client-*.log)')
line('Linux sockets (recvmmsg/sendmmsg): ', 0)
if not math.isnan(med(6)):
    line('stack udp-echo (AF_PACKET):         ', 6)
    print(f'ratios udp-echo/Linux: echoes/s {med(6)/med(0):.2f}, CPU/echo {med(7)/med(1):.2f} (process), {med(8)/med(2):.2f} (CPU 1 busy)')
"
}
