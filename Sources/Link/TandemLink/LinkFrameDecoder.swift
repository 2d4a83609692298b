import TandemCore

/// Turns the byte stream from the peer back into whole messages, however the
/// stream was cut into chunks.
///
/// Hostile input is the normal case to design for: the length prefix is checked
/// against the limit on its four bytes alone, before any memory is set aside for
/// the frame, and every length inside a frame is checked against the bytes that
/// are actually there before it is used. Memory held is at most one maximum frame
/// plus the caller's current chunk. After the first error the decoder stays
/// failed (the connection is about to be closed; nothing after a bad frame can be
/// trusted to be aligned).
public struct LinkFrameDecoder: Sendable {
    public let maximumFrameLength: Int

    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var failure: LinkFrameError?

    /// Above this, an emptied buffer gives its memory back instead of keeping it
    /// for the next frame, so one huge batch does not pin its size for good.
    private static let retainedCapacity = 4 * 1024 * 1024

    /// `maximumFrameLength` counts the type byte and the payload (the value of the
    /// length prefix). It is clamped to what a link frame can be (see `LinkFrameLimits`).
    public init(maximumFrameLength: Int = LinkFrameLimits.defaultMaximumFrameLength) {
        self.maximumFrameLength = clampedFrameLength(maximumFrameLength)
    }

    /// Bytes received but not yet returned as a message.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// Appends a chunk and returns every message it completes, in order.
    public mutating func decode(_ chunk: some Collection<UInt8>) throws(LinkFrameError) -> [LinkMessage] {
        append(chunk)
        var messages: [LinkMessage] = []
        while let message = try next() { messages.append(message) }
        return messages
    }

    public mutating func append(_ chunk: some Collection<UInt8>) {
        guard failure == nil, !chunk.isEmpty else { return }
        if readIndex > 0 {
            if readIndex == buffer.count {
                buffer.removeAll(keepingCapacity: buffer.capacity <= Self.retainedCapacity)
                readIndex = 0
            } else if readIndex >= buffer.count - readIndex {
                // Moving the unread tail costs no more than the bytes already
                // consumed, so compaction stays linear overall.
                buffer.removeSubrange(0..<readIndex)
                readIndex = 0
            }
        }
        buffer.append(contentsOf: chunk)
    }

    /// The next whole message, or nil when more bytes are needed.
    public mutating func next() throws(LinkFrameError) -> LinkMessage? {
        if let failure { throw failure }
        let available = buffer.count - readIndex
        guard available >= 4 else { return nil }
        var length: UInt32 = 0
        for i in 0..<4 { length |= UInt32(buffer[readIndex + i]) << (8 * UInt32(i)) }
        guard length != 0 else { return try fail(.emptyFrame) }
        guard Int(length) <= maximumFrameLength else {
            return try fail(.frameTooLarge(length: UInt64(length), limit: maximumFrameLength))
        }
        guard available - 4 >= Int(length) else { return nil }
        let start = readIndex + 4
        let end = start + Int(length)
        readIndex = end
        do throws(LinkFrameError) {
            return try Self.parse(buffer, from: start, to: end)
        } catch {
            return try fail(error)
        }
    }

    private mutating func fail(_ error: LinkFrameError) throws(LinkFrameError) -> LinkMessage? {
        failure = error
        buffer = []
        readIndex = 0
        throw error
    }

    /// Parses one frame body (type byte + payload) occupying `buffer[start..<end]`.
    static func parse(_ buffer: [UInt8], from start: Int, to end: Int) throws(LinkFrameError) -> LinkMessage {
        guard let kind = LinkMessageKind(rawValue: buffer[start]) else { throw .unknownType(buffer[start]) }
        var reader = FieldReader(kind: kind, bytes: buffer, index: start + 1, end: end)
        let message: LinkMessage
        switch kind {
        case .hello: message = .hello(try reader.hello())
        case .batch:
            let sequence = try reader.u64("sequence")
            guard sequence >= 1 else { throw reader.invalid("sequence", "batch sequences start at 1") }
            let frame = reader.rest()
            guard !frame.isEmpty else { throw reader.invalid("frame", "empty") }
            message = .batch(sequence: sequence, frame: Array(frame))
        case .ack: message = .ack(try reader.ack())
        case .heartbeat: message = .heartbeat(try reader.heartbeat())
        case .error: message = .error(try reader.errorMessage())
        case .status:
            let report = reader.rest()
            guard report.count <= LinkStatusReport.maximumBytes else {
                throw reader.invalid(
                    "report", "\(report.count) bytes, more than \(LinkStatusReport.maximumBytes)")
            }
            message = .status(LinkStatusReport(bytes: Array(report)))
        case .request, .response:
            let id = try reader.u64("id")
            let body = reader.rest()
            guard body.count <= LinkCall.maximumBytes else {
                throw reader.invalid("body", "\(body.count) bytes, more than \(LinkCall.maximumBytes)")
            }
            let call = LinkCall(id: id, body: Array(body))
            message = kind == .request ? .request(call) : .response(call)
        }
        try reader.finish()
        return message
    }
}

/// Reads the fields of one frame, never past its end.
private struct FieldReader {
    let kind: LinkMessageKind
    let bytes: [UInt8]
    var index: Int
    let end: Int

    func invalid(_ field: String, _ reason: String) -> LinkFrameError {
        .invalidField(kind, field: field, reason: reason)
    }

