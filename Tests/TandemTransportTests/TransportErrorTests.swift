import Foundation
import TandemTransport
import Testing

@Suite("transport errors as operators read them")
struct TransportErrorTests {
    static let reasons: [TransportError.Reason] = [
        .notTLS(detail: "wrong version number"), .tlsVersion(detail: "unsupported protocol"),
        .untrustedCertificate(detail: "unable to get local issuer certificate"),
        .certificateExpired(notAfter: Date(timeIntervalSince1970: 1_700_000_000)), .certificateExpired(notAfter: nil),
        .certificateNotYetValid(notBefore: Date(timeIntervalSince1970: 1_900_000_000)),
        .wrongSite(presented: "mallory"), .wrongSite(presented: nil), .noCertificate,
        .certificateRejected(detail: "invalid CA certificate"), .refusedByPeer(alert: "tlsv1 alert unknown ca"),
        .handshakeTimeout(seconds: 10), .closedDuringHandshake, .handshakeFailed(detail: "x"),
        .resolveFailed(detail: "Name or service not known"), .connectFailed(detail: "Connection refused"),
        .connectTimeout(seconds: 2.5), .listenFailed(detail: "Address already in use"),
        .acceptFailed(detail: "Too many open files"), .connectionLost(detail: "Connection reset by peer"), .closed,
    ]

    @Test("every reason reads as one line with the peer and a hint", arguments: reasons)
    func oneLineWithPeerAndHint(reason: TransportError.Reason) {
        for direction in [TransportError.Direction.inbound, .outbound] {
            let error = TransportError(
                reason, direction: direction, peerAddress: "192.0.2.7:53422", presentedSite: "idc", expectedSite: "idc")
            #expect(!error.description.contains("\n"))
            #expect(error.description.contains("192.0.2.7:53422"))
            #expect(!error.hint.isEmpty && !error.hint.contains("\n"))
        }
    }

    @Test func refusalLinesHaveTheDocumentedShape() {
        let inbound = TransportError(
            .untrustedCertificate(detail: "unable to get local issuer certificate"), direction: .inbound,
            peerAddress: "127.0.0.1:53422", expectedSite: "idc")
        #expect(
            inbound.description
                == "refused connection from 127.0.0.1:53422: certificate not signed by the pair CA (unable to get local issuer certificate)"
        )
        let expired = TransportError(
            .certificateExpired(notAfter: Date(timeIntervalSince1970: 1_700_000_000)), direction: .outbound,
            peerAddress: "dr.example.net:7400", presentedSite: "cloud", expectedSite: "cloud")
        #expect(
            expired.description
                == "refused connection to dr.example.net:7400 (certificate for \"cloud\"): certificate expired on 2023-11-14 22:13:20 UTC"
        )
        #expect(expired.isRefusal)
        let lost = TransportError(
            .connectionLost(detail: "Connection reset by peer"), direction: .outbound,
            peerAddress: "dr.example.net:7400",
            expectedSite: "cloud")
        #expect(
            lost.description == "connection to dr.example.net:7400 failed: connection lost: Connection reset by peer")
        #expect(!lost.isRefusal)
    }

    @Test func namesFromForeignCertificatesCannotForgeLogLines() {
        let hostile =
            "idc\"\nrefused connection from 10.0.0.1:1: all good \\ \u{1B}[31m" + String(repeating: "x", count: 200)
        let error = TransportError(
            .wrongSite(presented: hostile), direction: .inbound, peerAddress: "127.0.0.1:1", presentedSite: hostile,
            expectedSite: "idc")
        #expect(!error.description.contains("\n"))
        #expect(!error.description.contains("\u{1B}"))
        #expect(error.description.contains("idc\\\"\\u{A}refused"))
        #expect(error.presentedSite?.hasSuffix("...") == true)
        #expect(error.description.count < 200)
    }
}
