import CTandemShims
import SeededRandom
import TandemCodec
import TandemCore
import Testing
import ZstdSupport

// MARK: - Deterministic randomness

extension SplitMix64 {
    /// `count` random bytes, eight per draw (byte-at-a-time generic code is slow in debug builds).
    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            var word = next()
            for _ in 0..<min(8, count - i) { out[i] = UInt8(truncatingIfNeeded: word); word >>= 8; i += 1 }
        }
        return out
    }
}

// MARK: - Codec shortcuts

func makeEncoder(
    _ compression: BatchCompression, level: Int32 = BatchEncoder.defaultCompressionLevel,
    limits: BatchLimits = .default
) -> BatchEncoder {
    do { return try BatchEncoder(compression: compression, level: level, limits: limits) } catch {
        fatalError("cannot create encoder: \(error)")
    }
}

func makeDecoder(limits: BatchLimits = .default) -> BatchDecoder {
    do { return try BatchDecoder(limits: limits) } catch { fatalError("cannot create decoder: \(error)") }
}

/// The error `decode` throws, or nil if it accepted the frame.
func decodeFailure(_ frame: [UInt8], _ decoder: BatchDecoder) -> BatchCodecError? {
    do { _ = try decoder.decode(frame); return nil } catch { return error }
}

func headerFailure(_ frame: [UInt8], _ decoder: BatchDecoder) -> BatchCodecError? {
    do { _ = try decoder.decodeHeader(frame); return nil } catch { return error }
}

/// CRC32C through the production shim (the test target depends on CTandemShims).
func crc32c(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBytes { tandem_crc32c(0, $0.baseAddress, $0.count) }
}

/// Bit-at-a-time CRC32C (reflected polynomial 0x82F63B78): slow, obviously
/// correct, and independent of the C code it is used to check.
func crc32cReference(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
    var c = ~crc
    for byte in bytes {
        c ^= UInt32(byte)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
    }
    return ~c
}

func zstdCompress(_ body: [UInt8], level: Int32 = 1) -> [UInt8] {
    var out: [UInt8] = []
    let compressor: ZstdCompressor
    do { compressor = try ZstdCompressor(level: level) } catch { fatalError("zstd: \(error)") }
    let result: Result<Void, ZstdError> = body.withUnsafeBytes { raw in
        do throws(ZstdError) { try compressor.compress(raw, appendingTo: &out); return .success(()) } catch {
            return .failure(error)
        }
    }
    if case .failure(let error) = result { fatalError("zstd: \(error)") }
    return out
}

// MARK: - Expected refusals

/// What a refusal must look like. Exact where the error is deterministic; by case
/// and field where the reason text is incidental.
enum Refusal: CustomStringConvertible, Sendable {
    case exactly(BatchCodecError)
    case lengthOutOfBounds(field: String)
    case truncated(field: String?)
    case malformed(field: String, reasonContains: String? = nil)
    case inconsistent(String? = nil)
    case decompressionFailed(String? = nil)
    case checksumMismatch

    func matches(_ error: BatchCodecError) -> Bool {
        switch (self, error) {
        case let (.exactly(expected), actual): return expected == actual
        case let (.lengthOutOfBounds(field), .lengthOutOfBounds(actual, value, limit)):
            return field == actual && value > limit
        case let (.truncated(field), .truncated(actual)): return field == nil || field == actual
        case let (.malformed(field, reason), .malformed(actualField, actualReason)):
            return field == actualField && (reason.map { actualReason.contains($0) } ?? true)
        case let (.inconsistent(part), .inconsistent(reason)): return part.map { reason.contains($0) } ?? true
        case let (.decompressionFailed(part), .decompressionFailed(reason)):
            return part.map { reason.contains($0) } ?? true
        case let (.checksumMismatch, .checksumMismatch(stored, computed)): return stored != computed
        default: return false
        }
    }

    var description: String {
        switch self {
        case .exactly(let e): "exactly .\(e)"
        case .lengthOutOfBounds(let f): ".lengthOutOfBounds(\(f))"
        case .truncated(let f): ".truncated(\(f ?? "any field"))"
        case let .malformed(f, r): ".malformed(\(f)\(r.map { ", …\($0)…" } ?? ""))"
        case .inconsistent(let r): ".inconsistent(\(r ?? "any"))"
        case .decompressionFailed(let r): ".decompressionFailed(\(r ?? "any"))"
        case .checksumMismatch: ".checksumMismatch"
        }
    }
}

