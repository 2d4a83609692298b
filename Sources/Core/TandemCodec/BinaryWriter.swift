/// Appends little-endian integers, LEB128 varints and length-prefixed bytes.
///
/// Varints keep the typical row small (most lengths, counts and integer values fit
/// in one or two bytes) before zstd sees it, which helps both speed and ratio.
///
/// The bytes live in one manually managed allocation rather than an `Array`: every
/// write is a capacity check and a store, with none of the uniqueness checks and
/// per-element bookkeeping of `Array.append`, which dominated encoding. The type is
/// non-copyable so that the allocation has exactly one owner; the encoder keeps one
/// between batches so that its capacity is reused.
struct BinaryWriter: ~Copyable {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count: Int
    private(set) var capacity: Int
    /// The first value the decoder would refuse, noted while writing rather than
    /// thrown, so that the per-value path stays free of error handling. The encoder
    /// checks it once per batch: a frame the receiver cannot decode must never be
    /// produced, because it would stop the stream at that batch for good.
    var invalidValue: String?

    init(capacity: Int = 4096) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
        count = 0
    }

    deinit { base.deallocate() }

    /// The bytes written so far. Valid until the next write.
    var written: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Forgets the contents, keeping the allocation.
    mutating func removeAll() {
        count = 0
        invalidValue = nil
    }

    /// Makes room for `extra` more bytes.
    @inline(__always) mutating func reserve(_ extra: Int) {
        if _slowPath(capacity &- count < extra) { grow(extra) }
    }

    @inline(never) private mutating func grow(_ extra: Int) {
        let needed = count + extra
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// Moves the bytes from `offset` to the end up by `distance`, growing as
    /// needed; the `distance` bytes left behind keep their old contents.
    mutating func shift(from offset: Int, by distance: Int) {
        reserve(distance)
        UnsafeMutableRawPointer(base + offset + distance).copyMemory(from: base + offset, byteCount: count - offset)
        count += distance
    }

    /// Sets the write position; `offset` must be within the capacity. Bytes below
    /// it that were never written must be written before they are read.
    mutating func moveEnd(to offset: Int) {
        precondition(offset >= 0 && offset <= capacity)
        count = offset
    }

    @inline(__always) mutating func u8(_ value: UInt8) {
        reserve(1)
        put8(value)
    }

    @inline(__always) mutating func u64(_ value: UInt64) {
        reserve(8)
        put64(value)
    }

    @inline(__always) mutating func varint(_ value: UInt64) {
        reserve(10)
        putVarint(value)
    }

    @inline(__always) mutating func varint(_ value: Int) { varint(UInt64(value)) }

    /// Signed values zig-zag encoded so that small negative numbers stay small.
    @inline(__always) mutating func signed(_ value: Int64) {
        varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    // The `put` forms write without checking the capacity: the caller has
    // reserved room for everything it writes (`value(_:)` reserves once per value).

    @inline(__always) mutating func put8(_ value: UInt8) {
        base[count] = value
        count &+= 1
    }

    @inline(__always) mutating func put32(_ value: UInt32) {
        UnsafeMutableRawPointer(base + count).storeBytes(of: value.littleEndian, as: UInt32.self)
        count &+= 4
    }

    @inline(__always) mutating func put64(_ value: UInt64) {
        UnsafeMutableRawPointer(base + count).storeBytes(of: value.littleEndian, as: UInt64.self)
        count &+= 8
    }

    /// At most ten bytes.
    @inline(__always) mutating func putVarint(_ value: UInt64) {
        if value < 0x80 {
            base[count] = UInt8(truncatingIfNeeded: value)
            count &+= 1
            return
        }
        var v = value
        var p = base + count
        while v >= 0x80 {
            p.pointee = UInt8(truncatingIfNeeded: v) | 0x80
            p += 1
            v >>= 7
        }
        p.pointee = UInt8(truncatingIfNeeded: v)
        count = p - base + 1
    }

    @inline(__always) mutating func putSigned(_ value: Int64) {
        putVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    @inline(__always) mutating func append(_ raw: UnsafeRawBufferPointer) {
        guard let source = raw.baseAddress, raw.count > 0 else { return }
        reserve(raw.count)
        UnsafeMutableRawPointer(base + count).copyMemory(from: source, byteCount: raw.count)
        count &+= raw.count
    }

    @inline(__always) mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        append(UnsafeRawBufferPointer(bytes))
    }

    /// Length-prefixed bytes.
    @inline(__always) mutating func lengthPrefixed(_ bytes: UnsafeBufferPointer<UInt8>) {
        reserve(10 &+ bytes.count)
        putVarint(UInt64(bytes.count))
        if let source = bytes.baseAddress, bytes.count > 0 {
            (base + count).update(from: source, count: bytes.count)
            count &+= bytes.count
        }
    }

    @inline(__always) mutating func string(_ value: String) {
        // Native strings hand out their UTF-8 in place: no copy, no retain. Only a
        // foreign (bridged) string takes the slow path.
        let done: Void? = value.utf8.withContiguousStorageIfAvailable { lengthPrefixed($0) }
        if done == nil { foreignString(value) }
    }

    @inline(never) private mutating func foreignString(_ value: String) {
        var value = value
        value.withUTF8 { lengthPrefixed($0) }
    }

    @inline(__always) mutating func blob(_ value: [UInt8]) {
        value.withUnsafeBufferPointer { lengthPrefixed($0) }
    }

    mutating func optionalString(_ value: String?) {
        if let value {
            u8(1)
            string(value)
        } else {
            u8(0)
        }
    }
}
