/// Parses one `pgoutput` protocol-version-2 message (the payload of an XLogData
/// frame, or one `data` row of `pg_logical_slot_*_binary_changes`).
///
/// Pure and total: every length and count is checked against the bytes actually
/// present before it is used, so truncated or hostile input throws a
/// `PgOutputParseError` instead of trapping or allocating what a length field claims.
///
/// Streaming (`streaming 'on'`) changes the wire format: between Stream Start and
/// Stream Stop, change messages carry the top-level xid right after the type byte.
/// The bytes alone cannot tell, so the caller says whether a stream is open
/// (`PgOutputDecoder` tracks this from the S/E messages it has seen).
public struct PgOutputParser: Sendable {
    public init() {}

    public func parse(_ bytes: [UInt8], inStream: Bool = false) throws(PgOutputParseError) -> PgOutputMessage {
        try bytes.withUnsafeBufferPointer { (buffer) throws(PgOutputParseError) -> PgOutputMessage in
            var reader = Reader(bytes: buffer)
            guard let type = buffer.first else { throw .empty }
            reader.offset = 1
            let message = try Self.body(type: type, reader: &reader, inStream: inStream)
            guard reader.remaining == 0 else { throw .trailingBytes(messageType: type, count: reader.remaining) }
            return message
        }
    }

    private static func body(type: UInt8, reader r: inout Reader, inStream: Bool) throws(PgOutputParseError)
        -> PgOutputMessage
    {
        func xid() throws(PgOutputParseError) -> UInt32? { inStream ? try r.u32("xid") : nil }
        switch type {
        case UInt8(ascii: "B"):
            return .begin(finalLSN: try r.u64("final LSN"), commitTime: try r.i64("commit time"), xid: try r.u32("xid"))
        case UInt8(ascii: "C"):
            return .commit(
                flags: try r.u8("flags"), commitLSN: try r.u64("commit LSN"),
                endLSN: try r.u64("end LSN"), commitTime: try r.i64("commit time"))
        case UInt8(ascii: "O"):
            return .origin(commitLSN: try r.u64("origin LSN"), name: try r.string("origin name"))
        case UInt8(ascii: "R"):
            let x = try xid()
            let relid = try r.u32("relid")
            let namespace = try r.string("namespace")
            let name = try r.string("relation name")
            let identity = try r.u8("replica identity")
            let count = try r.count16("column count")
            var columns: [PgOutputRelationMessage.Column] = []
            // Each column takes at least 1 + 1 + 4 + 4 bytes: bound the reservation by what is present.
            columns.reserveCapacity(min(count, r.remaining / 10))
            for _ in 0..<count {
                columns.append(
                    .init(
                        flags: try r.u8("column flags"), name: try r.string("column name"),
                        typeOID: try r.u32("column type"), typeModifier: try r.i32("column typmod")))
            }
            return .relation(
                .init(
                    xid: x, relid: relid, namespace: namespace, name: name,
                    replicaIdentity: identity, columns: columns))
        case UInt8(ascii: "Y"):
            return .type(
                xid: try xid(), oid: try r.u32("type OID"), namespace: try r.string("type namespace"),
                name: try r.string("type name"))
        case UInt8(ascii: "I"):
            let x = try xid()
            let relid = try r.u32("relid")
            try r.expect(UInt8(ascii: "N"), "new tuple marker")
            return .insert(xid: x, relid: relid, new: try r.tuple())
        case UInt8(ascii: "U"):
            let x = try xid()
            let relid = try r.u32("relid")
            var old: PgOutputOldTuple?
            let marker = try r.u8("tuple marker")
            switch marker {
            case UInt8(ascii: "K"): old = .key(try r.tuple())
            case UInt8(ascii: "O"): old = .oldRow(try r.tuple())
            case UInt8(ascii: "N"): break
            default: throw .unexpectedByte(field: "tuple marker", offset: r.offset - 1, byte: marker)
            }
            if old != nil { try r.expect(UInt8(ascii: "N"), "new tuple marker") }
            return .update(xid: x, relid: relid, old: old, new: try r.tuple())
        case UInt8(ascii: "D"):
            let x = try xid()
            let relid = try r.u32("relid")
            let marker = try r.u8("tuple marker")
            switch marker {
            case UInt8(ascii: "K"): return .delete(xid: x, relid: relid, old: .key(try r.tuple()))
            case UInt8(ascii: "O"): return .delete(xid: x, relid: relid, old: .oldRow(try r.tuple()))
            default: throw .unexpectedByte(field: "tuple marker", offset: r.offset - 1, byte: marker)
            }
        case UInt8(ascii: "T"):
            let x = try xid()
            let count = try r.count32("relation count")
            let options = try r.u8("truncate options")
            guard count <= r.remaining / 4 else {
                throw .truncated(field: "relids", offset: r.offset, needed: count * 4)
            }
            var relids: [UInt32] = []
            relids.reserveCapacity(count)
            for _ in 0..<count { relids.append(try r.u32("relid")) }
            return .truncate(xid: x, options: options, relids: relids)
        case UInt8(ascii: "M"):
            let x = try xid()
            let flags = try r.u8("message flags")
            let lsn = try r.u64("message LSN")
            let prefix = try r.string("message prefix")
            let length = try r.length("message length")
            return .message(
                xid: x, transactional: flags & 1 != 0, lsn: lsn, prefix: prefix,
                content: try r.take(length, "message content"))
        case UInt8(ascii: "S"):
            let x = try r.u32("xid")
            return .streamStart(xid: x, firstSegment: try r.u8("first segment") == 1)
        case UInt8(ascii: "E"):
            return .streamStop
        case UInt8(ascii: "c"):
            return .streamCommit(
                xid: try r.u32("xid"), flags: try r.u8("flags"), commitLSN: try r.u64("commit LSN"),
                endLSN: try r.u64("end LSN"), commitTime: try r.i64("commit time"))
        case UInt8(ascii: "A"):
            return .streamAbort(xid: try r.u32("xid"), subxid: try r.u32("subtransaction xid"))
        default:
            throw .unknownMessageType(type)
        }
    }
}

