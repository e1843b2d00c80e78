#!/usr/bin/env python3
"""Route churn on `datapath forward --control SOCKET`, as a routing daemon makes it: `route add`
and `route del` of /24s the table does not hold (disjoint from 198.18.0.0/15, so no flow of the
lab moves), for SECONDS. Single lines go out in windows of WINDOW requests and every answer
must be `ok`; batches are `batch` … `end` of BATCH lines each. Prints "changes seconds".

usage: control-churn.py SOCKET SECONDS single|batch [WINDOW_OR_BATCH] [GATEWAY]"""
import socket, sys, time

path, seconds, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
size = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
gateway = sys.argv[5] if len(sys.argv) > 5 else "198.18.2.2"
# 100.64.0.0/10's /24s (16 384 of them): shared address space, never in the generated tables.
prefixes = [f"100.{64 + (n >> 8)}.{n & 255}.0/24" for n in range(16384)]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
reader = s.makefile("r")

def expect_ok(count):
    for _ in range(count):
        line = reader.readline().strip()
        if line != "ok":
            sys.exit(f"control-churn: answer {line!r}")

changes, round_, start = 0, 0, time.monotonic()
while time.monotonic() - start < seconds:
    chunk = [prefixes[(round_ * size + i) % len(prefixes)] for i in range(size)]
    adds = "".join(f"route add {p} via {gateway}\n" for p in chunk)
    dels = "".join(f"route del {p}\n" for p in chunk)
    if mode == "single":
        s.sendall(adds.encode()); expect_ok(size)
        s.sendall(dels.encode()); expect_ok(size)
    else:
        s.sendall(("batch\n" + adds + "end\n").encode()); expect_ok(1)
        s.sendall(("batch\n" + dels + "end\n").encode()); expect_ok(1)
    changes += 2 * size
    round_ += 1
print(changes, f"{time.monotonic() - start:.3f}")
