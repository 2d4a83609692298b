/// A little-endian cursor over one event's bytes. Every read checks the bytes left
/// first, so a length field that points past the end becomes a typed error, never a
/// trap; reads that take a count allocate only after the count was checked against
/// what is actually there.
///
/// Offsets in errors are relative to the start of the event (the reader may be
/// created over a slice that starts later, hence `base`).
struct ByteReader {
    let bytes: UnsafeBufferPointer<UInt8>
    /// Event type code, carried into every error.
    let event: UInt8
    /// Offset of `bytes[0]` from the start of the event, for error messages.
    let base: Int
    var offset = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>, event: UInt8, base: Int = 0) {
        self.bytes = bytes
        self.event = event
        self.base = base
    }

    var remaining: Int { bytes.count - offset }
    var isAtEnd: Bool { offset >= bytes.count }

    func need(_ n: Int, _ field: String) throws(BinlogParseError) {
        guard n >= 0, n <= remaining else {
            throw .truncated(event: event, field: field, offset: base + offset, needed: n)
        }
    }

    mutating func u8(_ field: String) throws(BinlogParseError) -> UInt8 {
        try need(1, field)
        defer { offset += 1 }
        return bytes[offset]
    }

    /// An unsigned little-endian integer of `width` bytes (1...8).
    mutating func uint(_ width: Int, _ field: String) throws(BinlogParseError) -> UInt64 {
        try need(width, field)
        var value: UInt64 = 0
        for i in stride(from: width - 1, through: 0, by: -1) { value = value << 8 | UInt64(bytes[offset + i]) }
        offset += width
        return value
    }

    /// An unsigned big-endian integer of `width` bytes (1...8), as the temporal and
    /// decimal row formats and the compressed-length header store them.
    mutating func uintBE(_ width: Int, _ field: String) throws(BinlogParseError) -> UInt64 {
        try need(width, field)
        var value: UInt64 = 0
        for i in 0..<width { value = value << 8 | UInt64(bytes[offset + i]) }
        offset += width
        return value
    }

    mutating func u16(_ field: String) throws(BinlogParseError) -> UInt16 { UInt16(try uint(2, field)) }
    mutating func u32(_ field: String) throws(BinlogParseError) -> UInt32 { UInt32(try uint(4, field)) }
    mutating func u64(_ field: String) throws(BinlogParseError) -> UInt64 { try uint(8, field) }

    /// The protocol's length-encoded integer (`net_store_length`): < 251 in one byte,
    /// 252 + 2 bytes, 253 + 3 bytes, 254 + 8 bytes. 251 (NULL) and 255 are invalid here.
    mutating func packedInteger(_ field: String) throws(BinlogParseError) -> UInt64 {
        let at = offset
        let first = try u8(field)
        switch first {
        case 0..<251: return UInt64(first)
        case 252: return try uint(2, field)
        case 253: return try uint(3, field)
        case 254: return try uint(8, field)
        default:
            throw .invalidValue(
                event: event, field: field, offset: base + at,
                reason: "byte \(first) does not start a length-encoded integer")
        }
    }

    /// A length-encoded integer used as a count or length of bytes: it must fit what is
    /// left, so nothing is allocated on its word alone.
    mutating func packedCount(_ field: String) throws(BinlogParseError) -> Int {
        let at = offset
        let value = try packedInteger(field)
        guard value <= UInt64(remaining) else {
            throw .truncated(event: event, field: field, offset: base + at, needed: Int(min(value, UInt64(Int.max))))
        }
        return Int(value)
    }

    mutating func take(_ n: Int, _ field: String) throws(BinlogParseError) -> [UInt8] {
        try need(n, field)
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    mutating func skip(_ n: Int, _ field: String) throws(BinlogParseError) {
        try need(n, field)
        offset += n
    }

    mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }

    /// Text that must be UTF-8 (names are stored in the server's utf8 system charset).
    mutating func utf8(_ n: Int, _ field: String) throws(BinlogParseError) -> String {
        let at = offset
        try need(n, field)
        guard let text = String(validating: bytes[offset..<(offset + n)], as: UTF8.self) else {
            throw .invalidUTF8(event: event, field: field, offset: base + at)
        }
        offset += n
        return text
    }

    mutating func expectZero(_ field: String) throws(BinlogParseError) {
        let at = offset
        let byte = try u8(field)
        guard byte == 0 else {
            throw .invalidValue(
                event: event, field: field, offset: base + at, reason: "expected a NUL terminator, got \(byte)")
        }
    }
}