/// Big-endian cursor over one message; every read checks the bytes left first.
private struct Reader {
    let bytes: UnsafeBufferPointer<UInt8>
    var offset = 0

    var remaining: Int { bytes.count - offset }

    mutating func need(_ n: Int, _ field: String) throws(PgOutputParseError) {
        guard n <= remaining else { throw .truncated(field: field, offset: offset, needed: n) }
    }

    mutating func u8(_ field: String) throws(PgOutputParseError) -> UInt8 {
        try need(1, field)
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u32(_ field: String) throws(PgOutputParseError) -> UInt32 {
        try need(4, field)
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[offset + i]) }
        offset += 4
        return v
    }

    mutating func u64(_ field: String) throws(PgOutputParseError) -> UInt64 {
        try need(8, field)
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[offset + i]) }
        offset += 8
        return v
    }

    mutating func i32(_ field: String) throws(PgOutputParseError) -> Int32 { Int32(bitPattern: try u32(field)) }
    mutating func i64(_ field: String) throws(PgOutputParseError) -> Int64 { Int64(bitPattern: try u64(field)) }

    /// A non-negative Int32 length.
    mutating func length(_ field: String) throws(PgOutputParseError) -> Int {
        let at = offset
        let v = try i32(field)
        guard v >= 0 else { throw .negativeLength(field: field, offset: at, length: v) }
        return Int(v)
    }

    mutating func count16(_ field: String) throws(PgOutputParseError) -> Int {
        let at = offset
        try need(2, field)
        let v = Int16(bitPattern: UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]))
        offset += 2
        guard v >= 0 else { throw .negativeCount(field: field, offset: at, count: Int(v)) }
        return Int(v)
    }

    mutating func count32(_ field: String) throws(PgOutputParseError) -> Int {
        let at = offset
        let v = try i32(field)
        guard v >= 0 else { throw .negativeCount(field: field, offset: at, count: Int(v)) }
        return Int(v)
    }

    mutating func take(_ n: Int, _ field: String) throws(PgOutputParseError) -> [UInt8] {
        try need(n, field)
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    mutating func expect(_ byte: UInt8, _ field: String) throws(PgOutputParseError) {
        let at = offset
        let got = try u8(field)
        guard got == byte else { throw .unexpectedByte(field: field, offset: at, byte: got) }
    }

    /// A NUL-terminated UTF-8 string (names are in the server encoding; Tandem requires UTF8).
    mutating func string(_ field: String) throws(PgOutputParseError) -> String {
        let start = offset
        guard let end = bytes[start...].firstIndex(of: 0) else {
            throw .unterminatedString(field: field, offset: start)
        }
        guard let text = String(validating: bytes[start..<end], as: UTF8.self) else {
            throw .invalidUTF8(field: field, offset: start)
        }
        offset = end + 1
        return text
    }

    mutating func tuple() throws(PgOutputParseError) -> PgOutputTuple {
        let count = try count16("tuple column count")
        var data: PgOutputTuple = []
        // Every column takes at least its kind byte.
        guard count <= remaining else { throw .truncated(field: "tuple columns", offset: offset, needed: count) }
        data.reserveCapacity(count)
        for _ in 0..<count {
            let at = offset
            let kind = try u8("tuple column kind")
            switch kind {
            case UInt8(ascii: "n"): data.append(.null)
            case UInt8(ascii: "u"): data.append(.unchangedToast)
            case UInt8(ascii: "t"): data.append(.text(try take(try length("column length"), "column value")))
            case UInt8(ascii: "b"): data.append(.binary(try take(try length("column length"), "column value")))
            default: throw .unknownTupleKind(offset: at, kind: kind)
            }
        }
        return data
    }
}
