import Foundation
import TLSSupport
import TandemCore

/// Why a link connection was refused, failed or ended.
///
/// `description` is the one line a site agent logs: it names the peer's
/// address, the site its certificate claims when that is known, and the
/// reason, e.g. `refused connection from 127.0.0.1:53422: certificate not
/// signed by the pair CA (unable to get local issuer certificate)`. The hint
/// says what an operator should look at.
public struct TransportError: Error, Sendable, Equatable, CustomStringConvertible, OperatorError {
    /// Whether the peer dialed us (`inbound`, accepted by a `TLSListener`) or
    /// we dialed it (`outbound`, a `TLSDialer`). Independent of data direction.
    public enum Direction: Sendable, Equatable {
        case inbound
        case outbound
    }

    public enum Reason: Sendable, Equatable {
        // Refused by this side during the handshake.
        /// The peer does not speak TLS at all: plaintext, garbage, HTTP. The
        /// detail is OpenSSL's reason, such as "wrong version number".
        case notTLS(detail: String)
        /// The peer speaks TLS, but not 1.3.
        case tlsVersion(detail: String)
        /// The peer's certificate does not chain to the pair CA.
        case untrustedCertificate(detail: String)
        case certificateExpired(notAfter: Date?)
        case certificateNotYetValid(notBefore: Date?)
        /// The certificate chains to the pair CA but speaks for another site.
        case wrongSite(presented: String?)
        /// A client presented no certificate at all.
        case noCertificate
        /// Any other verification failure (OpenSSL's reason in the detail).
        case certificateRejected(detail: String)

        /// The peer refused us: it sent a TLS alert, during the handshake or
        /// (TLS 1.3, client side) on the first read after it.
        case refusedByPeer(alert: String)

        // Trouble that is not a refusal.
        case handshakeTimeout(seconds: Double)
        case closedDuringHandshake
        case handshakeFailed(detail: String)
        case resolveFailed(detail: String)
        case connectFailed(detail: String)
        case connectTimeout(seconds: Double)
        case listenFailed(detail: String)
        case acceptFailed(detail: String)
        /// An established connection broke (reset, EOF without close_notify,
        /// a TLS error after the handshake).
        case connectionLost(detail: String)
        /// This side closed the connection, or cancelled the operation.
        case closed
    }

    public var reason: Reason
    public var direction: Direction
    /// `host:port` of the peer: the address it connected from (inbound) or
    /// the one dialed (outbound).
    public var peerAddress: String
    /// The site name the peer's certificate carries, when one was presented.
    public var presentedSite: String?
    /// The site name the peer had to present.
    public var expectedSite: String

    public init(
        _ reason: Reason, direction: Direction, peerAddress: String, presentedSite: String? = nil,
        expectedSite: String
    ) {
        // A presented name comes from a certificate the peer chose, possibly
        // one from no CA of ours: it must not be able to forge log lines.
        if case .wrongSite(let presented?) = reason {
            self.reason = .wrongSite(presented: Self.printable(presented))
        } else {
            self.reason = reason
        }
        self.direction = direction
        self.peerAddress = peerAddress
        self.presentedSite = presentedSite.map(Self.printable)
        self.expectedSite = expectedSite
    }

