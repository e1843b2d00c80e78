import DatapathWire
import Testing

@Suite struct MACAddressTests {
    @Test func parsesAndPrintsColonSeparatedHex() {
        let mac = MACAddress("02:00:00:00:00:01")
        #expect(mac == MACAddress(2, 0, 0, 0, 0, 1))
        #expect(mac?.description == "02:00:00:00:00:01")
        #expect(MACAddress("AA-bb-0C-d-e-FF") == MACAddress(0xAA, 0xBB, 0x0C, 0x0D, 0x0E, 0xFF))
        #expect(MACAddress("ff:ff:ff:ff:ff:ff") == .broadcast)
        #expect(MACAddress(0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x0A).description == "de:ad:be:ef:00:0a")
    }

    @Test func rejectsMalformedText() {
        for text in ["", "02:00:00:00:00", "02:00:00:00:00:01:02", "02:00:00:00:00:001", "02:00:00:00:00:0g",
                     "02::00:00:00:01", "02:00-00:00:00:01", ":02:00:00:00:00:01", "02:00:00:00:00:01:",
                     " 02:00:00:00:00:01", "０2:00:00:00:00:01"] {
            #expect(MACAddress(text) == nil, "\(text)")
        }
    }

    @Test func loadsAndStoresSixOctetsInWireOrder() {
        withPacket(hex("11 22 33 44 55 66 77")) { base, _ in
            let mac = MACAddress(loadingFrom: base)
            #expect(mac == MACAddress(0x11, 0x22, 0x33, 0x44, 0x55, 0x66))
            #expect(mac.bits == 0x1122_3344_5566)
            MACAddress(0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5).store(to: base)
            #expect(bytes(base, count: 7) == hex("a0 a1 a2 a3 a4 a5 77"))
        }
    }

    @Test func classifiesBroadcastMulticastAndZero() {
        #expect(MACAddress.broadcast.isBroadcast && MACAddress.broadcast.isMulticast)
        #expect(MACAddress(0x01, 0x00, 0x5E, 0, 0, 1).isMulticast)
        #expect(!MACAddress(0x01, 0x00, 0x5E, 0, 0, 1).isBroadcast)
        #expect(MACAddress(2, 0, 0, 0, 0, 1).isUnicast && MACAddress(2, 0, 0, 0, 0, 1).isLocallyAdministered)
        #expect(MACAddress.zero.isZero && !MACAddress.zero.isMulticast)
        #expect(MACAddress(1, 2, 3, 4, 5, 6)[0] == 1 && MACAddress(1, 2, 3, 4, 5, 6)[5] == 6)
    }
}

@Suite struct IPv4AddressTests {
    @Test func parsesAndPrintsDottedQuads() {
        #expect(IPv4Address("192.0.2.1") == IPv4Address(192, 0, 2, 1))
        #expect(IPv4Address("192.0.2.1")?.hostOrder == 0xC000_0201)
        #expect(IPv4Address("0.0.0.0") == .zero)
        #expect(IPv4Address("255.255.255.255") == .broadcast)
        #expect(IPv4Address(hostOrder: 0x0A00_00FF).description == "10.0.0.255")
    }

    @Test func rejectsMalformedText() {
        for text in ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1..2.3", "1.2.3.4 ", "a.b.c.d",
                     "1.2.3.-4", "1.2.3.4/8", "1.2.3.1000", ".1.2.3", "1.2.3."] {
            #expect(IPv4Address(text) == nil, "\(text)")
        }
        #expect(IPv4Address("0.10.100.0") == IPv4Address(0, 10, 100, 0))
    }

    @Test func classifiesSpecialRanges() {
        #expect(IPv4Address(224, 0, 0, 1).isMulticast && IPv4Address(239, 255, 255, 255).isMulticast)
        #expect(!IPv4Address(240, 0, 0, 1).isMulticast && IPv4Address(240, 0, 0, 1).isReserved)
        #expect(IPv4Address.broadcast.isBroadcast && !IPv4Address.broadcast.isReserved)
        #expect(IPv4Address(127, 1, 2, 3).isLoopback && !IPv4Address(128, 0, 0, 1).isLoopback)
        #expect(IPv4Address.zero.isZero && !IPv4Address(0, 0, 0, 1).isZero)
        #expect(IPv4Address(169, 254, 1, 1).isLinkLocal)
        #expect(IPv4Address(224, 0, 0, 251).isLinkLocalMulticast && !IPv4Address(224, 0, 1, 1).isLinkLocalMulticast)
    }

    @Test func comparesNumerically() {
        #expect(IPv4Address(10, 0, 0, 0) < IPv4Address(192, 168, 0, 0))
        #expect(IPv4Address(9, 255, 255, 255) < IPv4Address(10, 0, 0, 0))
        #expect([IPv4Address(10, 0, 0, 2), IPv4Address(2, 0, 0, 0)].sorted() == [IPv4Address(2, 0, 0, 0), IPv4Address(10, 0, 0, 2)])
    }

    @Test func loadsAndStoresInNetworkOrder() {
        withPacket(hex("c0 a8 00 01")) { base, _ in
            #expect(IPv4Address(loadingFrom: base) == IPv4Address(192, 168, 0, 1))
            IPv4Address(10, 20, 30, 40).store(to: base)
            #expect(bytes(base, count: 4) == [10, 20, 30, 40])
        }
    }
}

