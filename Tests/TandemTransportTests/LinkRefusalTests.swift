import Foundation
@_spi(Testing) import TLSSupport
import TandemTransport
import Testing

/// Every peer that is not the expected site of this pair, speaking TLS 1.3, is
/// refused during the handshake: `accept()` never returns a connection for it,
/// so no application byte it sends can be read. Each test also checks that the
/// listener goes on to accept the right peer, whose bytes (and only those)
/// arrive: the refused connection left nothing behind.
@Suite("TLS link: refusals")
struct LinkRefusalTests {
    /// The result of one connection attempt, seen from both ends.
    struct Attempt {
        var server: Result<TLSConnection, TransportError>
        var client: Result<TLSConnection, TransportError>
        /// The client's first read, when its handshake completed.
        var clientFirstRead: Result<[UInt8]?, TransportError>?
    }

    /// Dials `listener` with `client`; after a completed handshake the client
    /// sends application bytes and then reads, as a session client would.
    func attempt(_ listener: TLSListener, client: TLSContext, expecting serverSite: String) async -> Attempt {
        let accepted = listener.acceptInBackground()
        let dialed: Result<TLSConnection, TransportError>
        do {
            dialed = .success(
                try await TLSDialer(context: client, peerSite: serverSite).connect(
                    host: "127.0.0.1", port: listener.localPort))
        } catch {
            dialed = .failure(error)
        }
        var firstRead: Result<[UInt8]?, TransportError>?
        if case .success(let connection) = dialed {
            do {
                try await connection.send(Array("APPLICATION BYTES FROM A REFUSED PEER".utf8))
                firstRead = .success(try await connection.receive())
            } catch {
                firstRead = .failure(error)
            }
        }
        let server = await accepted.value
        return Attempt(server: server, client: dialed, clientFirstRead: firstRead)
    }

    /// After a refusal, the right peer still gets in, and the first bytes the
    /// listener's application reads are that peer's own.
    func expectListenerStillServes(_ listener: TLSListener, fixture: TransportFixture, client: String, server: String)
        async throws
    {
        async let accepted = listener.accept()
        let good = try await TLSDialer(context: fixture.context(.client, client), peerSite: server)
            .connect(host: "127.0.0.1", port: listener.localPort)
        let connection = try await accepted
        try await connection.send(Array("HELLO".utf8))
        #expect(try await good.receive(exactly: 5) == Array("HELLO".utf8))
        try await good.send(Array("GOOD".utf8))
        #expect(try await connection.receive(exactly: 4) == Array("GOOD".utf8))
        good.close()
        connection.close()
    }

    func serverError(_ attempt: Attempt, sourceLocation: SourceLocation = #_sourceLocation) -> TransportError? {
        switch attempt.server {
        case .success:
            Issue.record("the listener accepted a peer it must refuse", sourceLocation: sourceLocation)
            return nil
        case .failure(let error):
            return error
        }
    }

    func clientError(_ attempt: Attempt, sourceLocation: SourceLocation = #_sourceLocation) -> TransportError? {
        switch (attempt.client, attempt.clientFirstRead) {
        case (.failure(let error), _): return error
        case (.success, .failure(let error)?): return error
        default:
            Issue.record("the client was not told it was refused", sourceLocation: sourceLocation)
            return nil
        }
    }

    // MARK: Not TLS

