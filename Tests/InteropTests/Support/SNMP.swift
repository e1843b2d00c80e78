/// The counters of one `Name: A B C\nName: 1 2 3` pair of SNMP lines in `text` (the format of
/// /proc/net/snmp and of `datapath forward`'s summary).
func snmpValues(_ text: String, _ name: String) -> [String: UInt64] {
    let lines = text.split(separator: "\n").filter { $0.hasPrefix("\(name): ") }
    guard lines.count >= 2 else { return [:] }
    let names = lines[0].split(separator: " ").dropFirst().map(String.init)
    let values = lines[1].split(separator: " ").dropFirst().map { UInt64($0) ?? 0 }
    return Dictionary(zip(names, values), uniquingKeysWith: { first, _ in first })
}
