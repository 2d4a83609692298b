import SeededRandom
import TandemCore
import Testing

@testable import TandemLink

/// One message of every kind and shape, for round trips.
let sampleMessages: [LinkMessage] = [
    .hello(
        LinkHello(
            pair: pairName, site: idc, role: .sender, stream: ordersStream, resumePoint: 42,
            wallClock: Timestamp(microsecondsSinceEpoch: 1_700_000_000_123_456))),
    .hello(
        LinkHello(
            pair: pairName, site: cloud, role: .receiver, stream: nil, resumePoint: 0,
            wallClock: Timestamp(microsecondsSinceEpoch: -5))),
    .hello(
        LinkHello(
            pair: name(String(repeating: "p", count: 64)), site: name("a.b_c-D9"), role: .receiver,
            stream: stream(String(repeating: "s", count: 64)), resumePoint: .max - 1,
            wallClock: Timestamp(microsecondsSinceEpoch: .min))),
    .batch(sequence: 1, frame: [0xAB]),
    .batch(sequence: .max, frame: frame(7, size: 3000)),
    .ack(LinkAck(durable: 0, applied: 0)),
    .ack(LinkAck(durable: 10, applied: 9, appliedPosition: .postgresql(LSN(0x16_B374_D848)))),
    .ack(LinkAck(durable: 10, applied: 9, appliedPosition: try! Position(engine: .mariadb, parsing: "0-1-42,1-2-7"))),
    .ack(
        LinkAck(
            durable: 5, applied: 5,
            appliedPosition: try! Position(
                engine: .mysql, parsing: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9"))),
    .heartbeat(LinkHeartbeat(monotonicMicroseconds: 0, wallClock: Timestamp(microsecondsSinceEpoch: 0))),
    .heartbeat(
        LinkHeartbeat(
            monotonicMicroseconds: 123_456, wallClock: Timestamp(microsecondsSinceEpoch: 99),
            echo: .init(monotonicMicroseconds: 1000, heldMicroseconds: 250))),
    .error(LinkErrorMessage(code: .pairMismatch, reason: "HELLO names pair \"x\", expected \"acme-dr\"")),
    .error(LinkErrorMessage(code: .unrecognized(999), reason: "")),
    .error(LinkErrorMessage(code: .shuttingDown, reason: "déjà vu — ünïcödé ✓")),
]

@Suite("Framing")
struct FramingTests {
    let encoder = LinkFrameEncoder()

    @Test("every message kind round-trips", arguments: sampleMessages)
    func roundTrip(_ message: LinkMessage) throws {
        let bytes = try encoder.encode(message)
        var decoder = LinkFrameDecoder()
        #expect(try decoder.decode(bytes) == [message])
        #expect(decoder.bufferedByteCount == 0)
        // Layout: u32 LE length of type + payload, then the type.
        let length = bytes[0..<4].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(length == bytes.count - 4)
        #expect(bytes[4] == message.kind.rawValue)
    }

    @Test("all messages back to back, split at every byte boundary")
    func splitEverywhere() throws {
        let stream = sampleMessages.filter { if case .batch(_, let f) = $0 { f.count < 100 } else { true } }
        var bytes: [UInt8] = []
        for message in stream { try encoder.encode(message, into: &bytes) }
        for cut in 0...bytes.count {
            var decoder = LinkFrameDecoder()
            var decoded = try decoder.decode(bytes[0..<cut])
            decoded += try decoder.decode(bytes[cut...])
            #expect(decoded == stream, "split at \(cut)")
        }
    }

    @Test("a message fed one byte at a time", arguments: [sampleMessages[0], sampleMessages[6], sampleMessages[10]])
    func byteByByte(_ message: LinkMessage) throws {
        let bytes = try encoder.encode(message)
        var decoder = LinkFrameDecoder()
        for (index, byte) in bytes.enumerated() {
            let out = try decoder.decode([byte])
            #expect(out == (index == bytes.count - 1 ? [message] : []))
        }
    }

    @Test("two cuts anywhere in a HELLO + ACK stream")
    func threePieces() throws {
        let stream = [sampleMessages[0], sampleMessages[7]]
        var bytes: [UInt8] = []
        for message in stream { try encoder.encode(message, into: &bytes) }
        for first in stride(from: 0, through: bytes.count, by: 3) {
            for second in first...bytes.count {
                var decoder = LinkFrameDecoder()
                let decoded =
                    try decoder.decode(bytes[..<first]) + decoder.decode(bytes[first..<second])
                    + decoder.decode(bytes[second...])
                #expect(decoded == stream)
            }
        }
    }

    @Test("batch prefix + frame equals the encoded BATCH")
    func batchPrefix() throws {
        let bytes = frame(3, size: 500)
        let prefix = try encoder.batchPrefix(sequence: 3, frameLength: bytes.count)
        #expect(prefix.count == LinkFrameLimits.batchOverhead)
        #expect(prefix + bytes == (try encoder.encode(.batch(sequence: 3, frame: bytes))))
    }

    @Test("the default maximum exceeds the batch codec's largest frame")
    func defaultLimitCoversBatchCodec() {
        // BatchLimits.default.maximumFrameBytes: 16 + 64 KiB + 64 MiB + 4.
        let largestBatchFrame = 16 + 64 * 1024 + 64 * 1024 * 1024 + 4
        #expect(LinkFrameLimits.defaultMaximumFrameLength >= largestBatchFrame + 9)
        #expect(LinkFrameDecoder().maximumFrameLength == LinkFrameLimits.defaultMaximumFrameLength)
    }

    @Test("MySQL binlog coordinates are dropped from an ACK position, the GTID set is kept")
    func mysqlCoordinates() throws {
        let set = try MySQLGTIDSet(parsing: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5")
        let ack = LinkAck(
            durable: 2, applied: 1,
            appliedPosition: .mysql(MySQLPosition(gtidSet: set, binlogFile: "bin.000003", binlogOffset: 4)))
        var decoder = LinkFrameDecoder()
        let decoded = try decoder.decode(try encoder.encode(.ack(ack)))
        #expect(
            decoded == [.ack(LinkAck(durable: 2, applied: 1, appliedPosition: .mysql(MySQLPosition(gtidSet: set))))])
    }

    @Test("the encoder refuses what the decoder would refuse")
    func encoderRefuses() {
        #expect(throws: LinkFrameError.self) { try encoder.encode(.batch(sequence: 0, frame: [1])) }
        #expect(throws: LinkFrameError.self) { try encoder.encode(.batch(sequence: 1, frame: [])) }
        let small = LinkFrameEncoder(maximumFrameLength: 4096)
        #expect(throws: LinkFrameError.frameTooLarge(length: 4096 + 9, limit: 4096)) {
            try small.encode(.batch(sequence: 1, frame: [UInt8](repeating: 0, count: 4096)))
        }
        #expect(throws: LinkFrameError.self) { try small.batchPrefix(sequence: 1, frameLength: 4096) }
        var out: [UInt8] = [9, 9]
        #expect(throws: LinkFrameError.self) {
            try small.encode(.batch(sequence: 1, frame: [UInt8](repeating: 0, count: 5000)), into: &out)
        }
        #expect(out == [9, 9], "a refused message leaves the buffer as it was")
    }

    @Test("error reasons are sanitised and capped when built")
    func reasonSanitised() {
        let message = LinkErrorMessage(
            code: .internalError, reason: "line one\nline two\u{0}\u{2028}" + String(repeating: "é", count: 2000))
        #expect(!message.reason.contains("\n"))
        #expect(message.reason.hasPrefix("line one line two  "))
        #expect(message.reason.utf8.count <= LinkErrorMessage.maximumReasonBytes)
        #expect(message.reason.utf8.count >= LinkErrorMessage.maximumReasonBytes - 1)
    }

    @Test("error codes keep their numbers; unknown ones are kept, not refused")
    func errorCodes() {
        #expect(LinkErrorCode.known.count == 13)
        for code in LinkErrorCode.known {
            #expect(LinkErrorCode(rawValue: code.rawValue) == code)
            if case .unrecognized = code { Issue.record("\(code) should be known") }
        }
        #expect(LinkErrorCode(rawValue: 2) == .versionMismatch)
        #expect(LinkErrorCode(rawValue: 8) == .outOfOrderBatch)
        #expect(LinkErrorCode(rawValue: 500) == .unrecognized(500))
        #expect(LinkErrorCode(rawValue: 0) == .unrecognized(0))
    }
}

// MARK: - Hostile input

/// A frame with an explicit length prefix.
func rawFrame(type: UInt8, _ payload: [UInt8], length: UInt32? = nil) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.appendLE(length ?? UInt32(payload.count + 1))
    bytes.append(type)
    return bytes + payload
}