    @Test func plaintextClientIsRefused() async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener("cloud", expecting: "idc")
        defer { listener.close() }
        let accepted = listener.acceptInBackground()
        let raw = try RawClient(port: listener.localPort)
        raw.send(Array("HELLO\n".utf8))
        let error = try await #require(throws: TransportError.self) { _ = try await accepted.value.get() }
        #expect(error.reason == .notTLS(detail: "wrong version number"))
        #expect(error.direction == .inbound)
        #expect(error.peerAddress == raw.localAddress)
        #expect(
            error.description
                == "refused connection from \(raw.localAddress): not a TLS connection (wrong version number)")
        #expect(error.isRefusal)
        // The plaintext client gets the end of the connection, at most after a TLS alert record.
        let answer = raw.readToEnd()
        #expect(answer.isEmpty || (answer.first == 0x15 && answer.count == 7), "got \(answer)")
        raw.close()
        try await expectListenerStillServes(listener, fixture: fixture, client: "idc", server: "cloud")
    }

    @Test("random garbage is refused", arguments: [1, 2, 3])
    func garbageIsRefused(seed: Int) async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener("cloud", expecting: "idc")
        defer { listener.close() }
        let accepted = listener.acceptInBackground()
        let raw = try RawClient(port: listener.localPort)
        raw.send(pattern(block: seed, size: 4096))
        let error = try await #require(throws: TransportError.self) { _ = try await accepted.value.get() }
        guard case .notTLS = error.reason else {
            Issue.record("expected notTLS, got \(error)")
            return
        }
        #expect(error.description.hasPrefix("refused connection from \(raw.localAddress): not a TLS connection ("))
        raw.close()
        try await expectListenerStillServes(listener, fixture: fixture, client: "idc", server: "cloud")
    }

    // MARK: Certificates the server refuses

    @Test func clientCertificateFromAnotherCAIsRefused() async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener("cloud", expecting: "idc")
        defer { listener.close() }
        let result = await attempt(listener, client: try fixture.context(.client, "idc-other-ca"), expecting: "cloud")
        let server = try #require(serverError(result))
        #expect(server.reason == .untrustedCertificate(detail: "unable to get local issuer certificate"))
        #expect(server.presentedSite == "idc")
        #expect(server.description.hasPrefix("refused connection from 127.0.0.1:"))
        #expect(
            server.description.hasSuffix(
                " (certificate for \"idc\"): certificate not signed by the pair CA (unable to get local issuer certificate)"
            ))
        // TLS 1.3: the client's handshake completed; its first read says it was refused.
        let client = try #require(clientError(result))
        #expect(client.reason == .refusedByPeer(alert: "tlsv1 alert unknown ca"))
        #expect(client.direction == .outbound)
        #expect(client.description.contains("refused by the peer: tlsv1 alert unknown ca"))
        try await expectListenerStillServes(listener, fixture: fixture, client: "idc", server: "cloud")
    }

    @Test func expiredClientCertificateIsRefused() async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener("cloud", expecting: "idc")
        defer { listener.close() }
        let result = await attempt(listener, client: try fixture.context(.client, "idc-expired"), expecting: "cloud")
        let server = try #require(serverError(result))
        guard case .certificateExpired(let notAfter) = server.reason else {
            Issue.record("expected certificateExpired, got \(server)")
            return
        }
        let expiry = try #require(notAfter)
        #expect(abs(expiry.timeIntervalSinceNow + 35 * TransportFixture.day) < 60)
        #expect(server.description.contains("certificate expired on "))
        #expect(server.hint.contains("tandem pair rotate --site idc"))
        let client = try #require(clientError(result))
        #expect(client.reason == .refusedByPeer(alert: "sslv3 alert certificate expired"))
        try await expectListenerStillServes(listener, fixture: fixture, client: "idc", server: "cloud")
    }

    @Test func notYetValidClientCertificateIsRefused() async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener("cloud", expecting: "idc")
        defer { listener.close() }
        let result = await attempt(listener, client: try fixture.context(.client, "idc-future"), expecting: "cloud")
        let server = try #require(serverError(result))
        guard case .certificateNotYetValid(let notBefore?) = server.reason else {
            Issue.record("expected certificateNotYetValid, got \(server)")
            return
        }
        #expect(notBefore > Date())
        #expect(server.description.contains("certificate not valid yet (valid from "))
        #expect(server.hint.contains("clocks"))
        #expect(clientError(result) != nil)
        try await expectListenerStillServes(listener, fixture: fixture, client: "idc", server: "cloud")
    }

    @Test func rightCAButWrongSiteIsRefused() async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener("cloud", expecting: "idc")
        defer { listener.close() }
        let result = await attempt(listener, client: try fixture.context(.client, "mallory"), expecting: "cloud")
        let server = try #require(serverError(result))
        #expect(server.reason == .wrongSite(presented: "mallory"))
        #expect(
            server.description.hasSuffix(": certificate from the pair CA is for site \"mallory\", expected \"idc\""))
        #expect(clientError(result) != nil)
        try await expectListenerStillServes(listener, fixture: fixture, client: "idc", server: "cloud")
    }

    @Test func aPeerPresentingOurOwnSiteNameIsRefused() async throws {
        // cloud's own certificate, replayed by the dialer: right CA, but not the peer site.
        let fixture = try TransportFixture()
        let listener = try fixture.listener("cloud", expecting: "idc")
        defer { listener.close() }
        let result = await attempt(listener, client: try fixture.context(.client, "cloud"), expecting: "cloud")
        #expect(serverError(result)?.reason == .wrongSite(presented: "cloud"))
    }

    @Test func clientWithoutCertificateIsRefused() async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener("cloud", expecting: "idc")
        defer { listener.close() }
        let result = await attempt(listener, client: try fixture.anonymousClient(), expecting: "cloud")
        let server = try #require(serverError(result))
        #expect(server.reason == .noCertificate)
        #expect(server.presentedSite == nil)
        #expect(server.description.hasSuffix(": no client certificate presented"))
        let client = try #require(clientError(result))
        #expect(client.reason == .refusedByPeer(alert: "tlsv13 alert certificate required"))
        try await expectListenerStillServes(listener, fixture: fixture, client: "idc", server: "cloud")
    }

    // MARK: Certificates the client refuses

    @Test func serverCertificateFromAnotherCAIsRefused() async throws {
        let fixture = try TransportFixture()
        let listener = try TLSListener(
            host: "127.0.0.1", port: 0,
            context: try fixture.context(.server, "cloud-other-ca", trusting: fixture.otherCA),
            peerSite: "idc")
        defer { listener.close() }
        let result = await attempt(listener, client: try fixture.context(.client, "idc"), expecting: "cloud")
        guard case .failure(let client) = result.client else {
            Issue.record("the dialer accepted a server from another CA")
            return
        }
        #expect(client.reason == .untrustedCertificate(detail: "unable to get local issuer certificate"))
        #expect(client.direction == .outbound)
        #expect(
            client.description
                == "refused connection to 127.0.0.1:\(listener.localPort) (certificate for \"cloud\"): certificate not signed by the pair CA (unable to get local issuer certificate)"
        )
        let server = try #require(serverError(result))
        #expect(server.reason == .refusedByPeer(alert: "tlsv1 alert unknown ca"))
        #expect(server.description.contains("(it does not accept this site's certificate)"))
    }

    @Test func expiredServerCertificateIsRefused() async throws {
        let fixture = try TransportFixture()
        let listener = try fixture.listener("cloud-expired", expecting: "idc")
        defer { listener.close() }
        let result = await attempt(listener, client: try fixture.context(.client, "idc"), expecting: "cloud")
        guard case .failure(let client) = result.client, case .certificateExpired = client.reason else {
            Issue.record("expected the dialer to refuse an expired server certificate, got \(result.client)")
            return
        }
        #expect(serverError(result)?.reason == .refusedByPeer(alert: "sslv3 alert certificate expired"))
    }

    @Test func serverWithTheWrongSiteNameIsRefused() async throws {
        // The dialer expects "cloud" but reaches a listener presenting "idc" (say, a misrouted port).
        let fixture = try TransportFixture()
        let listener = try fixture.listener("idc", expecting: "idc")
        defer { listener.close() }
        let result = await attempt(listener, client: try fixture.context(.client, "idc"), expecting: "cloud")
        guard case .failure(let client) = result.client else {
            Issue.record("the dialer accepted a server with the wrong site name")
            return
        }
        #expect(client.reason == .wrongSite(presented: "idc"))
        #expect(client.description.hasSuffix("certificate from the pair CA is for site \"idc\", expected \"cloud\""))
        #expect(serverError(result) != nil)
    }
}
