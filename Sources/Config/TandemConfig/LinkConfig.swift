import TandemCore

/// `[link]`: the TLS connection between the two sites.
///
/// Exactly one side of a pair connects and the other listens; which one is a
/// network decision (usually the primary site dials out through its firewall),
/// independent of which way data flows, so it survives a switchover unchanged.
/// Both sides authenticate with certificates issued by the pair's CA, and each
/// checks that the peer's certificate carries `peerSite`.
public struct LinkConfig: Sendable, Equatable {
    public var mode: LinkMode
    /// The site name the peer's certificate must carry; never this site's own name.
    public var peerSite: String
    /// PEM file of the pair's CA, the only CA trusted on the link.
    public var caFile: String
    /// PEM certificate of this site (CN/SAN = `site.name`), optionally with chain.
    public var certificateFile: String
    /// PEM private key of this site's certificate.
    public var keyFile: String

    public init(mode: LinkMode, peerSite: String, caFile: String, certificateFile: String, keyFile: String) {
        self.mode = mode
        self.peerSite = peerSite
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }
}

/// Which side opens the connection, and the address involved.
public enum LinkMode: Sendable, Equatable {
    /// Dial the peer at `host:port` (TOML: `mode = "connect"`, `peer = "host:port"`).
    case connect(host: String, port: Int)
    /// Accept the peer on `host:port` (TOML: `mode = "listen"`, `listen = "host:port"`).
    case listen(host: String, port: Int)

    public var host: String {
        switch self {
        case .connect(let host, _), .listen(let host, _): host
        }
    }

    public var port: Int {
        switch self {
        case .connect(_, let port), .listen(_, let port): port
        }
    }

    /// `host:port`, with IPv6 addresses bracketed.
    public var address: String { HostPort.format(host: host, port: port) }
}
