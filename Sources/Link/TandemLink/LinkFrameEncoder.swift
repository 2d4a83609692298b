import TandemCore

/// Writes link messages as frames: `[u32 LE length of type + payload][u8 type][payload]`.
///
/// The encoder refuses what the decoder on the other side would refuse (a frame
/// over the limit, a batch without bytes), so a local mistake shows up here with
/// a clear error rather than as the peer closing the connection.
public struct LinkFrameEncoder: Sendable {
    public let maximumFrameLength: Int

    /// `maximumFrameLength` is clamped to what a link frame can be (see
    /// `LinkFrameLimits`); the session configuration validates it properly.
    public init(maximumFrameLength: Int = LinkFrameLimits.defaultMaximumFrameLength) {
        self.maximumFrameLength = clampedFrameLength(maximumFrameLength)
    }

    public func encode(_ message: LinkMessage) throws(LinkFrameError) -> [UInt8] {
        var out: [UInt8] = []
        try encode(message, into: &out)
        return out
    }

    /// Appends one frame to `out`. On error `out` is left as it was.
    public func encode(_ message: LinkMessage, into out: inout [UInt8]) throws(LinkFrameError) {
        let start = out.count
        if case .batch(_, let frame) = message {
            out.reserveCapacity(start + LinkFrameLimits.batchOverhead + frame.count)
        }
        out.append(contentsOf: [0, 0, 0, 0, message.kind.rawValue])
        do throws(LinkFrameError) {
            try writePayload(message, into: &out)
        } catch {
            out.removeSubrange(start...)
            throw error
        }
        let length = out.count - start - 4
        guard length <= maximumFrameLength else {
            out.removeSubrange(start...)
            throw .frameTooLarge(length: UInt64(length), limit: maximumFrameLength)
        }
        let value = UInt32(length)
        for i in 0..<4 { out[start + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }

    /// The 13 bytes that precede a batch frame on the wire (length, type, sequence).
    ///
    /// Lets the I/O layer write a large batch as prefix + the frame it already
    /// holds, without copying the frame into a new buffer first.
    public func batchPrefix(sequence: UInt64, frameLength: Int) throws(LinkFrameError) -> [UInt8] {
        guard sequence >= 1 else {
            throw .invalidField(.batch, field: "sequence", reason: "batch sequences start at 1")
        }
        guard frameLength > 0 else { throw .invalidField(.batch, field: "frame", reason: "empty") }
        let length = frameLength.addingReportingOverflow(LinkFrameLimits.batchLengthOverhead)
        guard !length.overflow, length.partialValue <= maximumFrameLength else {
            throw .frameTooLarge(length: UInt64(clamping: length.partialValue), limit: maximumFrameLength)
        }
        var out: [UInt8] = []
        out.reserveCapacity(LinkFrameLimits.batchOverhead)
        out.appendLE(UInt32(length.partialValue))
        out.append(LinkMessageKind.batch.rawValue)
        out.appendLE(sequence)
        return out
    }

    private func writePayload(_ message: LinkMessage, into out: inout [UInt8]) throws(LinkFrameError) {
        switch message {
        case .hello(let hello):
            out.appendLE(hello.version)
            out.appendShortText(hello.pair.rawValue)
            out.appendShortText(hello.site.rawValue)
            out.append(hello.role.rawValue)
            out.appendShortText(hello.stream?.rawValue ?? "")
            out.appendLE(hello.resumePoint)
            out.appendLE(UInt64(bitPattern: hello.wallClock.microsecondsSinceEpoch))

        case let .batch(sequence, frame):
            guard sequence >= 1 else {
                throw .invalidField(.batch, field: "sequence", reason: "batch sequences start at 1")
            }
            guard !frame.isEmpty else { throw .invalidField(.batch, field: "frame", reason: "empty") }
            guard frame.count <= maximumFrameLength else {
                throw .frameTooLarge(length: UInt64(frame.count), limit: maximumFrameLength)
            }
            out.appendLE(sequence)
            out.append(contentsOf: frame)

        case .ack(let ack):
            out.appendLE(ack.durable)
            out.appendLE(ack.applied)
            if let position = ack.appliedPosition {
                let text = position.engineText
                guard text.utf8.count <= maximumFrameLength else {
                    throw .frameTooLarge(length: UInt64(text.utf8.count), limit: maximumFrameLength)
                }
                out.append(1)
                out.appendShortText(position.engine.rawValue)
                out.appendLE(UInt32(text.utf8.count))
                out.append(contentsOf: text.utf8)
            } else {
                out.append(0)
            }

        case .heartbeat(let heartbeat):
            out.appendLE(heartbeat.monotonicMicroseconds)
            out.appendLE(UInt64(bitPattern: heartbeat.wallClock.microsecondsSinceEpoch))
            if let echo = heartbeat.echo {
                out.append(1)
                out.appendLE(echo.monotonicMicroseconds)
                out.appendLE(echo.heldMicroseconds)
            } else {
                out.append(0)
            }

        case .error(let error):
            out.appendLE(error.code.rawValue)
            // `reason` is capped at maximumReasonBytes when the message is built.
            out.appendLE(UInt16(error.reason.utf8.count))
            out.append(contentsOf: error.reason.utf8)

        case .status(let report):
            guard report.bytes.count <= LinkStatusReport.maximumBytes else {
                throw .invalidField(
                    .status, field: "report",
                    reason: "\(report.bytes.count) bytes, more than \(LinkStatusReport.maximumBytes)")
            }
            out.append(contentsOf: report.bytes)

        case .request(let call), .response(let call):
            guard call.body.count <= LinkCall.maximumBytes else {
                throw .invalidField(
                    message.kind, field: "body", reason: "\(call.body.count) bytes, more than \(LinkCall.maximumBytes)")
            }
            out.appendLE(call.id)
            out.append(contentsOf: call.body)
        }
    }
}

func clampedFrameLength(_ value: Int) -> Int {
    min(max(value, LinkFrameLimits.minimumMaximumFrameLength), LinkFrameLimits.largestExpressibleFrameLength)
}

extension [UInt8] {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }

    /// u8 length + bytes. Only for texts known to be at most 255 bytes (names,
    /// engine names): their types guarantee it.
    mutating func appendShortText(_ text: String) {
        append(UInt8(truncatingIfNeeded: text.utf8.count))
        append(contentsOf: text.utf8)
    }
}
