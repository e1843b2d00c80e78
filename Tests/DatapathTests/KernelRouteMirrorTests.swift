import Testing
@testable import Datapath
import DatapathCore
import DatapathWire

/// `KernelRouteMirror.translate`: rtnetlink messages as the kernel sends them, byte for byte,
/// into command-language lines (kernel interfaces 7 and 8 are the stack's eth0 and eth1).
@Suite struct KernelRouteMirrorTests {
    static func link(_ index: Int32) -> String? { [7: "eth0", 8: "eth1"][index] }

    /// An rtattr: length, type, value padded to 4 bytes.
    static func attribute(_ type: UInt16, _ value: [UInt8]) -> [UInt8] {
        let length = 4 + value.count
        var bytes = le16(UInt16(length)) + le16(type) + value
        while bytes.count % 4 != 0 { bytes.append(0) }
        return bytes
    }

    static func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
    static func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(value >> (8 * $0) & 0xFF) } }

    /// An nlmsghdr of `type` around `payload`.
    static func message(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        le32(UInt32(16 + payload.count)) + le16(type) + le16(0) + le32(0) + le32(0) + payload
    }

    /// An rtmsg: AF_INET, the prefix length, table, protocol, type, then attributes.
    static func route(_ type: UInt16 = 24, length: UInt8, table: UInt8 = 254, protocol number: UInt8 = 4,
                      routeType: UInt8 = 1, attributes: [[UInt8]]) -> [UInt8] {
        message(type, [2, length, 0, 0, table, number, 0, routeType] + le32(0) + attributes.flatMap { $0 })
    }

    static func ip(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> [UInt8] { [a, b, c, d] }

    @Test func routesBecomeReplaceAndDeleteLines() {
        let messages = [
            // 198.19.0.0/16 via 198.18.2.2 dev eth1 metric 20 mtu 1400 (proto static)
            Self.route(length: 16, attributes: [
                Self.attribute(15, Self.le32(254)), Self.attribute(1, Self.ip(198, 19, 0, 0)),
                Self.attribute(6, Self.le32(20)), Self.attribute(5, Self.ip(198, 18, 2, 2)),
                Self.attribute(4, Self.le32(8)), Self.attribute(8, Self.attribute(2, Self.le32(1400))),
            ]),
            // An address's own connected route (proto kernel): the stack makes its own.
            Self.route(length: 24, protocol: 2, attributes: [Self.attribute(1, Self.ip(198, 18, 2, 0)),
                                                             Self.attribute(4, Self.le32(8))]),
            // The local table: not followed.
            Self.route(length: 32, table: 255, routeType: 2, attributes: [Self.attribute(1, Self.ip(198, 18, 2, 1)),
                                                                         Self.attribute(4, Self.le32(8))]),
            // Through an interface that is not the stack's: skipped.
            Self.route(length: 24, attributes: [Self.attribute(1, Self.ip(198, 21, 0, 0)), Self.attribute(4, Self.le32(3))]),
            // Blackhole, default route onto a link, a delete.
            Self.route(length: 24, routeType: 6, attributes: [Self.attribute(1, Self.ip(198, 19, 9, 0))]),
            Self.route(length: 0, attributes: [Self.attribute(4, Self.le32(7))]),
            Self.route(25, length: 16, attributes: [Self.attribute(1, Self.ip(198, 19, 0, 0)), Self.attribute(6, Self.le32(20))]),
            // Multipath: rtnexthop {len, flags, hops (weight − 1), ifindex} + RTA_GATEWAY.
            Self.route(length: 24, attributes: [
                Self.attribute(1, Self.ip(198, 20, 0, 0)),
                Self.attribute(9, Self.le16(16) + [0, 2] + Self.le32(8) + Self.attribute(5, Self.ip(198, 18, 2, 2))
                                  + Self.le16(16) + [0, 0] + Self.le32(7) + Self.attribute(5, Self.ip(198, 18, 1, 2))),
            ]),
        ]
        let bytes = messages.flatMap { $0 }
        let lines = bytes.withUnsafeBytes { KernelRouteMirror.translate($0, link: Self.link) }
        #expect(lines == [
            "route replace 198.19.0.0/16 via 198.18.2.2 dev eth1 metric 20 mtu 1400",
            "route replace blackhole 198.19.9.0/24",
            "route replace 0.0.0.0/0 dev eth0",
            "route del 198.19.0.0/16 metric 20",
            "route replace 198.20.0.0/24 nexthop via 198.18.2.2 dev eth1 weight 3 nexthop via 198.18.1.2 dev eth0 weight 1",
        ])
        // Each parses in the command language.
        for line in lines { #expect(throws: Never.self) { _ = try ConfigParser.parse(line) } }
        #expect(KernelRouteMirror.routeKey(lines[0]) == "198.19.0.0/16 metric 20")
        #expect(KernelRouteMirror.routeKey(lines[1]) == "198.19.9.0/24 metric 0")
    }

    /// Permanent neighbours are followed; others (learned by ARP in the kernel) are not.
    @Test func permanentNeighboursBecomeNeighLines() {
        func neighbour(_ type: UInt16, index: UInt32, state: UInt16, address: [UInt8], mac: [UInt8]?) -> [UInt8] {
            Self.message(type, [2, 0, 0, 0] + Self.le32(index) + Self.le16(state) + [0, 1]
                         + Self.attribute(1, address) + (mac.map { Self.attribute(2, $0) } ?? []))
        }
        let mac: [UInt8] = [2, 0, 0, 0, 0, 9]
        let bytes = neighbour(28, index: 8, state: 0x80, address: Self.ip(198, 18, 2, 9), mac: mac)
            + neighbour(28, index: 8, state: 0x02, address: Self.ip(198, 18, 2, 10), mac: mac)
            + neighbour(29, index: 8, state: 0x80, address: Self.ip(198, 18, 2, 9), mac: nil)
        let lines = bytes.withUnsafeBytes { KernelRouteMirror.translate($0, link: Self.link) }
        #expect(lines == ["neigh add 198.18.2.9 lladdr 02:00:00:00:00:09 dev eth1 nud permanent",
                          "neigh del 198.18.2.9 dev eth1"])
    }

    /// Truncated and malformed messages give nothing, never a crash.
    @Test func truncatedMessagesAreIgnored() {
        let whole = Self.route(length: 16, attributes: [Self.attribute(1, Self.ip(198, 19, 0, 0)), Self.attribute(4, Self.le32(8))])
        for cut in 0..<whole.count {
            let lines = Array(whole.prefix(cut)).withUnsafeBytes { KernelRouteMirror.translate($0, link: Self.link) }
            #expect(lines.isEmpty)
        }
        var bad = whole
        bad[16 + 12] = 200   // an attribute longer than the message
        #expect(bad.withUnsafeBytes { KernelRouteMirror.translate($0, link: Self.link) } == [])
    }
}
