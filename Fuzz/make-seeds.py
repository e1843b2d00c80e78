#!/usr/bin/env python3
"""Writes the seed corpus (Fuzz/Corpus/<target>/): valid packets of every kind the stack
handles, and malformed ones. Run from the repository root: python3 Fuzz/make-seeds.py"""
import os, struct

def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def ip(src, dst, proto, payload, ttl=64, ident=1, flags=0x4000, options=b''):
    ihl = 5 + len(options) // 4
    h = struct.pack('!BBHHHBBH4s4s', 0x40 | ihl, 0, ihl * 4 + len(payload), ident, flags, ttl, proto, 0,
                    bytes(src), bytes(dst)) + options
    h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    return h + payload

def eth(dst, src, etype, payload):
    return bytes(dst) + bytes(src) + struct.pack('!H', etype) + payload

def udp(src, dst, sport, dport, data):
    u = struct.pack('!HHHH', sport, dport, 8 + len(data), 0) + data
    pseudo = bytes(src) + bytes(dst) + struct.pack('!BBH', 0, 17, len(u))
    c = csum(pseudo + u) or 0xFFFF
    return u[:6] + struct.pack('!H', c) + u[8:]

def icmp(t, c, rest, data):
    m = struct.pack('!BBH', t, c, 0) + rest + data
    return m[:2] + struct.pack('!H', csum(m)) + m[4:]

def tcp(src, dst, sport, dport, flags, options=b''):
    off = (20 + len(options)) // 4
    t = struct.pack('!HHIIBBHHH', sport, dport, 1, 0, off << 4, flags, 65535, 0, 0) + options
    pseudo = bytes(src) + bytes(dst) + struct.pack('!BBH', 0, 6, len(t))
    return t[:16] + struct.pack('!H', csum(pseudo + t)) + t[18:]

