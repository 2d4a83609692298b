import Foundation
import Logging
import TandemCore

/// A request over the control socket. One per connection.
public enum ControlRequest: Sendable, Equatable {
    /// The agent's status report (monitor level).
    case status
    /// Sets the running agent's log level (operator level): debug on a live agent, no restart.
    case logLevel(Logger.Level)
    /// Compares the two sites' tables (operator level: it loads both databases).
    case verify(VerifyRequest)
    /// Starts (or continues) the initial copy of the DR site (operator level: it writes there).
    case seed(SeedControlRequest)
    /// The seed's progress (monitor level).
    case seedStatus

    /// The request's name on the wire and in the audit log.
    public var name: String {
        switch self {
        case .status: "status"
        case .logLevel: "log-level"
        case .verify: "verify"
        case .seed: "seed"
        case .seedStatus: "seed-status"
        }
    }

    /// What the request needs of its sender.
    public var level: ControlLevel {
        switch self {
        case .status, .seedStatus: .monitor
        case .logLevel, .verify, .seed: .operator
        }
    }

    /// What it does, for a refusal: "user bob (uid 1002) may not <action>".
    public var action: String {
        switch self {
        case .status: "read status"
        case .logLevel: "change the log level"
        case .verify: "run verify"
        case .seed: "run a seed"
        case .seedStatus: "read the seed's progress"
        }
    }

    /// The request as the audit log records it: its name and argument.
    public var auditText: String {
        switch self {
        case .status: "status"
        case .logLevel(let level): "log-level \(level.rawValue)"
        case .verify(let request): "verify " + (request.tables?.joined(separator: ",") ?? "all tables")
        case .seed(let request):
            "seed " + (request.tables?.joined(separator: ",") ?? "all tables")
                + (request.truncateTarget ? " --truncate-target" : "")
        case .seedStatus: "seed-status"
        }
    }
}

/// `tandem verify`'s options as they travel to the agent.
public struct VerifyRequest: Sendable, Equatable {
    /// `schema.table` names; nil: every replicated table.
    public var tables: [String]?
    public var chunkRows: Int?
    public var maxRowsPerSecond: Int?

    public init(tables: [String]? = nil, chunkRows: Int? = nil, maxRowsPerSecond: Int? = nil) {
        self.tables = tables
        self.chunkRows = chunkRows
        self.maxRowsPerSecond = maxRowsPerSecond
    }
}

/// `tandem seed`'s options as they travel to the agent.
public struct SeedControlRequest: Sendable, Equatable {
    /// `schema.table` names; nil: every replicated table.
    public var tables: [String]?
    public var truncateTarget: Bool
    public var chunkRows: Int?
    public var readers: Int?

    public init(tables: [String]? = nil, truncateTarget: Bool = false, chunkRows: Int? = nil, readers: Int? = nil) {
        self.tables = tables
        self.truncateTarget = truncateTarget
        self.chunkRows = chunkRows
        self.readers = readers
    }
}

/// What the agent answers: a JSON object, or a refusal or failure as one line plus a hint (the
/// shape every operator error has).
public enum ControlResult: Sendable, Equatable {
    /// The result object, as JSON bytes.
    case ok([UInt8])
    case failed(error: String, hint: String)
}

/// A request or response that is not what the control protocol allows.
public struct ControlWireError: OperatorError, Equatable {
    public enum Kind: Sendable, Equatable {
        case tooLarge
        case notJSON
        case notAnObject
        case missingRequest
        case unknownRequest(String)
        case badField(String)
        case unexpectedField(String)
    }

    public var kind: Kind
    public var description: String
    public var hint: String

    init(
        _ kind: Kind, _ description: String,
        hint: String = "Send one JSON object on one line, such as {\"request\":\"status\"}."
    ) {
        self.kind = kind
        self.description = description
        self.hint = hint
    }
}

