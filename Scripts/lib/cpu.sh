# CPU time readings shared by the veth benchmarks. Needs HZ (getconf CLK_TCK).

# CPU 1's busy time in ns so far: uptime minus its idle and iowait time. The kernel keeps idle
# time exactly (NO_HZ) while user/system/softirq are sampled by the tick, which a CPU woken from
# tickless idle only to run softirqs (RPS) may miss; on this VM the two agree within ~3 % for
# Linux forwarding, but the tick sums of the datapath's CPU 1 varied 0.3–2.5 µs/packet between
# runs where this reading stays within 10 %. Both sides are measured this way.
cpu1_busy() {
    awk -v hz="$HZ" 'NR == FNR { up = $1; next } $1 == "cpu1" { printf "%.0f\n", up * 1e9 - ($5 + $6) / hz * 1e9 }' /proc/uptime /proc/stat
}