ROUTER = [2, 0, 0, 0, 0, 1]; HOSTA = [2, 0, 0, 0, 0, 0xA2]
A = [198, 18, 1, 2]; R = [198, 18, 1, 1]; FAR = [198, 19, 0, 5]
frames = {
    'udp-echo': eth(ROUTER, HOSTA, 0x800, ip(A, R, 17, udp(A, R, 4000, 7, b'hello'))),
    'udp-closed-port': eth(ROUTER, HOSTA, 0x800, ip(A, R, 17, udp(A, R, 4000, 9999, b'x'))),
    'udp-forward': eth(ROUTER, HOSTA, 0x800, ip(A, FAR, 17, udp(A, FAR, 4000, 53, b'q' * 40))),
    'icmp-echo': eth(ROUTER, HOSTA, 0x800, ip(A, R, 1, icmp(8, 0, struct.pack('!HH', 1, 1), b'x' * 32))),
    'icmp-frag-needed': eth(ROUTER, HOSTA, 0x800, ip(A, R, 1, icmp(3, 4, struct.pack('!HH', 0, 576),
                                                     ip(R, A, 17, udp(R, A, 7, 4000, b'')))) ),
    'tcp-syn': eth(ROUTER, HOSTA, 0x800, ip(A, R, 6, tcp(A, R, 5000, 80, 0x02, b'\x02\x04\x05\xb4\x01\x01\x04\x02'))),
    'ttl-1-forward': eth(ROUTER, HOSTA, 0x800, ip(A, FAR, 17, udp(A, FAR, 1, 2, b'z'), ttl=1)),
    'options-rr': eth(ROUTER, HOSTA, 0x800, ip(A, FAR, 17, udp(A, FAR, 1, 2, b'o'), options=b'\x07\x07\x04\0\0\0\0\0')),
    'arp-request': eth([0xFF] * 6, HOSTA, 0x806, struct.pack('!HHBBH', 1, 0x800, 6, 4, 1) + bytes(HOSTA) + bytes(A)
                       + bytes(6) + bytes(R)),
    'bad-ip-checksum': eth(ROUTER, HOSTA, 0x800, ip(A, R, 17, udp(A, R, 1, 7, b'b'))[:10] + b'\0\0'
                           + ip(A, R, 17, udp(A, R, 1, 7, b'b'))[12:]),
    'broadcast-udp': eth([0xFF] * 6, HOSTA, 0x800, ip(A, [198, 18, 1, 255], 17, udp(A, [198, 18, 1, 255], 1, 7, b'b'))),
    'multicast-udp': eth([1, 0, 0x5e, 1, 2, 3], HOSTA, 0x800, ip(A, [239, 1, 2, 3], 17, udp(A, [239, 1, 2, 3], 1, 7, b'm'))),
    'vlan-tagged': bytes(ROUTER) + bytes(HOSTA) + b'\x81\x00\x00\x05\x08\x00' + ip(A, R, 1, icmp(8, 0, b'\0\1\0\1', b'')),
}
# Two fragments of one UDP datagram to the socket, in reverse order.
whole = udp(A, R, 4000, 7, b'F' * 100)
f1 = ip(A, R, 17, whole[:56], ident=77, flags=0x2000)
f2 = ip(A, R, 17, whole[56:], ident=77, flags=56 // 8)
def record(frame, flags=0, gso=0):
    return struct.pack('!BHH', flags, gso, len(frame)) + frame

os.makedirs('Fuzz/Corpus/FuzzStackReceive', exist_ok=True)
os.makedirs('Fuzz/Corpus/FuzzWire', exist_ok=True)
os.makedirs('Fuzz/Corpus/FuzzConfig', exist_ok=True)
for name, frame in frames.items():
    open('Fuzz/Corpus/FuzzStackReceive/' + name, 'wb').write(record(frame))
    open('Fuzz/Corpus/FuzzWire/' + name, 'wb').write(frame)
open('Fuzz/Corpus/FuzzStackReceive/fragments-reversed', 'wb').write(
    record(eth(ROUTER, HOSTA, 0x800, f2)) + record(eth(ROUTER, HOSTA, 0x800, f1)))
open('Fuzz/Corpus/FuzzStackReceive/verified-checksum', 'wb').write(record(frames['udp-echo'], flags=1))
big = eth(ROUTER, HOSTA, 0x800, ip(A, FAR, 17, udp(A, FAR, 1, 2, b'g' * 1400)))
open('Fuzz/Corpus/FuzzStackReceive/gso-udp', 'wb').write(record(big, flags=2 | 8, gso=500))
configs = {
    'router': 'addr add 198.18.2.1/24 dev eth1\nroute add 198.20.0.0/16 via 198.18.2.2 metric 5\n'
              'neigh add 198.18.2.2 lladdr 02:00:00:00:00:22 dev eth1\nfilter add forward proto tcp dport 22 drop\n',
    'bond-bridge': 'link add bond0 type bond mode balance-xor xmit_hash_policy layer3+4\nlink set eth1 master bond0\n'
                   'link add br0 type bridge\n',
    'replace-flush': 'route replace 198.19.0.0/16 via 198.18.1.3\nroute flush\naddr del 198.18.1.1/24 dev eth0\n',
    'error-late': 'route add 198.21.0.0/16 via 198.18.1.2\nroute add 198.22.0.0/16 via 198.18.9.9\n',
}
for name, text in configs.items():
    open('Fuzz/Corpus/FuzzConfig/' + name, 'w').write(text)

# FuzzReassembly: records of [what][offset units: 2][length: 2][plan] (see ReassemblyHarness).
def frag(n, units, length, more=False, b=False, df=False):
    what = n | (8 if more else 0) | (0x10 if b else 0) | (0x40 if df else 0)
    return struct.pack('!BHHB', what, units, length, 0)
def frag_plan(n, units, length, plan, more=False, b=False):
    return struct.pack('!BHHB', n | (8 if more else 0) | (0x10 if b else 0), units, length, plan)
def step(seconds):
    return struct.pack('!BHHB', 0x60, 0, 0, seconds)
os.makedirs('Fuzz/Corpus/FuzzReassembly', exist_ok=True)
reassembly = {
    # A 1000-byte datagram (UDP length 8 + 16 * 62 = 1000) in two fragments, in order and reversed.
    'two-in-order': frag_plan(0, 0, 504, 62, more=True) + frag_plan(0, 63, 496, 62),
    'two-reversed': frag_plan(1, 63, 496, 62) + frag_plan(1, 0, 504, 62, more=True),
    'three-with-duplicate': frag_plan(2, 0, 400, 62, more=True) + frag_plan(2, 50, 400, 62, more=True)
        + frag_plan(2, 50, 400, 62, more=True) + frag_plan(2, 100, 200, 62),
    'overlap': frag_plan(3, 0, 504, 62, more=True) + frag_plan(3, 60, 520, 62),
    'two-sources-same-id': frag_plan(4, 0, 504, 62, more=True) + frag_plan(4, 0, 504, 62, more=True, b=True)
        + frag_plan(4, 63, 496, 62, b=True) + frag_plan(4, 63, 496, 62),
    'timeout': frag_plan(5, 0, 504, 62, more=True) + step(31) + frag_plan(5, 63, 496, 62),
    'tiny-flood': b''.join(frag(6, u, 8, more=True) for u in range(1, 400)),
    'too-big': frag_plan(7, 8190, 100, 0),
}
for name, data in reassembly.items():
    open('Fuzz/Corpus/FuzzReassembly/' + name, 'wb').write(data)

# FuzzNeighbour: records of [what][a][b][c] (see NeighbourHarness).
def arp_from(n, m, reply=False, broadcast=True, target_ours=True, target=0):
    return struct.pack('!BBBB', (4 if reply else 0) | (8 if broadcast else 0), n, m, 0 if target_ours else 2 * target + 1)
def to(n):
    return struct.pack('!BBBB', 1, n, 0, 0)
def wait(ticks):
    return struct.pack('!BBBB', 2, ticks, 0, 0)
def bad_arp(n, lengths, op):
    return struct.pack('!BBBB', 3, n, lengths, op)
os.makedirs('Fuzz/Corpus/FuzzNeighbour', exist_ok=True)
neighbour = {
    'resolve-then-forward': to(0) + arp_from(0, 0, reply=True, broadcast=False) + to(0),
    'request-learns-stale': arp_from(1, 1) + to(1) + to(1),
    'mac-moves-after-locktime': arp_from(2, 1, reply=True) + to(2) + wait(30) + arp_from(2, 2, reply=True) + to(2),
    'table-full': b''.join(to(n) for n in range(8)) + b''.join(arp_from(n, n % 4, reply=True) for n in range(8))
        + b''.join(to(n) for n in range(8)),
    'probes-fail': to(3) + wait(255) + wait(255) + to(3),
    'stale-then-probe': arp_from(4, 3) + to(4) + wait(255) + wait(255) + to(4) + wait(120) + arp_from(4, 3, reply=True) + to(4),
    'malformed': bad_arp(5, 0x46, 1) + bad_arp(5, 0x64, 2) + bad_arp(5, 0x00, 0) + bad_arp(5, 0x46, 3) + to(5),
    'gratuitous': arp_from(6, 0) + to(6) + arp_from(6, 1, target_ours=False, target=6) + wait(30) + to(6),
}
for name, data in neighbour.items():
    open('Fuzz/Corpus/FuzzNeighbour/' + name, 'wb').write(data)

# FuzzPcap: [mode] then records [length: 2][original: 2][time: 4] and bytes (see PcapHarness).
def pcap_record(length, original, time):
    return struct.pack('!HHI', length, original, time)
os.makedirs('Fuzz/Corpus/FuzzPcap', exist_ok=True)
pcap = {
    'roundtrip-ns': bytes([0x0E]) + pcap_record(60, 60, 1) + pcap_record(1514, 1514, 2) + bytes(range(64)),
    'roundtrip-us-snap64': bytes([0x14]) + pcap_record(100, 1514, 70000) + pcap_record(0, 0, 3),
    'small-buffer-big-record': bytes([0x2E]) + pcap_record(5000, 5000, 9) + pcap_record(10, 10, 10) + b'abc',
    'read-valid': bytes([1]) + struct.pack('<IHHiIII', 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
        + struct.pack('<IIII', 1, 2, 4, 4) + b'abcd',
    'read-truncated': bytes([1]) + struct.pack('<IHHiIII', 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + struct.pack('<IIII', 1, 2, 100, 100),
    'read-big-endian': bytes([1]) + struct.pack('>IHHiIII', 0xA1B2C3D4, 2, 4, 0, 0, 96, 1) + struct.pack('>IIII', 5, 999999, 2, 60) + b'xy',
    'read-bad-magic': bytes([3]) + b'not a pcap file at all, not even close',
}
for name, data in pcap.items():
    open('Fuzz/Corpus/FuzzPcap/' + name, 'wb').write(data)

# FuzzUDPReceive: records of [to][port][from][length][checksum][fill] (see UDPReceiveHarness).
def dgram(to=0, port=0, frm=0, length=16, mode=0, fill=0x41):
    return bytes([to, port, frm, length, mode, fill])
os.makedirs('Fuzz/Corpus/FuzzUDPReceive', exist_ok=True)
udp_seeds = {
    'to-each-socket': dgram(port=0) + dgram(port=1) + dgram(port=2, frm=0) + dgram(port=2, frm=1) + dgram(port=4),
    'broadcasts': dgram(to=1, port=4) + dgram(to=2, port=4) + dgram(to=1, port=2) + dgram(to=2, port=1),
    'checksums': dgram(mode=1) + dgram(mode=2) + dgram(mode=3) + dgram(mode=4) + dgram(length=0, mode=0),
    'lengths': dgram(mode=5) + dgram(mode=6) + dgram(length=3, mode=6) + dgram(length=255),
    'no-socket-and-not-ours': dgram(port=3) + dgram(port=5) + dgram(to=3),
}
for name, data in udp_seeds.items():
    open('Fuzz/Corpus/FuzzUDPReceive/' + name, 'wb').write(data)