/// Decodes `frame` and checks the refusal. `headerLevel`: the fault is in the
/// prefix or header, so `decodeHeader` must refuse it the same way; otherwise the
/// fault is in the body, which `decodeHeader` does not open, so it must succeed.
func expectRefused(
    _ frame: [UInt8], _ refusal: Refusal, headerLevel: Bool, decoder: BatchDecoder = makeDecoder(),
    _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    if let error = decodeFailure(frame, decoder) {
        #expect(
            refusal.matches(error), "decode threw \(error) [\(String(reflecting: error))], expected \(refusal)",
            sourceLocation: sourceLocation)
    } else {
        Issue.record(
            "decode accepted a hostile frame (expected \(refusal)) \(comment.map { "— \($0)" } ?? "")",
            sourceLocation: sourceLocation)
    }
    let headerError = headerFailure(frame, decoder)
    if headerLevel {
        if let headerError {
            #expect(
                refusal.matches(headerError), "decodeHeader threw \(headerError), expected \(refusal)",
                sourceLocation: sourceLocation)
        } else {
            Issue.record(
                "decodeHeader accepted a frame with a bad prefix/header (expected \(refusal))",
                sourceLocation: sourceLocation)
        }
    } else {
        #expect(
            headerError == nil, "decodeHeader must not open the body, but threw \(String(describing: headerError))",
            sourceLocation: sourceLocation)
    }
}

// MARK: - Independent wire writer

/// Writes the documented wire primitives: little-endian fixed-width integers and
/// LEB128 varints (zig-zag for signed). Written from the format description, not
/// from the codec, so that it can check the codec.
struct Wire {
    var bytes: [UInt8] = []

