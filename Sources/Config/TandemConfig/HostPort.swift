/// Parsing of the `host:port` strings in `[link]` and of database host names.
///
/// Validation here is about catching typos before the agent starts, not about
/// being a full RFC parser: a host is a DNS name (letters, digits, `-`, `_`,
/// dot-separated labels), an IPv4 address (which is such a name), or an IPv6
/// literal. In `host:port` form an IPv6 literal must be bracketed
/// (`[2001:db8::1]:7400`), because otherwise the port is ambiguous.
enum HostPort {
    static let portRange = 1...65535

    /// The `host` and `port` of `text`, or why it is not `host:port`; the
    /// problem is phrased to follow "expected host:port …, got X: ".
    static func parse(_ text: String) -> Result<(host: String, port: Int), Problem> {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return .failure(.unclosedBracket) }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let afterClose = text[text.index(after: close)...]
            guard afterClose.first == ":" else { return .failure(.missingPort) }
            portPart = afterClose.dropFirst()
            guard isIPv6Literal(hostPart) else { return .failure(.badHost(String(hostPart))) }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return .failure(.missingPort) }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { return .failure(.unbracketedIPv6) }
            guard !hostPart.isEmpty else { return .failure(.missingHost) }
            guard isHostName(hostPart) else { return .failure(.badHost(String(hostPart))) }
        }
        guard !portPart.isEmpty else { return .failure(.missingPort) }
        guard portPart.allSatisfy({ $0.isASCII && $0.isNumber }), portPart.count <= 6,
            let port = Int(portPart)
        else { return .failure(.badPort(String(portPart))) }
        guard portRange.contains(port) else { return .failure(.portOutOfRange(port)) }
        return .success((String(hostPart), port))
    }

    enum Problem: Error, Equatable {
        case missingPort, missingHost, unclosedBracket, unbracketedIPv6
        case badHost(String)
        case badPort(String)
        case portOutOfRange(Int)

        var text: String {
            switch self {
            case .missingPort: "there is no :port"
            case .missingHost: "the host is empty"
            case .unclosedBracket: "the [ of an IPv6 address is not closed"
            case .unbracketedIPv6: "an IPv6 address must be written in brackets, like [2001:db8::1]:7400"
            case .badHost(let host): "\(quoted(host)) is not a valid host name or address"
            case .badPort(let port): "port \(quoted(port)) is not a number"
            case .portOutOfRange(let port):
                "port \(port) is out of range \(portRange.lowerBound)–\(portRange.upperBound)"
            }
        }
    }

    /// A DNS name or IPv4 address: dot-separated labels of letters, digits,
    /// `-` and `_` (the latter is not valid DNS but appears in internal names,
    /// and rejecting it would help nobody).
    static func isHostName<S: StringProtocol>(_ text: S) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
    }

    /// Loose IPv6 check (hex digits, at least two colons, an embedded IPv4
    /// tail, a `%zone`): enough to tell an address from a typo or from
    /// `host:port` (`db1:5432` is all hex digits too); the resolver has the
    /// final word.
    static func isIPv6Literal<S: StringProtocol>(_ text: S) -> Bool {
        let address = text.split(separator: "%", maxSplits: 1).first ?? ""
        return address.count(where: { $0 == ":" }) >= 2 && address.count <= 45
            && address.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
    }

    /// Formats an endpoint back into the `host:port` form it was parsed from.
    static func format(host: String, port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