@Suite struct IPv4PrefixTests {
    @Test func parsesCIDRAndContainsItsAddresses() throws {
        let prefix = try #require(IPv4Prefix("198.18.0.0/15"))
        #expect(prefix.length == 15)
        #expect(prefix.netmask == IPv4Address(255, 254, 0, 0))
        #expect(prefix.contains(IPv4Address(198, 19, 255, 255)))
        #expect(prefix.contains(IPv4Address(198, 18, 0, 0)))
        #expect(!prefix.contains(IPv4Address(198, 20, 0, 0)))
        #expect(!prefix.contains(IPv4Address(198, 17, 255, 255)))
        #expect(prefix.description == "198.18.0.0/15")
        #expect(prefix.lastAddress == IPv4Address(198, 19, 255, 255))
        #expect(prefix.contains(IPv4Prefix("198.19.0.0/16")!))
        #expect(!prefix.contains(IPv4Prefix("198.0.0.0/8")!))
    }

    @Test func defaultRouteAndHostRouteAreTheExtremes() throws {
        let all = try #require(IPv4Prefix("0.0.0.0/0"))
        #expect(all.netmask == .zero)
        #expect(all.contains(IPv4Address(203, 0, 113, 9)) && all.contains(.broadcast))
        let host = try #require(IPv4Prefix("203.0.113.9/32"))
        #expect(host.netmask == .broadcast)
        #expect(host.contains(IPv4Address(203, 0, 113, 9)) && !host.contains(IPv4Address(203, 0, 113, 8)))
        #expect(IPv4Prefix("203.0.113.9") == host)
    }

    @Test func clearsHostBitsAndRejectsBadLengths() {
        #expect(IPv4Prefix("10.1.2.3/8") == IPv4Prefix("10.0.0.0/8"))
        #expect(IPv4Prefix("10.1.2.3/8")?.address == IPv4Address(10, 0, 0, 0))
        for text in ["10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.0/8/8", "10.0.0/8", "/8", "10.0.0.0/ 8", "10.0.0.0/100"] {
            #expect(IPv4Prefix(text) == nil, "\(text)")
        }
        #expect(IPv4Prefix(address: IPv4Address(10, 0, 0, 0), length: 33) == nil)
        // Hashing (address and length as one word) agrees with equality.
        let keys: Set = [IPv4Prefix("10.0.0.0/8")!, IPv4Prefix("10.1.2.3/8")!, IPv4Prefix("10.0.0.0/9")!, IPv4Prefix("10.0.0.0/32")!]
        #expect(keys.count == 3 && keys.contains(IPv4Prefix("10.0.0.0")!))
    }
}

@Suite struct ProtocolNumberTests {
    @Test func etherTypesHaveTheirRegistryValuesAndNames() {
        #expect(EtherType.ipv4.rawValue == 0x0800 && EtherType.arp.rawValue == 0x0806)
        #expect(EtherType.vlan.rawValue == 0x8100 && EtherType.qinq.rawValue == 0x88A8 && EtherType.ipv6.rawValue == 0x86DD)
        #expect(EtherType.ipv4.description == "IPv4")
        #expect(EtherType(rawValue: 0x88B5).description == "0x88b5")
        #expect(EtherType.vlan.isVLANTag && EtherType.qinq.isVLANTag && !EtherType.ipv4.isVLANTag)
    }

    @Test func ipProtocolsHaveTheirRegistryValuesAndNames() {
        #expect(IPProtocol.icmp.rawValue == 1 && IPProtocol.igmp.rawValue == 2 && IPProtocol.tcp.rawValue == 6)
        #expect(IPProtocol.udp.rawValue == 17 && IPProtocol.gre.rawValue == 47 && IPProtocol.esp.rawValue == 50)
        #expect(IPProtocol.ah.rawValue == 51 && IPProtocol.raw.rawValue == 255)
        #expect(IPProtocol.udp.description == "UDP" && IPProtocol(rawValue: 200).description == "200")
    }
}
