import Foundation
@_spi(Testing) import TLSSupport
import TandemTransport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("TLS link: good connections")
struct LinkConnectionTests {
    @Test("handshake and bytes both ways, whichever site listens", arguments: [("cloud", "idc"), ("idc", "cloud")])
    func goodHandshake(sites: (listening: String, dialing: String)) async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener(sites.listening, expecting: sites.dialing)
        defer { listener.close() }
        async let accepted = listener.accept()
        let dialer = TLSDialer(context: try fixture.context(.client, sites.dialing), peerSite: sites.listening)
        let client = try await dialer.connect(host: "127.0.0.1", port: listener.localPort)
        let server = try await accepted

        #expect(client.peerSite == sites.listening)
        #expect(client.peerCertificate.siteName == sites.listening)
        #expect(server.peerSite == sites.dialing)
        #expect(server.peerCertificate.siteName == sites.dialing)
        #expect(client.protocolVersion == "TLSv1.3")
        #expect(server.protocolVersion == "TLSv1.3")
        #expect(client.direction == .outbound && server.direction == .inbound)
        #expect(server.peerAddress.hasPrefix("127.0.0.1:"))
        #expect(client.peerAddress == "127.0.0.1:\(listener.localPort)")

        // The server speaks first, as the session protocol does.
        try await server.send(Array("HELLO from \(sites.listening)\n".utf8))
        #expect(
            try await client.receive(exactly: 12 + sites.listening.count)
                == Array("HELLO from \(sites.listening)\n".utf8))
        try await client.send(Array("HELLO from \(sites.dialing)\n".utf8))
        #expect(
            try await server.receive(exactly: 12 + sites.dialing.count) == Array("HELLO from \(sites.dialing)\n".utf8))

        // A clean finish ends the peer's stream with nil, not an error.
        await client.finish()
        #expect(try await server.receive() == nil)
        server.close()
    }

    @Test func largeTransfersArriveIntactInBothDirectionsAtOnce() async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener("cloud", expecting: "idc")
        defer { listener.close() }
        async let accepted = listener.accept()
        let client = try await TLSDialer(context: try fixture.context(.client, "idc"), peerSite: "cloud")
            .connect(host: "127.0.0.1", port: listener.localPort)
        let server = try await accepted

        let block = 1 << 20
        let upstreamBlocks = 64  // 64 MiB idc → cloud
        let downstreamBlocks = 8  // 8 MiB cloud → idc, at the same time

        @Sendable func sendBlocks(_ connection: TLSConnection, _ count: Int) async throws {
            for index in 0..<count { try await connection.send(pattern(block: index, size: block)) }
            try await connection.flush()
        }
        /// Receives `count` blocks and returns how many matched the pattern.
        @Sendable func receiveBlocks(_ connection: TLSConnection, _ count: Int) async throws -> Int {
            var pending: [UInt8] = []
            var matched = 0
            var index = 0
            while index < count {
                guard let chunk = try await connection.receive() else { break }
                pending.append(contentsOf: chunk)
                while pending.count >= block {
                    let expected = pattern(block: index, size: block)
                    let same = pending.withUnsafeBytes { got in
                        expected.withUnsafeBytes { memcmp(got.baseAddress!, $0.baseAddress!, block) == 0 }
                    }
                    if same { matched += 1 }
                    pending.removeFirst(block)
                    index += 1
                }
            }
            #expect(pending.isEmpty)
            return matched
        }

        async let up: Void = sendBlocks(client, upstreamBlocks)
        async let down: Void = sendBlocks(server, downstreamBlocks)
        async let receivedByServer = receiveBlocks(server, upstreamBlocks)
        async let receivedByClient = receiveBlocks(client, downstreamBlocks)
        try await up
        try await down
        #expect(try await receivedByServer == upstreamBlocks)
        #expect(try await receivedByClient == downstreamBlocks)
        client.close()
        server.close()
    }

    @Test func blockingReadAndWriteWork() async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener("idc", expecting: "cloud")
        defer { listener.close() }
        async let accepted = listener.accept()
        let client = try await TLSDialer(context: try fixture.context(.client, "cloud"), peerSite: "idc")
            .connect(host: "127.0.0.1", port: listener.localPort)
        let server = try await accepted
        let message = pattern(block: 7, size: 300_000)
        let writer = Thread { try? message.withUnsafeBytes { try server.write($0) } }
        writer.start()
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while received.count < message.count {
            let count = try buffer.withUnsafeMutableBytes { try client.read(into: $0) }
            if count == 0 { break }
            received.append(contentsOf: buffer.prefix(count))
        }
        #expect(received == message)
        server.close()
        client.close()
    }

    @Test func anAbruptCloseIsAConnectionLossForThePeer() async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener("cloud", expecting: "idc")
        defer { listener.close() }
        async let accepted = listener.accept()
        let client = try await TLSDialer(context: try fixture.context(.client, "idc"), peerSite: "cloud")
            .connect(host: "127.0.0.1", port: listener.localPort)
        let server = try await accepted
        server.close()
        let error = try await #require(throws: TransportError.self) { _ = try await client.receive() }
        guard case .connectionLost = error.reason else {
            Issue.record("expected connectionLost, got \(error)")
            return
        }
        // Operations after a local close fail with .closed.
        let closed = try await #require(throws: TransportError.self) { try await server.send([1, 2, 3]) }
        #expect(closed.reason == .closed)
    }
}

