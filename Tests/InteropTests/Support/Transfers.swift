import Testing

extension Lab {
    /// Sends `bytes` over TCP from namespace `client` to a server in `server` listening on
    /// `address`:5001 (python sockets), and expects the server to receive exactly them
    /// (length and SHA-256).
    func expectTCPTransfer(from client: String, to server: String, address: String, bytes: Int) throws {
        let receiver = try spawn(server, "/usr/bin/python3", ["-c", """
            import socket, hashlib
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('\(address)', 5001)); s.listen(1); s.settimeout(30)
            print('ready', flush=True)
            c, _ = s.accept(); c.settimeout(30); h = hashlib.sha256(); n = 0
            while True:
                d = c.recv(65536)
                if not d: break
                h.update(d); n += len(d)
            print(n, h.hexdigest(), flush=True)
            """])
        try receiver.waitFor("ready")
        let sender = try exec(client, "/usr/bin/python3", ["-c", """
            import socket, hashlib
            d = b''.join(hashlib.sha256(i.to_bytes(4, 'big')).digest() for i in range(\(bytes / 32)))
            c = socket.create_connection(('\(address)', 5001), timeout=30); c.sendall(d); c.close()
            print(len(d), hashlib.sha256(d).hexdigest())
            """], timeout: 60)
        #expect(receiver.wait(timeout: 60) == 0, "\(receiver.stderr)")
        let sent = sender.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(sent.hasPrefix("\(bytes) "), "\(sender.stdout) \(sender.stderr)")
        #expect(receiver.stdout.contains(sent), "sent \(sent), received \(receiver.stdout)")
    }

    /// A counter of `device` in namespace `ns` from /sys/class/net/DEVICE/statistics.
    func counter(_ ns: String, _ device: String, _ name: String) throws -> Int {
        let result = try exec(ns, "/bin/cat", ["/sys/class/net/\(device)/statistics/\(name)"])
        return Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? Int.max
    }
}