/// The control protocol: one request per connection, a single JSON line each way.
///
///     → {"request":"status"}
///     ← {"ok":true,"result":{...}}
///     → {"request":"log-level","level":"debug"}
///     ← {"ok":false,"error":"...","hint":"..."}
///
/// Why JSON lines over a UNIX socket rather than HTTP: nothing but `tandem` and scripts on the
/// same host talk to it, a line is trivially bounded and logged, and `socat` is enough to try it
/// by hand. Every line is bounded (`maximumBytes`); anything unexpected is an error with the
/// reason, never a guess: an unknown field may be a newer client's, and silently ignoring it
/// could mean doing something other than what was asked.
public enum ControlWire {
    /// The largest request line accepted (a status request is a few bytes).
    public static let maximumBytes = 64 * 1024
    /// The largest response line accepted: a status report is a few KiB, a verify report that
    /// lists many differences more.
    public static let maximumResponseBytes = 8 * 1024 * 1024

    /// A request line, `\n`-terminated.
    public static func encode(_ request: ControlRequest) -> [UInt8] {
        var line = "{\"request\":\(JSONText.quoted(request.name))"
        switch request {
        case .status: break
        case .logLevel(let level): line += ",\"level\":\(JSONText.quoted(level.rawValue))"
        case .verify(let verify):
            if let tables = verify.tables {
                line += ",\"tables\":[" + tables.map(JSONText.quoted).joined(separator: ",") + "]"
            }
            if let rows = verify.chunkRows { line += ",\"chunk_rows\":\(rows)" }
            if let rate = verify.maxRowsPerSecond { line += ",\"max_rows_per_second\":\(rate)" }
        case .seed(let seed):
            if let tables = seed.tables {
                line += ",\"tables\":[" + tables.map(JSONText.quoted).joined(separator: ",") + "]"
            }
            if seed.truncateTarget { line += ",\"truncate_target\":true" }
            if let rows = seed.chunkRows { line += ",\"chunk_rows\":\(rows)" }
            if let readers = seed.readers { line += ",\"readers\":\(readers)" }
        case .seedStatus: break
        }
        return Array((line + "}\n").utf8)
    }

    /// The request in `line` (without its `\n`).
    public static func decodeRequest(_ line: [UInt8]) throws(ControlWireError) -> ControlRequest {
        let object = try decodeObject(line, what: "request")
        guard let name = object["request"] else {
            throw ControlWireError(.missingRequest, "the request has no \"request\" field")
        }
        guard let name = name as? String else {
            throw ControlWireError(.badField("request"), "the \"request\" field is not a string")
        }
        switch name {
        case "status":
            try onlyFields(["request"], in: object)
            return .status
        case "log-level":
            try onlyFields(["request", "level"], in: object)
            let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            guard let text = object["level"] as? String, let level = Logger.Level(rawValue: text) else {
                throw ControlWireError(
                    .badField("level"), "log-level needs a \"level\": one of \(levels)",
                    hint: "For example {\"request\":\"log-level\",\"level\":\"debug\"}.")
            }
            return .logLevel(level)
        case "verify":
            try onlyFields(["request", "tables", "chunk_rows", "max_rows_per_second"], in: object)
            var request = VerifyRequest()
            if let tables = object["tables"] {
                guard let names = tables as? [String], !names.isEmpty else {
                    throw ControlWireError(.badField("tables"), "verify's \"tables\" is not a list of table names")
                }
                request.tables = names
            }
            request.chunkRows = try positive("chunk_rows", in: object)
            request.maxRowsPerSecond = try positive("max_rows_per_second", in: object)
            return .verify(request)
        case "seed":
            try onlyFields(["request", "tables", "truncate_target", "chunk_rows", "readers"], in: object)
            var request = SeedControlRequest()
            if let tables = object["tables"] {
                guard let names = tables as? [String], !names.isEmpty else {
                    throw ControlWireError(.badField("tables"), "seed's \"tables\" is not a list of table names")
                }
                request.tables = names
            }
            if let truncate = object["truncate_target"] {
                guard let truncate = truncate as? Bool else {
                    throw ControlWireError(
                        .badField("truncate_target"), "seed's \"truncate_target\" is not true or false")
                }
                request.truncateTarget = truncate
            }
            request.chunkRows = try positive("chunk_rows", in: object)
            request.readers = try positive("readers", in: object)
            return .seed(request)
        case "seed-status":
            try onlyFields(["request"], in: object)
            return .seedStatus
        default:
            throw ControlWireError(
                .unknownRequest(name), "unknown request \(JSONText.quoted(String(name.prefix(80))))",
                hint:
                    "This agent knows: status, log-level, verify, seed, seed-status. Is `tandem` newer than the agent?")
        }
    }