    mutating func take(_ count: Int, _ field: String) throws(LinkFrameError) -> ArraySlice<UInt8> {
        guard count <= end - index else { throw .truncated(kind, field: field) }
        defer { index += count }
        return bytes[index..<(index + count)]
    }

    mutating func integer<T: FixedWidthInteger>(_ type: T.Type, _ field: String) throws(LinkFrameError) -> T {
        let slice = try take(MemoryLayout<T>.size, field)
        var value: T = 0
        for (shift, byte) in slice.enumerated() { value |= T(byte) << (8 * shift) }
        return value
    }

    mutating func u8(_ field: String) throws(LinkFrameError) -> UInt8 { try integer(UInt8.self, field) }
    mutating func u16(_ field: String) throws(LinkFrameError) -> UInt16 { try integer(UInt16.self, field) }
    mutating func u32(_ field: String) throws(LinkFrameError) -> UInt32 { try integer(UInt32.self, field) }
    mutating func u64(_ field: String) throws(LinkFrameError) -> UInt64 { try integer(UInt64.self, field) }
    mutating func i64(_ field: String) throws(LinkFrameError) -> Int64 {
        Int64(bitPattern: try integer(UInt64.self, field))
    }

    mutating func flag(_ field: String) throws(LinkFrameError) -> Bool {
        switch try u8(field) {
        case 0: return false
        case 1: return true
        case let other: throw invalid(field, "expected 0 or 1, got \(other)")
        }
    }

    mutating func rest() -> ArraySlice<UInt8> {
        defer { index = end }
        return bytes[index..<end]
    }

    func finish() throws(LinkFrameError) {
        if index < end { throw .trailingBytes(kind, count: end - index) }
    }

    mutating func name(_ field: String) throws(LinkFrameError) -> LinkName {
        let count = Int(try u8("\(field) length"))
        let raw = try take(count, field)
        guard LinkName.isValid(raw), let name = LinkName(String(decoding: raw, as: UTF8.self)) else {
            throw invalid(field, "expected 1–\(LinkName.maximumLength) characters of A-Z a-z 0-9 . _ -")
        }
        return name
    }

    mutating func text(_ field: String, count: Int) throws(LinkFrameError) -> String {
        let raw = try take(count, field)
        guard let text = String(validating: raw, as: UTF8.self) else { throw invalid(field, "not valid UTF-8") }
        return text
    }

    mutating func hello() throws(LinkFrameError) -> LinkHello {
        let version = try u16("protocol version")
        guard version >= 1 else { throw invalid("protocol version", "0 is not a protocol version") }
        // Everything after the version is laid out per version; a newer layout
        // cannot be read, only refused for what it is.
        guard version <= LinkProtocol.currentVersion else { throw .unsupportedVersion(version) }
        let pair = try name("pair name")
        let site = try name("site name")
        let roleByte = try u8("data role")
        guard let role = LinkDataRole(rawValue: roleByte) else {
            throw invalid("data role", "expected 1 (sender) or 2 (receiver), got \(roleByte)")
        }
        let streamLength = Int(try u8("stream id length"))
        var stream: StreamID?
        if streamLength > 0 {
            let raw = try take(streamLength, "stream id")
            guard LinkName.isValid(raw), let id = StreamID(String(decoding: raw, as: UTF8.self)) else {
                throw invalid("stream id", "expected 1–64 characters of A-Z a-z 0-9 . _ -")
            }
            stream = id
        }
        let resumePoint = try u64("resume point")
        let wall = try i64("wall clock")
        return LinkHello(
            version: version, pair: pair, site: site, role: role, stream: stream,
            resumePoint: resumePoint, wallClock: Timestamp(microsecondsSinceEpoch: wall))
    }

    mutating func ack() throws(LinkFrameError) -> LinkAck {
        let durable = try u64("durable sequence")
        let applied = try u64("applied sequence")
        var position: Position?
        if try flag("position flag") {
            let engineLength = Int(try u8("engine length"))
            let engineName = try text("engine", count: engineLength)
            guard let engine = DatabaseEngine(rawValue: engineName) else {
                throw invalid("engine", "unknown database engine")
            }
            let textLength = Int(try u32("position length"))
            let positionText = try text("position", count: textLength)
            do {
                position = try Position(engine: engine, parsing: positionText)
            } catch {
                throw invalid("position", error.description)
            }
        }
        return LinkAck(durable: durable, applied: applied, appliedPosition: position)
    }

    mutating func heartbeat() throws(LinkFrameError) -> LinkHeartbeat {
        let monotonic = try u64("monotonic time")
        let wall = try i64("wall clock")
        var echo: LinkHeartbeat.Echo?
        if try flag("echo flag") {
            echo = LinkHeartbeat.Echo(
                monotonicMicroseconds: try u64("echoed monotonic time"),
                heldMicroseconds: try u64("echo hold time"))
        }
        return LinkHeartbeat(
            monotonicMicroseconds: monotonic, wallClock: Timestamp(microsecondsSinceEpoch: wall),
            echo: echo)
    }

    mutating func errorMessage() throws(LinkFrameError) -> LinkErrorMessage {
        let code = LinkErrorCode(rawValue: try u16("code"))
        let length = Int(try u16("reason length"))
        let reason = try text("reason", count: length)
        guard reason.unicodeScalars.allSatisfy(LinkErrorMessage.isAllowedInReason) else {
            throw invalid("reason", "contains control characters")
        }
        return LinkErrorMessage(code: code, validatedReason: reason)
    }
}
