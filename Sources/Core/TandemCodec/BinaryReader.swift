/// Reads what `BinaryWriter` wrote, treating every byte as hostile.
///
/// Every read checks the remaining length first and throws `truncated` naming the
/// field; every count is checked against the bytes left before anything is
/// reserved, so a forged count cannot make the decoder allocate unbounded memory.
struct BinaryReader {
    private let buffer: UnsafeRawBufferPointer
    private(set) var offset: Int

    init(_ buffer: UnsafeRawBufferPointer, offset: Int = 0) {
        self.buffer = buffer
        self.offset = offset
    }

    var remaining: Int { buffer.count - offset }
    var isAtEnd: Bool { offset == buffer.count }

    @inline(__always) mutating func u8(_ field: StaticString) throws(BatchCodecError) -> UInt8 {
        guard offset < buffer.count else { throw .truncated(field: "\(field)") }
        defer { offset += 1 }
        return buffer[offset]
    }

    mutating func u16(_ field: StaticString) throws(BatchCodecError) -> UInt16 {
        guard remaining >= 2 else { throw .truncated(field: "\(field)") }
        defer { offset += 2 }
        return UInt16(buffer[offset]) | UInt16(buffer[offset + 1]) << 8
    }

    mutating func u32(_ field: StaticString) throws(BatchCodecError) -> UInt32 {
        guard remaining >= 4 else { throw .truncated(field: "\(field)") }
        defer { offset += 4 }
        return UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    mutating func u64(_ field: StaticString) throws(BatchCodecError) -> UInt64 {
        guard remaining >= 8 else { throw .truncated(field: "\(field)") }
        defer { offset += 8 }
        return UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always) mutating func varint(_ field: StaticString) throws(BatchCodecError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < buffer.count else { throw .truncated(field: "\(field)") }
            let byte = buffer[offset]
            offset += 1
            if shift == 63 && byte > 1 { throw .malformed(field: "\(field)", reason: "varint overflows 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    @inline(__always) mutating func signed(_ field: StaticString) throws(BatchCodecError) -> Int64 {
        let raw = try varint(field)
        return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }

    mutating func signed32(_ field: StaticString) throws(BatchCodecError) -> Int32 {
        let value = try signed(field)
        guard let narrow = Int32(exactly: value) else {
            throw .malformed(field: "\(field)", reason: "\(value) does not fit 32 bits")
        }
        return narrow
    }

    mutating func unsigned32(_ field: StaticString) throws(BatchCodecError) -> UInt32 {
        let value = try varint(field)
        guard let narrow = UInt32(exactly: value) else {
            throw .malformed(field: "\(field)", reason: "\(value) does not fit 32 bits")
        }
        return narrow
    }

    /// A count of items that each take at least `minimumItemSize` bytes: checked
    /// against what is left so that `reserveCapacity(count)` is always safe.
    @inline(__always)
    mutating func count(_ field: StaticString, minimumItemSize: Int = 1) throws(BatchCodecError) -> Int {
        let value = try varint(field)
        guard value <= UInt64(remaining / max(minimumItemSize, 1)) else {
            throw .lengthOutOfBounds(
                field: "\(field)", value: value, limit: UInt64(remaining / max(minimumItemSize, 1)))
        }
        return Int(value)
    }

    @inline(__always)
    mutating func bytes(_ field: StaticString, count: Int) throws(BatchCodecError) -> UnsafeRawBufferPointer {
        guard count >= 0, remaining >= count else { throw .truncated(field: "\(field)") }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + count)])
    }

    mutating func blob(_ field: StaticString) throws(BatchCodecError) -> [UInt8] {
        let length = try count(field)
        return Array(try bytes(field, count: length))
    }

    /// UTF-8 text; invalid UTF-8 is an error, not silently repaired, because a
    /// replaced character in a DR copy is data loss.
    @inline(__always)
    mutating func string(_ field: StaticString) throws(BatchCodecError) -> String {
        let length = try count(field)
        let raw = try bytes(field, count: length)
        guard let text = validatedString(raw) else {
            throw .malformed(field: "\(field)", reason: "not valid UTF-8")
        }
        return text
    }

    mutating func optionalString(_ field: StaticString) throws(BatchCodecError) -> String? {
        switch try u8(field) {
        case 0: return nil
        case 1: return try string(field)
        case let flag: throw .malformed(field: "\(field)", reason: "presence flag \(flag)")
        }
    }
}

/// The string `raw` holds if it is well-formed UTF-8, else nil.
///
/// This is exactly what `String(validating: raw, as: UTF8.self)` returns: that
/// initializer hands contiguous UTF-8 to `String._tryFromUTF8`, which validates
/// (strictly: no overlongs, surrogates or values past U+10FFFF) and copies in one
/// pass. Called directly it skips the initializer's unspecialized generic layer,
/// whose metadata lookups cost more than the validation itself for short
/// strings, and it exists on every platform (the initializer needs macOS 15).
/// `_tryFromUTF8` is public but underscored; should it ever go away, the portable
/// equivalent is `String(decoding:as:)` followed by a byte comparison with the
/// input (a repaired string never equals its input), at about 6% of wide-row
/// decoding time.
@inline(__always)
func validatedString(_ raw: UnsafeRawBufferPointer) -> String? {
    String._tryFromUTF8(raw.assumingMemoryBound(to: UInt8.self))
}

/// `Array.withUnsafeBytes` rethrows untyped errors; this keeps the typed error.
@inline(__always)
func withRawBytes<R, E: Error>(_ array: [UInt8], _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    try array.withUnsafeBufferPointer { (buffer) throws(E) -> R in try body(UnsafeRawBufferPointer(buffer)) }
}
