/// Why a batch frame was refused. Every case names what was wrong; `hint` says
/// what an operator can do about it. Refusing a frame never changes any state.
public enum BatchCodecError: Error, Sendable, Hashable, CustomStringConvertible {
    case tooShort(length: Int)
    case badMagic
    case unsupportedVersion(UInt16)
    case unknownCompression(UInt8)
    case unknownFlags(UInt8)
    case lengthOutOfBounds(field: String, value: UInt64, limit: UInt64)
    case lengthMismatch(expected: UInt64, actual: Int)
    case checksumMismatch(stored: UInt32, computed: UInt32)
    case truncated(field: String)
    case malformed(field: String, reason: String)
    case decompressionFailed(String)
    case inconsistent(String)
    /// The encoder was given a batch it cannot represent faithfully.
    case invalidBatch(String)
    case compressionFailed(String)

    public var description: String {
        switch self {
        case .tooShort(let length): "batch frame of \(length) bytes is shorter than the fixed frame header"
        case .badMagic: "not a Tandem batch frame (bad magic bytes)"
        case .unsupportedVersion(let v):
            "batch format version \(v) is not supported (this build reads version \(BatchFormat.version))"
        case .unknownCompression(let c): "unknown batch compression code \(c)"
        case .unknownFlags(let f): "unknown batch frame flags 0x\(String(f, radix: 16))"
        case let .lengthOutOfBounds(field, value, limit): "\(field) of \(value) exceeds the limit of \(limit)"
        case let .lengthMismatch(expected, actual): "batch frame declares \(expected) bytes but \(actual) are present"
        case let .checksumMismatch(stored, computed):
            "batch checksum mismatch (stored crc32c \(hex(stored)), computed \(hex(computed)))"
        case .truncated(let field): "batch ends inside \(field)"
        case let .malformed(field, reason): "malformed \(field): \(reason)"
        case .decompressionFailed(let reason): "batch body does not decompress: \(reason)"
        case .inconsistent(let reason): "batch header and body disagree: \(reason)"
        case .invalidBatch(let reason): "cannot encode batch: \(reason)"
        case .compressionFailed(let reason): "cannot compress batch: \(reason)"
        }
    }

    public var hint: String {
        switch self {
        case .unsupportedVersion:
            "run the same Tandem version at both sites, or upgrade the older one"
        case .invalidBatch, .compressionFailed:
            "this is a bug in the capture path; report it with the log line"
        default:
            "the frame was damaged or did not come from a Tandem peer; it was discarded and nothing was applied"
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let s = String(value, radix: 16)
    return String(repeating: "0", count: 8 - s.count) + s
}

/// Text taken from a frame, made safe to put in a log line: control characters
/// escaped (a peer must not be able to forge log lines) and cut to `limit`
/// characters (nor fill the log with one error).
func loggable(_ text: some StringProtocol, limit: Int = 64) -> String {
    var result = ""
    var characters = 0
    for scalar in text.unicodeScalars {
        if characters == limit {
            result += "…"
            break
        }
        if scalar.properties.generalCategory == .control || scalar == "\u{2028}" || scalar == "\u{2029}" {
            result += scalar.escaped(asASCII: true)
        } else {
            result.unicodeScalars.append(scalar)
        }
        characters += 1
    }
    return result
}