func decodeError(_ bytes: [UInt8], maximum: Int = LinkFrameLimits.defaultMaximumFrameLength) -> LinkFrameError? {
    var decoder = LinkFrameDecoder(maximumFrameLength: maximum)
    do {
        let messages = try decoder.decode(bytes)
        Issue.record("decoded \(messages) from hostile bytes")
        return nil
    } catch {
        return error
    }
}

/// A valid HELLO payload, assembled by hand so that single fields can be broken.
func helloPayload(
    version: UInt16 = 1, pair: [UInt8] = Array("acme-dr".utf8), site: [UInt8] = Array("idc".utf8),
    role: UInt8 = 1, stream: [UInt8] = Array("orders".utf8), tail: [UInt8] = [UInt8](repeating: 0, count: 16)
) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.appendLE(version)
    bytes.append(UInt8(pair.count)); bytes += pair
    bytes.append(UInt8(site.count)); bytes += site
    bytes.append(role)
    bytes.append(UInt8(stream.count)); bytes += stream
    return bytes + tail
}

@Suite("Hostile framing", .timeLimit(.minutes(2)))
struct HostileFramingTests {
    @Test("a 4 GiB length prefix is refused on its four bytes")
    func fourGiB() {
        var decoder = LinkFrameDecoder()
        #expect(
            throws: LinkFrameError.frameTooLarge(
                length: UInt64(UInt32.max), limit: LinkFrameLimits.defaultMaximumFrameLength)
        ) {
            _ = try decoder.decode([0xFF, 0xFF, 0xFF, 0xFF])
        }
        // Nothing was buffered for it, and the decoder stays failed.
        #expect(decoder.bufferedByteCount == 0)
        #expect(throws: LinkFrameError.self) { _ = try decoder.decode([1, 0, 0, 0, 4]) }
    }

    @Test("a length one over the configured maximum is refused; the maximum itself is not")
    func overMaximum() throws {
        let maximum = 10_000
        #expect(
            decodeError(rawFrame(type: 2, [], length: UInt32(maximum + 1)), maximum: maximum)
                == .frameTooLarge(length: UInt64(maximum + 1), limit: maximum))
        var decoder = LinkFrameDecoder(maximumFrameLength: maximum)
        var payload: [UInt8] = []
        payload.appendLE(UInt64(1))
        payload += [UInt8](repeating: 7, count: maximum - 9)
        #expect(try decoder.decode(rawFrame(type: 2, payload)).count == 1)
    }

    @Test("a zero length is refused")
    func zeroLength() {
        #expect(decodeError([0, 0, 0, 0]) == .emptyFrame)
    }

    @Test("unknown frame types are refused", arguments: [0, 9, 10, 0x80, 0xFF] as [UInt8])
    func unknownType(_ type: UInt8) {
        #expect(decodeError(rawFrame(type: type, [1, 2, 3])) == .unknownType(type))
    }

    @Test("every truncation of every message is refused as truncated")
    func truncatedPayloads() throws {
        for message in sampleMessages {
            let full = try LinkFrameEncoder().encode(message)
            let payload = Array(full[5...])
            // Cutting the payload and fixing the length prefix: a complete frame
            // whose message ends early.
            // A batch's frame runs to the end of its frame, so only cuts inside
            // the sequence (or leaving no frame byte) are truncations.
            let cuts = message.kind == .batch ? 0..<9 : 0..<payload.count
            for cut in cuts {
                let bytes = rawFrame(type: full[4], Array(payload[..<cut]))
                // An accepted truncation (messages decoded, or none and bytes left waiting)
                // is recorded as a failure by decodeError itself.
                guard let error = decodeError(bytes) else { continue }
                switch error {
                case .truncated(let kind, _) where kind == message.kind: break
                // The one cut that is not a truncation: a batch cut right after its sequence
                // is a complete BATCH whose frame is empty.
                case .invalidField(.batch, "frame", "empty") where message.kind == .batch && cut == 8: break
                default:
                    Issue.record(
                        "\(message.kind) cut at \(cut) of \(payload.count): expected truncated(\(message.kind)), got \(error)"
                    )
                }
            }
        }
    }

    @Test("trailing bytes inside a frame are refused")
    func trailingBytes() throws {
        for message in sampleMessages {
            if case .batch = message { continue }  // a batch frame runs to the end of its frame
            let full = try LinkFrameEncoder().encode(message)
            let bytes = rawFrame(type: full[4], Array(full[5...]) + [0])
            #expect(decodeError(bytes) == .trailingBytes(message.kind, count: 1), "\(message.kind)")
        }
    }

    @Test("invalid names, roles and texts are refused")
    func invalidFields() {
        let cases: [([UInt8], String)] = [
            (helloPayload(pair: [0xC3, 0x28]), "pair name"),  // invalid UTF-8
            (helloPayload(pair: Array("acme dr".utf8)), "pair name"),  // space
            (helloPayload(site: []), "site name"),  // empty
            (helloPayload(site: Array("ünï".utf8)), "site name"),  // valid UTF-8, outside the alphabet
            (helloPayload(site: [UInt8](repeating: 97, count: 65)), "site name"),  // too long
            (helloPayload(role: 3), "data role"),
            (helloPayload(stream: [0xFF]), "stream id"),
            (helloPayload(version: 0), "protocol version"),
        ]
        for (payload, field) in cases {
            guard case .invalidField(.hello, let actual, _) = decodeError(rawFrame(type: 1, payload)) else {
                Issue.record("expected invalid \(field)")
                continue
            }
            #expect(actual == field)
        }
        // ERROR with invalid UTF-8 and with a newline in the reason.
        for reason in [[0xE2, 0x82] as [UInt8], Array("two\nlines".utf8)] {
            var payload: [UInt8] = []
            payload.appendLE(UInt16(1))
            payload.appendLE(UInt16(reason.count))
            payload += reason
            guard case .invalidField(.error, "reason", _) = decodeError(rawFrame(type: 5, payload)) else {
                Issue.record("reason \(reason) accepted")
                continue
            }
        }
        // ACK: unknown engine, unparsable position, bad flag.
        func ackPayload(flag: UInt8, engine: String = "postgresql", position: String = "0/1") -> [UInt8] {
            var payload: [UInt8] = []
            payload.appendLE(UInt64(2))
            payload.appendLE(UInt64(1))
            payload.append(flag)
            payload.append(UInt8(engine.utf8.count)); payload += engine.utf8
            payload.appendLE(UInt32(position.utf8.count)); payload += position.utf8
            return payload
        }
        #expect(
            decodeError(rawFrame(type: 3, ackPayload(flag: 1, engine: "oracle")))
                == .invalidField(.ack, field: "engine", reason: "unknown database engine"))
        guard
            case .invalidField(.ack, "position", _) = decodeError(
                rawFrame(type: 3, ackPayload(flag: 1, position: "zz")))
        else {
            Issue.record("bad position accepted")
            return
        }
        guard case .invalidField(.ack, "position flag", _) = decodeError(rawFrame(type: 3, ackPayload(flag: 2))) else {
            Issue.record("bad flag accepted")
            return
        }
        // BATCH with sequence 0, or with no frame bytes.
        var zero: [UInt8] = []
        zero.appendLE(UInt64(0))
        #expect(
            decodeError(rawFrame(type: 2, zero + [1]))
                == .invalidField(.batch, field: "sequence", reason: "batch sequences start at 1"))
        var one: [UInt8] = []
        one.appendLE(UInt64(1))
        #expect(decodeError(rawFrame(type: 2, one)) == .invalidField(.batch, field: "frame", reason: "empty"))
    }

    @Test("a declared inner length larger than the frame is refused without allocating it")
    func innerLengthLies() {
        var payload: [UInt8] = []
        payload.appendLE(UInt64(2))
        payload.appendLE(UInt64(1))
        payload.append(1)
        payload.append(10); payload += "postgresql".utf8
        payload.appendLE(UInt32.max)  // position text "length"
        #expect(decodeError(rawFrame(type: 3, payload)) == .truncated(.ack, field: "position"))
    }

    @Test("a HELLO from a future version is refused as unsupported, whatever follows")
    func futureVersion() {
        let future = LinkProtocol.currentVersion + 1
        #expect(decodeError(rawFrame(type: 1, helloPayload(version: future))) == .unsupportedVersion(future))
        var payload: [UInt8] = []
        payload.appendLE(UInt16(0xFFFF))
        #expect(decodeError(rawFrame(type: 1, payload + [1, 2, 3])) == .unsupportedVersion(0xFFFF))
        #expect(LinkFrameError.unsupportedVersion(2).errorCode == .versionMismatch)
    }

    @Test("STATUS carries its report as it is; one larger than the limit is refused both ways")
    func statusFrames() throws {
        let report = LinkStatusReport(bytes: Array(repeating: 0x41, count: LinkStatusReport.maximumBytes))
        var out: [UInt8] = []
        try LinkFrameEncoder().encode(.status(report), into: &out)
        var decoder = LinkFrameDecoder()
        #expect(try decoder.decode(out) == [.status(report)])
        var empty = LinkFrameDecoder()
        #expect(try empty.decode(rawFrame(type: 6, [])) == [.status(LinkStatusReport(bytes: []))])
        let oversized = [UInt8](repeating: 0x42, count: LinkStatusReport.maximumBytes + 1)
        #expect(throws: LinkFrameError.self) {
            var scratch: [UInt8] = []
            try LinkFrameEncoder().encode(.status(LinkStatusReport(bytes: oversized)), into: &scratch)
        }
        #expect(
            decodeError(rawFrame(type: 6, oversized))
                == .invalidField(.status, field: "report", reason: "\(oversized.count) bytes, more than 65536"))
    }

    @Test("REQUEST and RESPONSE carry an id and a body as they are; a body over the limit or a short id is refused")
    func callFrames() throws {
        let request = LinkCall(id: .max, body: Array(#"{"verify":1}"#.utf8))
        let response = LinkCall(id: 7, body: [])
        var out: [UInt8] = []
        try LinkFrameEncoder().encode(.request(request), into: &out)
        try LinkFrameEncoder().encode(.response(response), into: &out)
        var decoder = LinkFrameDecoder()
        #expect(try decoder.decode(out) == [.request(request), .response(response)])
        #expect(decodeError(rawFrame(type: 7, [1, 2, 3])) == .truncated(.request, field: "id"))
        let oversized = LinkCall(id: 1, body: [UInt8](repeating: 0x43, count: LinkCall.maximumBytes + 1))
        #expect(throws: LinkFrameError.self) {
            var scratch: [UInt8] = []
            try LinkFrameEncoder().encode(.response(oversized), into: &scratch)
        }
    }

    @Test("random garbage never crashes, hangs or decodes unboundedly")
    func randomGarbage() {
        var rng = SplitMix64(seed: 0x11AC_B0DE)
        var refused = 0
        var decodedMessages = 0
        for i in 0..<20_000 {
            var decoder = LinkFrameDecoder(maximumFrameLength: 1 << 16)
            var bytes = rng.bytes(Int.random(in: 0...300, using: &rng))
            // Half look like a plausible frame start: small length, known type.
            if i % 2 == 0, bytes.count >= 5 {
                let length = UInt32(max(0, bytes.count - 4 - Int.random(in: 0...2, using: &rng)))
                bytes.replaceSubrange(0..<4, with: withUnsafeBytes(of: length.littleEndian, Array.init))
                bytes[4] = UInt8.random(in: 1...5, using: &rng)
            }
            do {
                // Feed in random chunks.
                var index = 0
                while index < bytes.count {
                    let end = min(bytes.count, index + Int.random(in: 1...64, using: &rng))
                    decodedMessages += try decoder.decode(bytes[index..<end]).count
                    index = end
                }
                #expect(decoder.bufferedByteCount <= bytes.count)
                // What stays buffered is less than one whole frame: a complete frame that the
                // decoder kept instead of decoding or refusing would show here.
                let buffered = Array(bytes.suffix(decoder.bufferedByteCount))
                if buffered.count >= 4 {
                    let declared = buffered[0..<4].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
                    #expect(
                        declared > 0 && declared <= 1 << 16, "round \(i): a refusable length \(declared) was buffered")
                    #expect(
                        buffered.count < 4 + declared, "round \(i): a whole frame of \(declared) bytes stayed buffered")
                }
            } catch {
                refused += 1
            }
        }
        #expect(refused > 10_000)
        // Garbage occasionally forms a valid BATCH or HEARTBEAT; that is fine,
        // the session then judges it.
        #expect(decodedMessages < 5_000)
    }

    @Test("mutations of valid frames are refused or decode to a message that re-encodes identically")
    func mutations() throws {
        var rng = SplitMix64(seed: 0xFEED_5EED)
        let encoder = LinkFrameEncoder()
        let frames = try sampleMessages.map { try encoder.encode($0) }
        for _ in 0..<20_000 {
            var bytes = frames[Int.random(in: 0..<frames.count, using: &rng)]
            let position = Int.random(in: 4..<bytes.count, using: &rng)  // keep the length prefix
            bytes[position] ^= UInt8.random(in: 1...255, using: &rng)
            var decoder = LinkFrameDecoder()
            guard let messages = try? decoder.decode(bytes) else { continue }
            // The length prefix was kept: one whole frame, so exactly one message, nothing left.
            #expect(messages.count == 1, "mutated \(bytes) decoded to \(messages)")
            #expect(decoder.bufferedByteCount == 0)
            for message in messages {
                // Accepted: it must be a self-consistent message.
                var again = LinkFrameDecoder()
                #expect(try again.decode(try encoder.encode(message)) == [message])
                // ... that re-encodes to exactly the bytes it was decoded from: no second
                // encoding of one message is accepted. Except an ACK's position text, which is
                // parsed as a position and written back in its normal form (hex case, GTID
                // domains in order, merged intervals): there everything before the text must
                // be identical.
                let reencoded = try encoder.encode(message)
                if case .ack(let ack) = message, ack.appliedPosition != nil {
                    let fixedEnd = 23 + Int(bytes[22])  // type, durable, applied, flag, engine
                    #expect(
                        reencoded.count > fixedEnd && Array(reencoded[4..<fixedEnd]) == Array(bytes[4..<fixedEnd]),
                        "\(message) was decoded from a non-canonical \(bytes)")
                } else {
                    #expect(reencoded == bytes, "\(message) was decoded from a non-canonical \(bytes)")
                }
            }
        }
    }
}