    /// `text` with anything but printable ASCII escaped (`\u{A}`), quotes and
    /// backslashes escaped, and cut to 80 characters, so it stays on one line
    /// and cannot close the quotes it is shown in.
    static func printable(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            if result.count >= 80 {
                result += "..."
                break
            }
            switch scalar {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case " "..."~": result.unicodeScalars.append(scalar)
            default: result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            }
        }
        return result
    }

    /// True for the reasons where this side refused the peer's identity or
    /// protocol: the ones that mean "not our peer", not "network trouble".
    public var isRefusal: Bool {
        switch reason {
        case .notTLS, .tlsVersion, .untrustedCertificate, .certificateExpired, .certificateNotYetValid, .wrongSite,
            .noCertificate, .certificateRejected:
            true
        default: false
        }
    }

    public var description: String {
        let address = peerAddress
        let fromTo = direction == .inbound ? "from" : "to"
        let site: String
        if let presentedSite, !Self.reasonNamesSite(reason) {
            site = " (certificate for \"\(presentedSite)\")"
        } else {
            site = ""
        }
        if case .listenFailed(let detail) = reason { return "cannot listen on \(address): \(detail)" }
        if case .acceptFailed(let detail) = reason { return "cannot accept connections on \(address): \(detail)" }
        if case .refusedByPeer(let alert) = reason {
            return "connection \(fromTo) \(address)\(site) refused by the peer: \(alert)\(Self.alertMeaning(alert))"
        }
        let reasonText = Self.text(reason, expected: expectedSite, direction: direction)
        return isRefusal
            ? "refused connection \(fromTo) \(address)\(site): \(reasonText)"
            : "connection \(fromTo) \(address)\(site) failed: \(reasonText)"
    }

    public var hint: String {
        switch reason {
        case .notTLS:
            direction == .inbound
                ? "Something other than a Tandem agent connected (a scanner, a health check, a plaintext client); if it was the peer, make sure it dials this port with TLS."
                : "The address in link.peer answers, but not with TLS: check the host and port."
        case .tlsVersion:
            "The link requires TLS 1.3 at both ends; update OpenSSL at the peer."
        case .untrustedCertificate:
            "Both sites need certificates from the same `tandem pair init`; compare link.ca at both sites."
        case .certificateExpired:
            "Issue a new certificate with `tandem pair rotate --site \(presentedSite ?? expectedSite)` and install it at that site."
        case .certificateNotYetValid:
            "Check both sites' clocks (NTP): the certificate's validity starts in the future."
        case .wrongSite:
            "Check link.peer_site here against site.name and the certificate configured at the peer."
        case .noCertificate:
            "The peer must present its site certificate: check link.certificate and link.key at the peer."
        case .certificateRejected:
            "Re-issue the peer's certificate with `tandem pair rotate` from the pair directory."
        case .refusedByPeer:
            "The peer's log says why; usually its link.ca belongs to another pair or its link.peer_site does not name this site."
        case .handshakeTimeout:
            "The peer connected but did not complete TLS: check for a proxy in between or a stalled peer."
        case .closedDuringHandshake:
            "The peer hung up during the handshake; its log says why."
        case .handshakeFailed:
            "Compare both sites' certificates and OpenSSL versions; the peer's log may say more."
        case .resolveFailed:
            "Check the host name in link.peer and this site's DNS."
        case .connectFailed, .connectTimeout:
            "Check link.peer, that the peer's agent is running and listening, and the firewalls in between."
        case .listenFailed:
            "Check link.listen: the address must be local and the port free (another agent running?)."
        case .acceptFailed:
            "The process may be out of file descriptors; check its limits."
        case .connectionLost:
            "The link broke; the agent reconnects. Frequent losses point at the network or the peer's log."
        case .closed:
            "The connection was closed by this process."
        }
    }

    private static func reasonNamesSite(_ reason: Reason) -> Bool {
        if case .wrongSite = reason { return true }
        return false
    }

    private static func text(_ reason: Reason, expected: String, direction: Direction) -> String {
        switch reason {
        case .notTLS(let detail):
            return "not a TLS connection (\(detail))"
        case .tlsVersion(let detail):
            return "TLS 1.3 required (\(detail))"
        case .untrustedCertificate(let detail):
            return "certificate not signed by the pair CA (\(detail))"
        case .certificateExpired(let notAfter):
            return "certificate expired" + (notAfter.map { " on \(timestamp($0))" } ?? "")
        case .certificateNotYetValid(let notBefore):
            return "certificate not valid yet" + (notBefore.map { " (valid from \(timestamp($0)))" } ?? "")
        case .wrongSite(let presented):
            let who = presented.map { "site \"\($0)\"" } ?? "no site name"
            return "certificate from the pair CA is for \(who), expected \"\(expected)\""
        case .noCertificate:
            return direction == .inbound ? "no client certificate presented" : "no server certificate presented"
        case .certificateRejected(let detail):
            return "certificate rejected (\(detail))"
        case .refusedByPeer(let alert):
            return alert
        case .handshakeTimeout(let seconds):
            return "no TLS handshake within \(secondsText(seconds)) s"
        case .closedDuringHandshake:
            return "the peer closed the connection during the TLS handshake"
        case .handshakeFailed(let detail):
            return "TLS handshake failed (\(detail))"
        case .resolveFailed(let detail):
            return "cannot resolve the host: \(detail)"
        case .connectFailed(let detail):
            return "cannot connect: \(detail)"
        case .connectTimeout(let seconds):
            return "no TCP connection within \(secondsText(seconds)) s"
        case .listenFailed(let detail), .acceptFailed(let detail):
            return detail
        case .connectionLost(let detail):
            return "connection lost: \(detail)"
        case .closed:
            return "closed by this side"
        }
    }

    /// What an alert usually means for the link, so that the line explains
    /// itself without a TLS reference at hand.
    private static func alertMeaning(_ alert: String) -> String {
        if alert.contains("unknown ca") || alert.contains("bad certificate") || alert.contains("certificate unknown")
            || alert.contains("decrypt error")
        {
            return " (it does not accept this site's certificate)"
        }
        if alert.contains("certificate expired") { return " (it considers this site's certificate expired)" }
        if alert.contains("certificate required") { return " (it requires a certificate from this site)" }
        if alert.contains("protocol version") { return " (it does not accept the TLS version offered)" }
        return ""
    }

    private static func secondsText(_ seconds: Double) -> String {
        seconds == seconds.rounded() && abs(seconds) < 1e9 ? String(Int(seconds)) : String(seconds)
    }

    private static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var fields = tm()
        gmtime_r(&seconds, &fields)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S UTC", &fields)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// OpenSSL failures reach operators when a site's certificate or key cannot be
/// loaded; the operation text names the file.
extension OpenSSLError: OperatorError {
    public var hint: String {
        "Check the file named above: it must be the PEM file `tandem pair init` wrote for this site, readable by the agent."
    }
}

extension PairSetupError: OperatorError {}
