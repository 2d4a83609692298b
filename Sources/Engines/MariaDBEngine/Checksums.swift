import CZlib

/// The binlog's `binlog_checksum=CRC32` trailer is zlib's CRC-32 (reflected polynomial
/// 0xEDB88320, initial value and final XOR 0xFFFFFFFF); the system zlib computes it.
enum Checksums {
    static func crc32(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var crc: UInt = CZlib.crc32(0, nil, 0)
        var offset = 0
        // zlib takes a 32-bit length; events are far smaller, but stay correct for any size.
        while offset < bytes.count {
            let count = min(bytes.count - offset, Int(UInt32.max))
            crc = CZlib.crc32(crc, bytes.baseAddress! + offset, UInt32(count))
            offset += count
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBufferPointer { crc32($0) } }
}
