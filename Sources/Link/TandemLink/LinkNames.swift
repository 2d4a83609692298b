import TandemCore

/// The link protocol's version numbers.
///
/// A HELLO always starts with the version, and the ERROR layout never changes, so
/// that two builds of different versions can at least tell each other why they
/// refuse to talk (`versionMismatch`) instead of failing on a frame they cannot read.
public enum LinkProtocol {
    /// The version this build speaks and puts in its HELLO. Version 2 added STATUS, version 3
    /// REQUEST and RESPONSE (the agents' calls to each other: verify, and later seed and the
    /// procedures).
    public static let currentVersion: UInt16 = 3
    /// The oldest peer version this build still accepts. An older peer would refuse the frames
    /// this build sends (or not answer its requests), so it is refused at the handshake instead,
    /// with a message naming the versions of both sides: upgrade both sites together.
    public static let oldestSupportedVersion: UInt16 = 3
}

/// A pair or site name as it travels in a HELLO.
///
/// 1–64 characters of `A-Z a-z 0-9 . _ -` (the same alphabet as `StreamID`), so
/// that a name read from the wire is safe to put in a log line, a file name or an
/// error message without escaping. The site configuration is stricter (it also
/// demands a leading letter or digit); the wire only refuses what could hurt.
public struct LinkName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public static let maximumLength = 64

    public let rawValue: String

    public init?(_ rawValue: String) {
        guard Self.isValid(rawValue.utf8) else { return nil }
        self.rawValue = rawValue
    }

    static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        (1...maximumLength).contains(bytes.count) && bytes.allSatisfy(isNameByte)
    }

    static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte | 0x20 >= 97 && byte | 0x20 <= 122)
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
    }

    public var description: String { rawValue }

    public static func < (lhs: LinkName, rhs: LinkName) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Which way the data flows, as seen from one end of the link.
///
/// Independent of `LinkTransportRole`: the site that dials out (usually the IDC,
/// from behind its firewall) is the sender before a switchover and the receiver
/// after it, over the same kind of connection.
public enum LinkDataRole: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The shipper side: sends batches, receives acknowledgements.
    case sender = 1
    /// The applier side: receives batches, stores them durably, acknowledges.
    case receiver = 2

    public var description: String {
        switch self {
        case .sender: "sender"
        case .receiver: "receiver"
        }
    }
}

/// Which end of the TLS connection this side is.
///
/// It decides who speaks first: the server sends its HELLO as soon as the
/// connection is up, and the client answers only after reading it. With TLS 1.3 a
/// client whose certificate the server refused learns so only on its next read,
/// so a client that spoke first would log a confusing write error instead of the
/// server's refusal.
public enum LinkTransportRole: Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case server
    case client

    public var description: String {
        switch self {
        case .server: "server"
        case .client: "client"
        }
    }
}
