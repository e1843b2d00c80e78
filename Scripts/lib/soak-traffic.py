#!/usr/bin/env python3
"""Traffic for Scripts/soak, one role per run (each bounded in time and in packets):

  recv PORT SECONDS OUT.json        count sequence-numbered datagrams until SIGTERM or SECONDS
  send DST PORT PPS SECONDS OUT.json   send them at PPS, paced every millisecond
  hostile DEV SRC_MAC DST_MAC PPS SECONDS SEED OUT.json
                                    bursts of hostile frames on DEV (AF_PACKET) towards the
                                    router: fragments, floods, malformed frames, ARP

Every address in every header is in 198.18.0.0/15 (RFC 2544), spoofed sources included. The
valid datagram carries a run nonce and a sequence number; the receiver counts each sequence
number once (duplicates and reordering are counted apart). Needs only the standard library.
"""
import json
import os
import random
import re
import select
import signal
import socket
import struct
import sys
import time

MAGIC = 0x534F414B  # "SOAK"


def write_json(path, value):
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)


# ---------------------------------------------------------------- the valid flow

def receive(port, seconds, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Room for seconds of a stalled reader: a loss here would not be the router's.
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE (root)
    s.bind(("0.0.0.0", port))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    seen = bytearray(1 << 20)
    received = unique = duplicates = reordered = foreign = 0
    highest = -1
    nonce = None
    deadline = time.monotonic() + seconds
    buf = bytearray(2048)
    while not stop and time.monotonic() < deadline:
        try:
            ready, _, _ = select.select([s], [], [], 0.2)
        except InterruptedError:
            continue
        if not ready:
            continue
        # Drain what is queued without going back to select for each datagram.
        for _ in range(4096):
            try:
                n = s.recv_into(buf, 2048, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            if n < 16:
                foreign += 1
                continue
            magic, run, seq = struct.unpack_from("!IIQ", buf)
            if magic != MAGIC or (nonce is not None and run != nonce):
                foreign += 1
                continue
            nonce = run
            received += 1
            while seq >= len(seen) * 8:
                seen.extend(bytearray(len(seen)))
            byte, bit = seq >> 3, 1 << (seq & 7)
            if seen[byte] & bit:
                duplicates += 1
                continue
            seen[byte] |= bit
            unique += 1
            if seq < highest:
                reordered += 1
            else:
                highest = seq
    write_json(out, {"received": received, "unique": unique, "duplicates": duplicates,
                     "reordered": reordered, "foreign": foreign, "highest_seq": highest,
                     "gaps": gaps(seen, highest)})


def gaps(seen, highest, limit=2000):
    """The runs of sequence numbers below `highest` never received, as [first, count]."""
    runs = []
    view = bytes(seen[:(highest >> 3) + 1])
    for m in re.finditer(rb"[^\xff]+", view):
        for byte in range(m.start(), m.end()):
            for bit in range(8):
                seq = byte * 8 + bit
                if seq >= highest or view[byte] & (1 << bit):
                    continue
                if runs and runs[-1][0] + runs[-1][1] == seq:
                    runs[-1][1] += 1
                elif len(runs) < limit:
                    runs.append([seq, 1])
    return runs


def send(dst, port, pps, seconds, out):
    # Two sockets, alternate datagrams: one as the kernel sends UDP over veth (checksum left
    # to the device: the router's staged path completes it), one with SO_NO_CHECK (no UDP
    # checksum, nothing to complete: the router's fast path forwards it).
    socks = []
    for no_check in (0, 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, 11, no_check)  # SO_NO_CHECK
        s.connect((dst, port))
        socks.append(s)
    nonce = random.getrandbits(32)
    pad = bytes(16)  # 16 + 16 bytes of payload: a 74-byte frame
    sent = errors = 0
    start = time.monotonic()
    end = start + seconds
    limit = int(pps * seconds)
    while sent < limit:
        now = time.monotonic()
        if now >= end:
            break
        due = min(limit, int((now - start) * pps) + 1)
        # Never more than 5 ms worth at once, even after a stall (no bursts the ring must absorb).
        due = min(due, sent + max(1, pps // 200))
        while sent < due:
            try:
                socks[sent & 1].send(struct.pack("!IIQ", MAGIC, nonce, sent) + pad)
                sent += 1
            except (BlockingIOError, OSError):
                errors += 1
                time.sleep(0.0005)
                break
        time.sleep(0.001)
    write_json(out, {"sent": sent, "send_errors": errors, "seconds": time.monotonic() - start, "pps": pps})


# ---------------------------------------------------------------- frames

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


def ip4(text):
    return socket.inet_aton(text)


def ipv4(src, dst, proto, payload, ttl=64, ident=0, frag=0, options=b"", version=4, ihl=None, total=None,
         good_checksum=True, tos=0):
    """An IPv4 header (with `options`) and `payload`; any field can be made wrong."""
    if ihl is None:
        ihl = (20 + len(options)) // 4
    if total is None:
        total = 20 + len(options) + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", (version << 4) | (ihl & 0xF), tos, total & 0xFFFF, ident & 0xFFFF,
                         frag & 0xFFFF, ttl, proto, 0, ip4(src), ip4(dst)) + options
    c = checksum(header)
    if not good_checksum:
        c ^= 0x5A5A
    return header[:10] + struct.pack("!H", c) + header[12:] + payload


def udp(src, dst, sport, dport, data, good_checksum=True, length=None):
    length = 8 + len(data) if length is None else length
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 17, 8 + len(data))
    c = checksum(pseudo + struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data) or 0xFFFF
    if not good_checksum:
        c ^= 0x1234
    return struct.pack("!HHHH", sport, dport, length, c) + data


def icmp(kind, code, rest, data, good_checksum=True):
    body = struct.pack("!BBH", kind, code, 0) + rest + data
    c = checksum(body)
    if not good_checksum:
        c ^= 0x0F0F
    return body[:2] + struct.pack("!H", c) + body[4:]


class Hostile:
    """The hostile kinds. Each returns a list of frames; `run` sends them in bursts."""

    ROUTER_A, ROUTER_B = "198.18.1.1", "198.18.2.1"
    HOST_A, HOST_B = "198.18.1.2", "198.18.2.2"
    PROTECTED = {"198.18.1.1", "198.18.1.2", "198.18.2.1", "198.18.2.2"}

    def __init__(self, src_mac, dst_mac, rng):
        self.src_mac, self.dst_mac, self.rng = mac(src_mac), mac(dst_mac), rng

    def eth(self, payload, ethertype=0x0800, dst=None, src=None):
        return (dst or self.dst_mac) + (src or self.src_mac) + struct.pack("!H", ethertype) + payload

    def addr(self, net, low=3, high=254):
        """A random host of `net` ("198.18.1"), never one of the lab's real addresses."""
        while True:
            a = "%s.%d" % (net, self.rng.randint(low, high))
            if a not in self.PROTECTED:
                return a

    def spoofed(self):
        """A random source in 198.18.0.0/15 (some on A's subnet, which the router answers)."""
        r = self.rng.random()
        if r < 0.5:
            return self.addr("198.18.1")
        if r < 0.9:
            return "198.%d.%d.%d" % (self.rng.choice((18, 19)), self.rng.randint(3, 255), self.rng.randint(1, 254))
        return self.rng.choice(("198.18.1.1", "198.18.2.1", "198.18.1.255", "198.18.1.0"))  # martian-ish

    def ident(self):
        return self.rng.getrandbits(16)

    # -- fragments
    def fragments(self, n):
        frames = []
        r = self.rng
        for _ in range(n):
            src, ident = self.spoofed(), self.ident()
            dst = r.choice((self.ROUTER_A, self.ROUTER_A, self.ROUTER_B, self.HOST_B, self.addr("198.18.2")))
            data = bytes(r.getrandbits(8) for _ in range(48))
            kind = r.randrange(7)
            if kind == 0:    # a first fragment alone: waits for 30 s, then expires
                frames.append(self.eth(ipv4(src, dst, 17, data, ident=ident, frag=0x2000)))
            elif kind == 1:  # a middle one alone
                frames.append(self.eth(ipv4(src, dst, 17, data[:16], ident=ident, frag=0x2000 | 3)))
            elif kind == 2:  # a last one alone
                frames.append(self.eth(ipv4(src, dst, 17, data[:16], ident=ident, frag=5)))
            elif kind == 3:  # overlapping pair (RFC 5722: the datagram goes)
                frames.append(self.eth(ipv4(src, dst, 17, data[:24], ident=ident, frag=0x2000)))
                frames.append(self.eth(ipv4(src, dst, 17, data[:24], ident=ident, frag=0x2000 | 2)))
            elif kind == 4:  # an exact duplicate
                f = self.eth(ipv4(src, dst, 17, data[:16], ident=ident, frag=0x2000 | 1))
                frames += [f, f]
            elif kind == 5:  # past 65535 bytes
                frames.append(self.eth(ipv4(src, dst, 17, data, ident=ident, frag=8190)))
            else:            # a contradicting last fragment, then one beyond it
                frames.append(self.eth(ipv4(src, dst, 17, data[:16], ident=ident, frag=4)))
                frames.append(self.eth(ipv4(src, dst, 17, data[:16], ident=ident, frag=0x2000 | 6)))
        return frames

    def complete_fragments(self, n):
        """Echo requests to the router in 3 fragments, some out of order: reassembled and
        answered (to host A, whose neighbour the router knows)."""
        frames = []
        for _ in range(n):
            ident, seq = self.ident(), self.rng.getrandbits(16)
            body = icmp(8, 0, struct.pack("!HH", 0x50AC, seq), bytes(range(56)))
            parts = [(0, body[:24], True), (3, body[24:48], True), (6, body[48:], False)]
            if self.rng.random() < 0.5:
                self.rng.shuffle(parts)
            for off, chunk, more in parts:
                frames.append(self.eth(ipv4(self.HOST_A, self.ROUTER_A, 1, chunk, ident=ident,
                                            frag=(0x2000 if more else 0) | off)))
        return frames

    # -- floods
    def flood(self, n):
        """UDP to random destinations: hosts that do not exist behind either side (neighbour
        resolution fails), no route at all (198.19), the prefixes the churn adds and removes,
        the filter rule's port; TTL 1 and 0 now and then."""
        frames = []
        r = self.rng
        for _ in range(n):
            x = r.random()
            if x < 0.3:
                dst = self.addr("198.18.2")
            elif x < 0.5:
                dst = "198.19.%d.%d" % (r.randint(0, 255), r.randint(1, 254))
            elif x < 0.8:
                dst = "198.18.%d.%d" % (r.randint(200, 215), r.randint(1, 254))
            elif x < 0.9:
                dst = self.HOST_B
            else:
                dst = "198.18.%d.%d" % (r.randint(3, 199), r.randint(1, 254))
            dport = r.choice((9, 7777, 7777, 5555, 53, 123))
            ttl = r.choice((64, 64, 64, 64, 64, 64, 64, 1, 0, 2))
            src = self.spoofed()
            frames.append(self.eth(ipv4(src, dst, 17, udp(src, dst, r.randint(1024, 65535), dport, bytes(18)),
                                        ttl=ttl, ident=self.ident())))
        return frames

    def large(self, n):
        """1400–1472-byte datagrams through the router to host B, with and without DF: the churn
        lowers eth1's MTU now and then (fragmented, or answered with fragmentation needed)."""
        frames = []
        for _ in range(n):
            size = self.rng.randint(1372, 1444)
            data = udp(self.HOST_A, self.HOST_B, 40000, 9, bytes(size))
            frames.append(self.eth(ipv4(self.HOST_A, self.HOST_B, 17, data, ident=self.ident(),
                                        frag=self.rng.choice((0, 0x4000)))))
        return frames

    # -- malformed
    def malformed(self, n):
        frames = []
        r = self.rng
        for _ in range(n):
            src, dst = self.spoofed(), r.choice((self.ROUTER_A, self.HOST_B, self.addr("198.18.2")))
            payload = udp(src, dst, 1234, 9, bytes(12))
            kind = r.randrange(18)
            if kind == 0:
                f = ipv4(src, dst, 17, payload, version=r.choice((0, 5, 6, 15)))
            elif kind == 1:
                f = ipv4(src, dst, 17, payload, ihl=r.randrange(5))
            elif kind == 2:
                f = ipv4(src, dst, 17, payload, ihl=15)  # longer than the header it has
            elif kind == 3:
                f = ipv4(src, dst, 17, payload, good_checksum=False)
            elif kind == 4:
                f = ipv4(src, dst, 17, payload, total=len(payload) + 20 + r.randint(1, 600))  # truncated
            elif kind == 5:
                f = ipv4(src, dst, 17, payload, total=r.randrange(20))  # total below the header
            elif kind == 6:
                f = ipv4(src, dst, 17, payload)[:r.randint(1, 19)]  # shorter than a header
            elif kind == 7:  # an option whose length runs past the header
                f = ipv4(src, dst, 17, payload, options=bytes((7, 40, 4, 0)))
            elif kind == 8:  # option length 0 / 1
                f = ipv4(src, dst, 17, payload, options=bytes((68, r.choice((0, 1)), 5, 0)))
            elif kind == 9:  # loose source route: refused
                f = ipv4(src, dst, 17, payload, options=bytes((131, 7, 4)) + ip4(self.HOST_B) + b"\0")
            elif kind == 10:  # record route with room: recorded when forwarded
                f = ipv4(src, self.HOST_B, 17, payload, options=bytes((7, 11, 4)) + bytes(8) + b"\0")
            elif kind == 11:  # an ICMP echo to the router with a bad checksum / too short
                body = icmp(8, 0, b"\0\1\0\1", bytes(8), good_checksum=False)
                f = ipv4(src, self.ROUTER_A, 1, body if r.random() < 0.5 else body[:r.randint(0, 7)])
            elif kind == 12:  # UDP to the router: bad checksum, bad length, no socket
                f = ipv4(src, self.ROUTER_A, 17, r.choice((
                    udp(src, self.ROUTER_A, 1, 9, bytes(8), good_checksum=False),
                    udp(src, self.ROUTER_A, 1, 9, bytes(8), length=r.choice((3, 200))),
                    udp(src, self.ROUTER_A, 1, 9, bytes(8)), payload[:5])))
            elif kind == 13:  # a protocol nobody serves
                f = ipv4(src, self.ROUTER_A, r.choice((253, 254, 132, 47)), bytes(16))
            elif kind == 14:  # link-layer padding past the total length, then garbage
                f = ipv4(self.HOST_A, self.ROUTER_A, 1, icmp(8, 0, b"\0\2\0\2", bytes(8))) + bytes(r.randint(1, 40))
            elif kind == 15:  # echo to the subnet broadcast (ignored), to the router (answered)
                f = ipv4(self.HOST_A, r.choice(("198.18.1.255", self.ROUTER_A, self.ROUTER_B)), 1,
                         icmp(8, 0, b"\0\3\0\3", bytes(r.randint(0, 1400))))
                frames.append(self.eth(f, dst=b"\xff" * 6 if f[16:20] == ip4("198.18.1.255") else None))
                continue
            elif kind == 16:  # not for us (another host's MAC): OTHERHOST before ip_rcv counts it
                frames.append(self.eth(ipv4(src, dst, 17, payload), dst=b"\x02\x00\x00\x00\x77\x77"))
                continue
            else:  # an EtherType nobody handles / a broken ARP / a runt
                choice = r.randrange(3)
                if choice == 0:
                    frames.append(self.eth(bytes(46), ethertype=r.choice((0x88B5, 0x86DD, 0x9000))))
                elif choice == 1:
                    frames.append(self.eth(bytes((0, 1, 8, 0, 7, 4, 0, 1)) + bytes(r.randint(0, 20)),
                                           ethertype=0x0806, dst=b"\xff" * 6))
                else:
                    frames.append(self.eth(b"", ethertype=0x0800))
                continue
            frames.append(self.eth(f))
        return frames

    def arp(self, n):
        """ARP requests for the router's addresses from random senders (on the subnet and off
        it), and unsolicited replies for hosts that do not exist: never for the lab's hosts."""
        frames = []
        r = self.rng
        for _ in range(n):
            sender_mac = bytes((0x02, 0x5A, r.getrandbits(8), r.getrandbits(8), r.getrandbits(8), r.getrandbits(8)))
            if r.random() < 0.7:
                sender = self.addr("198.18.1") if r.random() < 0.7 else "198.%d.%d.%d" % (
                    r.choice((18, 19)), r.randint(3, 255), r.randint(1, 254))
                body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + sender_mac + ip4(sender) + bytes(6) + ip4(
                    r.choice((self.ROUTER_A, self.ROUTER_A, self.ROUTER_B, self.addr("198.18.1"))))
                frames.append(self.eth(body, ethertype=0x0806, dst=b"\xff" * 6, src=sender_mac))
            else:
                sender = self.addr("198.18.1")
                body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + sender_mac + ip4(sender) + self.dst_mac + ip4(
                    self.ROUTER_A)
                frames.append(self.eth(body, ethertype=0x0806, src=sender_mac))
        return frames


def hostile(dev, src_mac, dst_mac, pps, seconds, seed, out):
    rng = random.Random(seed)
    h = Hostile(src_mac, dst_mac, rng)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((dev, 0))
    kinds = [("fragments", h.fragments, 150), ("complete-fragments", h.complete_fragments, 30),
             ("flood", h.flood, 2000), ("large", h.large, 100), ("malformed", h.malformed, 600),
             ("arp", h.arp, 300)]
    counts = {name: 0 for name, _, _ in kinds}
    errors = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    start = time.monotonic()
    end = start + seconds
    limit = int(pps * seconds)
    total = rounds = 0
    per_tick = max(1, pps // 1000)
    # Every kind once at the start (the warm-up then sees each path), then bursts in a random
    # order with pauses, until the time or the packet budget runs out.
    while not stop and time.monotonic() < end and total < limit:
        order = list(kinds) if rounds == 0 else rng.sample(kinds, len(kinds))
        for name, make, n in order:
            if stop or time.monotonic() >= end or total >= limit:
                break
            frames = make(max(1, int(n * rng.uniform(0.5, 1.0))))[:limit - total]
            for i in range(0, len(frames), per_tick):
                for f in frames[i:i + per_tick]:
                    try:
                        s.send(f)
                        counts[name] += 1
                    except OSError:
                        errors += 1
                time.sleep(0.001)
            total = sum(counts.values()) + errors
            time.sleep(rng.uniform(0.05, 0.4))
        rounds += 1
    write_json(out, {"frames": counts, "send_errors": errors, "rounds": rounds,
                     "seconds": time.monotonic() - start})


def main(argv):
    role = argv[1] if len(argv) > 1 else ""
    if role == "recv" and len(argv) == 5:
        receive(int(argv[2]), float(argv[3]), argv[4])
    elif role == "send" and len(argv) == 7:
        send(argv[2], int(argv[3]), int(argv[4]), float(argv[5]), argv[6])
    elif role == "hostile" and len(argv) == 9:
        hostile(argv[2], argv[3], argv[4], int(argv[5]), float(argv[6]), int(argv[7]), argv[8])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