    /// A response line, `\n`-terminated. A result with line breaks (pretty-printed JSON) is put
    /// on one line: a raw line break can only be whitespace in JSON, so this changes nothing else.
    public static func encode(_ result: ControlResult) -> [UInt8] {
        switch result {
        case .ok(let object):
            let body = object.isEmpty ? Array("{}".utf8) : object.map { $0 == 0x0A || $0 == 0x0D ? 0x20 : $0 }
            return Array("{\"ok\":true,\"result\":".utf8) + body + Array("}\n".utf8)
        case .failed(let error, let hint):
            return Array("{\"ok\":false,\"error\":\(JSONText.quoted(error)),\"hint\":\(JSONText.quoted(hint))}\n".utf8)
        }
    }

    /// The response in `line` (without its `\n`); an `ok` result comes back as compact JSON.
    public static func decodeResponse(_ line: [UInt8]) throws(ControlWireError) -> ControlResult {
        let object = try decodeObject(line, what: "response")
        switch object["ok"] as? Bool {
        case true?:
            guard let result = object["result"] as? [String: Any],
                let bytes = try? JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            else { throw ControlWireError(.badField("result"), "the response has no result object") }
            return .ok(Array(bytes))
        case false?:
            guard let error = object["error"] as? String else {
                throw ControlWireError(.badField("error"), "the refusal has no error text")
            }
            return .failed(error: error, hint: object["hint"] as? String ?? "")
        case nil:
            throw ControlWireError(.badField("ok"), "the response has no \"ok\" field")
        }
    }

    private static func decodeObject(_ line: [UInt8], what: String) throws(ControlWireError) -> [String: Any] {
        let limit = what == "response" ? maximumResponseBytes : maximumBytes
        guard line.count <= limit else {
            throw ControlWireError(.tooLarge, "the \(what) is larger than \(limit / 1024) KiB")
        }
        guard !line.isEmpty, !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) else {
            throw ControlWireError(.notJSON, "the \(what) is empty")
        }
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed]) } catch {
            throw ControlWireError(.notJSON, "the \(what) is not JSON")
        }
        guard let object = parsed as? [String: Any] else {
            throw ControlWireError(.notAnObject, "the \(what) is JSON but not an object")
        }
        return object
    }

    private static func positive(_ field: String, in object: [String: Any]) throws(ControlWireError) -> Int? {
        guard let value = object[field] else { return nil }
        guard let number = value as? Int, number > 0 else {
            throw ControlWireError(.badField(field), "\(JSONText.quoted(field)) is not a positive whole number")
        }
        return number
    }

    private static func onlyFields(_ allowed: Set<String>, in object: [String: Any]) throws(ControlWireError) {
        if let extra = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ControlWireError(
                .unexpectedField(extra), "unexpected field \(JSONText.quoted(String(extra.prefix(80))))")
        }
    }
}

/// JSON text for the few strings the control code writes itself (requests, refusals, audit lines).
enum JSONText {
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    static func quoted(_ text: String) -> String {
        // Encoding a String cannot fail; the fallback only keeps the signature total.
        (try? encoder.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }
}
