import CZlib

/// Why a compressed payload (MariaDB's `log_bin_compress`) was refused.
public enum InflateError: Error, Hashable, Sendable {
    /// The compressed bytes ended inside the stream.
    case truncated
    /// zlib refused the stream (bad header, bad code, checksum mismatch); its message.
    case corrupt(String)
    /// The stream produced more than the event declared.
    case outputTooLarge(limit: Int)
    /// The stream produced fewer bytes than the event declared.
    case lengthMismatch(declared: Int, actual: Int)
    case trailingBytes(Int)
}

/// zlib (RFC 1950) decompression of MariaDB's compressed binlog events, through the
/// system zlib (already a dependency of the MariaDB client library).
///
/// The output buffer is the length the event declares plus one byte: a hostile payload
/// cannot make it allocate more than that (the caller bounds the declared size), one that
/// would produce more is caught by the spare byte, and a short result is refused too.
enum Inflate {
    static func zlib(_ input: UnsafeBufferPointer<UInt8>, declaredLength: Int) throws(InflateError) -> [UInt8] {
        guard input.count >= 2 else { throw .truncated }
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corrupt("zlib could not be initialised")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: declaredLength + 1)
        let status: Int32 = output.withUnsafeMutableBufferPointer { out in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.avail_in = UInt32(input.count)
            stream.next_out = out.baseAddress
            stream.avail_out = UInt32(out.count)
            return inflate(&stream, Z_FINISH)
        }
        let produced = Int(stream.total_out)
        switch status {
        case Z_STREAM_END:
            if produced > declaredLength { throw .outputTooLarge(limit: declaredLength) }
            if produced != declaredLength { throw .lengthMismatch(declared: declaredLength, actual: produced) }
            if stream.avail_in != 0 { throw .trailingBytes(Int(stream.avail_in)) }
            output.removeLast()
            return output
        case Z_BUF_ERROR where stream.avail_out == 0:
            throw .outputTooLarge(limit: declaredLength)
        case Z_BUF_ERROR, Z_OK:
            throw .truncated
        default:
            let message = stream.msg.map { String(cString: $0) } ?? "error \(status)"
            throw .corrupt(message)
        }
    }
}