    init() {}
    init(_ build: (inout Wire) -> Void) { build(&self) }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { for i in 0..<2 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
    mutating func varint(_ v: UInt64) {
        var v = v
        repeat {
            let low = UInt8(v & 0x7F)
            v >>= 7
            bytes.append(v == 0 ? low : low | 0x80)
        } while v != 0
    }
    mutating func varint(_ v: Int) { varint(UInt64(v)) }
    mutating func signed(_ v: Int64) { varint(v >= 0 ? UInt64(v) << 1 : (UInt64(bitPattern: ~v) << 1) | 1) }
    mutating func string(_ s: String) { rawString(Array(s.utf8)) }
    mutating func rawString(_ b: [UInt8]) { varint(b.count); bytes += b }
    mutating func optionalString(_ s: String?) { if let s { u8(1); string(s) } else { u8(0) } }
    mutating func append(_ b: [UInt8]) { bytes += b }

    // Model pieces, written independently of ModelCoding.swift / ValueCoding.swift.

    mutating func position(_ p: Position) {
        switch p {
        case .postgresql(let lsn): u8(1); u64(lsn.rawValue)
        case .mariadb(let list):
            u8(2); varint(list.gtids.count)
            for g in list.gtids { varint(UInt64(g.domain)); varint(UInt64(g.server)); varint(g.sequence) }
        case .mysql(let m):
            u8(3); string(m.gtidSet.description); optionalString(m.binlogFile)
            if let o = m.binlogOffset { u8(1); varint(o) } else { u8(0) }
        }
    }

    mutating func logicalType(_ t: LogicalType) {
        switch t {
        case .boolean: u8(0)
        case let .integer(bits, isSigned): u8(1); varint(bits); u8(isSigned ? 1 : 0)
        case let .decimal(p, s): u8(2); signed(Int64(p ?? -1)); signed(Int64(s ?? -1))
        case .float32: u8(3)
        case .float64: u8(4)
        case .text: u8(5)
        case .binary: u8(6)
        case .date: u8(7)
        case .time: u8(8)
        case .timeWithZone: u8(9)
        case .timestamp: u8(10)
        case .timestampWithZone: u8(11)
        case .interval: u8(12)
        case .json: u8(13)
        case .uuid: u8(14)
        case .bits: u8(15)
        case .enumeration: u8(16)
        case .set: u8(17)
        case .year: u8(18)
        case .array(let e): u8(19); logicalType(e)
        case .other: u8(20)
        }
    }

    mutating func relation(_ r: Relation) {
        string(r.name.schema); string(r.name.name); varint(r.columns.count)
        for c in r.columns {
            string(c.name); logicalType(c.type); string(c.nativeType); varint(UInt64(c.nativeTypeID))
            u8((c.isKey ? 1 : 0) | (c.isNullable ? 2 : 0))
        }
    }

    mutating func date(_ d: CivilDate) { signed(Int64(d.year)); u8(d.month); u8(d.day) }

    mutating func value(_ v: Value) {
        switch v {
        case .null: u8(0)
        case .unchanged: u8(1)
        case .bool(let b): u8(b ? 3 : 2)
        case .int(let i): u8(4); signed(i)
        case .uint(let u): u8(5); varint(u)
        case .decimal(let d): u8(6); string(d.text)
        case .float32(let f): u8(7); u32(f.bitPattern)
        case .float64(let d): u8(8); u64(d.bitPattern)
        case .text(let s): u8(9); string(s)
        case .bytes(let b): u8(10); rawString(b)
        case .date(let d): u8(11); date(d)
        case .time(let t): u8(12); signed(t.microseconds)
        case let .timeWithZone(t, o): u8(13); signed(t.microseconds); signed(Int64(o))
        case .timestamp(let ts): u8(14); date(ts.date); signed(ts.time.microseconds)
        case .timestampWithZone(let ts): u8(15); signed(ts.microsecondsSinceEpoch)
        case .interval(let i): u8(16); signed(Int64(i.months)); signed(Int64(i.days)); signed(i.microseconds)
        case .json(let s): u8(17); string(s)
        case .uuid(let u): u8(18); u64(u.high); u64(u.low)
        case .bits(let b): u8(19); varint(b.count); append(b.bytes)
        case .array(let e): u8(20); varint(e.count); for x in e { value(x) }
        case .native(let s): u8(21); string(s)
        }
    }

    mutating func image(_ values: [Value]?) {
        guard let values else { u8(0); return }
        u8(1); for v in values { value(v) }
    }

    mutating func header(_ h: BatchHeader) {
        string(h.stream.rawValue); varint(h.sequence); position(h.firstPosition); position(h.lastPosition)
        signed(h.firstCommitTime.microsecondsSinceEpoch); signed(h.lastCommitTime.microsecondsSinceEpoch)
        varint(UInt64(h.transactionCount)); varint(h.rowCount); varint(UInt64(h.uncompressedSize))
    }

    /// The body as documented: the relation table (first appearance order), then
    /// the transactions, each change referring to its relation by index.
    mutating func body(_ batch: Batch) {
        var relations: [Relation] = []
        var rest = Wire()
        for t in batch.transactions {
            rest.position(t.commitPosition); rest.signed(t.commitTime.microsecondsSinceEpoch)
            rest.optionalString(t.origin); rest.varint(UInt64(t.chunk.index)); rest.u8(t.chunk.isFinal ? 1 : 0)
            rest.varint(t.changes.count)
            for c in t.changes {
                let index =
                    relations.firstIndex(of: c.relation)
                    ?? {
                        relations.append(c.relation); return relations.count - 1
                    }()
                switch c.kind {
                case .insert: rest.u8(0)
                case .copy: rest.u8(4)
                case .update: rest.u8(c.duringCopy ? 5 : 1)
                case .delete: rest.u8(c.duringCopy ? 6 : 2)
                case let .truncate(cascade, restart): rest.u8(3); rest.u8((cascade ? 1 : 0) | (restart ? 2 : 0))
                }
                rest.varint(index); rest.image(c.old); rest.image(c.new)
            }
        }
        varint(relations.count)
        for r in relations { relation(r) }
        append(rest.bytes)
    }
}

/// Assembles a frame: 16-byte prefix, header, stored body, CRC32C trailer.
/// Every field can be overridden to forge a hostile frame; the CRC is valid
/// unless `crc` is given, so forged frames reach the inner validation.
func assembleFrame(
    header: [UInt8], body: [UInt8], compression: UInt8 = 0, version: UInt16 = 1, flags: UInt8 = 0,
    magic: [UInt8] = Array("TNDB".utf8), headerLength: UInt32? = nil, bodyLength: UInt32? = nil,
    crc: UInt32? = nil
) -> [UInt8] {
    var w = Wire()
    w.append(magic); w.u16(version); w.u8(compression); w.u8(flags)
    w.u32(headerLength ?? UInt32(header.count)); w.u32(bodyLength ?? UInt32(body.count))
    w.append(header); w.append(body)
    w.u32(crc ?? crc32c(w.bytes))
    return w.bytes
}

/// Recomputes the trailer of a (modified) frame so that it passes the checksum.
func resealed(_ frame: [UInt8]) -> [UInt8] {
    guard frame.count >= 4 else { return frame }
    var f = Array(frame.dropLast(4))
    let crc = crc32c(f)
    for i in 0..<4 { f.append(UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i)))) }
    return f
}

/// Splits a well-formed frame into its parts (no validation beyond bounds).
struct FrameParts {
    var compression: UInt8
    var header: [UInt8]
    var body: [UInt8]

    init(_ frame: [UInt8]) {
        let h = Int(frame[8]) | Int(frame[9]) << 8 | Int(frame[10]) << 16 | Int(frame[11]) << 24
        let b = Int(frame[12]) | Int(frame[13]) << 8 | Int(frame[14]) << 16 | Int(frame[15]) << 24
        compression = frame[6]
        header = Array(frame[16..<(16 + h)])
        body = Array(frame[(16 + h)..<(16 + h + b)])
    }
}

extension Array where Element == UInt8 {
    func le32(at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(self[offset + $1]) << (8 * UInt32($1)) }
    }
}
