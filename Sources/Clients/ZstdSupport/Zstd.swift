import CZstd

/// A zstd failure, with the library's own error name.
public struct ZstdError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var reason: String

    public init(operation: String, reason: String) {
        self.operation = operation
        self.reason = reason
    }

    init(operation: String, code: Int) {
        self.init(operation: operation, reason: String(cString: ZSTD_getErrorName(code)))
    }

    public var description: String { "zstd \(operation) failed: \(reason)" }
}

public enum Zstd {
    /// Version of the linked libzstd, e.g. "1.5.4".
    public static var libraryVersion: String { String(cString: ZSTD_versionString()) }
    public static var maximumLevel: Int32 { ZSTD_maxCLevel() }
    public static var minimumLevel: Int32 { 1 }
}

/// Owns one compression context. Reusing a context across batches avoids
/// re-allocating zstd's working memory for every batch, which matters at hundreds
/// of batches per second. Not thread-safe: one compressor per thread.
public final class ZstdCompressor {
    private let context: OpaquePointer
    public let level: Int32

    public init(level: Int32) throws(ZstdError) {
        guard (Zstd.minimumLevel...Zstd.maximumLevel).contains(level) else {
            throw ZstdError(operation: "init", reason: "level \(level) outside \(Zstd.minimumLevel)...\(Zstd.maximumLevel)")
        }
        guard let context = ZSTD_createCCtx() else {
            throw ZstdError(operation: "init", reason: "out of memory creating a compression context")
        }
        self.context = context
        self.level = level
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Compresses `input` as one frame that records its content size, appending it
    /// to `output`. The recorded size is what lets the decoder check, before it
    /// allocates, that the frame decompresses to exactly what the batch header says.
    public func compress(_ input: UnsafeRawBufferPointer, appendingTo output: inout [UInt8]) throws(ZstdError) {
        let bound = ZSTD_compressBound(input.count)
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: bound))
        let written = output.withUnsafeMutableBytes { buffer in
            ZSTD_compressCCtx(context, buffer.baseAddress! + start, bound, input.baseAddress, input.count, level)
        }
        if ZSTD_isError(written) != 0 {
            output.removeSubrange(start...)
            throw ZstdError(operation: "compress", code: written)
        }
        output.removeSubrange((start + written)...)
    }
}

/// Owns one decompression context. Not thread-safe: one decompressor per thread.
public final class ZstdDecompressor {
    private let context: OpaquePointer

    public init() throws(ZstdError) {
        guard let context = ZSTD_createDCtx() else {
            throw ZstdError(operation: "init", reason: "out of memory creating a decompression context")
        }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    /// Decompresses exactly one frame whose content size must equal `expectedSize`.
    ///
    /// Hostile input is the reason for the checks: the frame must fill `input`
    /// exactly and declare `expectedSize` (which the caller has already bounded)
    /// before a single byte is allocated, and must then really produce that many.
    public func decompress(_ input: UnsafeRawBufferPointer, expectedSize: Int) throws(ZstdError) -> [UInt8] {
        guard let base = input.baseAddress, input.count > 0 else {
            throw ZstdError(operation: "decompress", reason: "empty input")
        }
        let frameSize = ZSTD_findFrameCompressedSize(base, input.count)
        if ZSTD_isError(frameSize) != 0 { throw ZstdError(operation: "decompress", code: frameSize) }
        guard frameSize == input.count else {
            throw ZstdError(operation: "decompress", reason: "\(input.count - frameSize) bytes after the zstd frame")
        }
        let declared = ZSTD_getFrameContentSize(base, input.count)
        // ZSTD_CONTENTSIZE_UNKNOWN and ZSTD_CONTENTSIZE_ERROR are the two largest values.
        guard declared < UInt64.max - 1 else {
            throw ZstdError(operation: "decompress", reason: "frame does not declare its content size")
        }
        guard declared == UInt64(expectedSize) else {
            throw ZstdError(operation: "decompress", reason: "frame declares \(declared) bytes, header says \(expectedSize)")
        }
        var output = [UInt8](repeating: 0, count: expectedSize)
        let produced = output.withUnsafeMutableBytes { buffer in
            ZSTD_decompressDCtx(context, buffer.baseAddress, expectedSize, base, input.count)
        }
        if ZSTD_isError(produced) != 0 { throw ZstdError(operation: "decompress", code: produced) }
        guard produced == expectedSize else {
            throw ZstdError(operation: "decompress", reason: "produced \(produced) bytes, expected \(expectedSize)")
        }
        return output
    }
}