@Suite("TLS link: listener and dialer edges")
struct LinkEdgeTests {
    @Test func dialingAClosedPortFailsToConnect() async throws {
        let fixture = try TransportFixture()
        // Bind and close a listener to get a port nobody listens on.
        let port = try fixture.listener("cloud", expecting: "idc").localPort
        let dialer = TLSDialer(context: try fixture.context(.client, "idc"), peerSite: "cloud")
        let error = try await #require(throws: TransportError.self) {
            _ = try await dialer.connect(host: "127.0.0.1", port: port, timeout: .seconds(2))
        }
        #expect(error.reason == .connectFailed(detail: "Connection refused"))
        #expect(error.description == "connection to 127.0.0.1:\(port) failed: cannot connect: Connection refused")
        #expect(!error.isRefusal)
    }

    @Test func aSilentClientTimesOutTheHandshake() async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener(
            "cloud", expecting: "idc", options: TransportOptions(handshakeTimeout: .milliseconds(300)))
        defer { listener.close() }
        let accepted = listener.acceptInBackground()
        let raw = try RawClient(port: listener.localPort)
        defer { raw.close() }
        let error = try await #require(throws: TransportError.self) { _ = try await accepted.value.get() }
        #expect(error.reason == .handshakeTimeout(seconds: 0.3))
        #expect(error.peerAddress == raw.localAddress)
    }

    @Test func closingTheListenerEndsAccept() async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener("cloud", expecting: "idc")
        let accepted = listener.acceptInBackground()
        try await Task.sleep(for: .milliseconds(50))
        listener.close()
        let error = try await #require(throws: TransportError.self) { _ = try await accepted.value.get() }
        #expect(error.reason == .closed)
    }

    @Test func cancellingAcceptEndsIt() async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener("cloud", expecting: "idc")
        defer { listener.close() }
        let task = Task { try await listener.accept() }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let error = try await #require(throws: TransportError.self) { _ = try await task.value }
        #expect(error.reason == .closed)
    }

    @Test func listeningOnABusyPortFails() throws {
        let fixture = try TransportFixture()
        let first = try fixture.listener("cloud", expecting: "idc")
        defer { first.close() }
        let error = try #require(throws: TransportError.self) {
            _ = try TLSListener(
                host: "127.0.0.1", port: first.localPort, context: try fixture.context(.server, "cloud"),
                peerSite: "idc")
        }
        #expect(error.description.hasPrefix("cannot listen on 127.0.0.1:\(first.localPort): "))
        // A client context cannot listen, a server context cannot dial.
        #expect(throws: TransportError.self) {
            _ = try TLSListener(
                host: "127.0.0.1", port: 0, context: try fixture.context(.client, "cloud"), peerSite: "idc")
        }
    }
}
