import DatapathWire

/// One parsed configuration command (DESIGN.md §7: iproute2 syntax).
public enum ConfigCommand: Equatable, Sendable {
    /// `link add NAME type afpacket dev INTERFACE`
    case addAFPacket(name: String, interface: String)
    /// `link add NAME type bond mode MODE [xmit_hash_policy POLICY]`
    case addBond(name: String, mode: BondMode, hashPolicy: XmitHashPolicy)
    /// `link add NAME type bridge`
    case addBridge(name: String)
    /// `link set DEV master MASTER`
    case setMaster(device: String, master: String)
    /// `link set DEV up|down`
    case setState(device: String, up: Bool)
    /// `addr add A.B.C.D/LEN dev DEV`
    case addAddress(address: IPv4Address, prefixLength: Int, device: String)
    /// `neigh add A.B.C.D lladdr MAC dev DEV [nud permanent]`
    case addNeighbour(address: IPv4Address, linkAddress: MACAddress, device: String)
    /// `bridge fdb add MAC dev PORT [master] [static]`
    case addFDBEntry(address: MACAddress, device: String)
}

/// A command and the line it came from.
public struct ConfigLine: Equatable, Sendable {
    public let line: Int
    public let command: ConfigCommand
    /// The words of the line, for error messages while applying.
    public let words: [String]
}
