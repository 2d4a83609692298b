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
            throw ZstdError(
                operation: "init", reason: "level \(level) outside \(Zstd.minimumLevel)...\(Zstd.maximumLevel)")
        }
        guard let context = ZSTD_createCCtx() else {
            throw ZstdError(operation: "init", reason: "out of memory creating a compression context")
        }
        self.context = context
        self.level = level
    }

    deinit { ZSTD_freeCCtx(context) }

    /// The most bytes compressing `size` bytes can produce.
    public static func compressBound(_ size: Int) -> Int { ZSTD_compressBound(size) }

    /// Compresses `input` as one frame that records its content size, appending it
    /// to `output`. The recorded size is what lets the decoder check, before it
    /// allocates, that the frame decompresses to exactly what the batch header says.
    public func compress(_ input: UnsafeRawBufferPointer, appendingTo output: inout [UInt8]) throws(ZstdError) {
        let bound = ZSTD_compressBound(input.count)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bound, 1), alignment: 16)
        defer { scratch.deallocate() }
        let written = try compress(input, into: scratch)
        output.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<written]))
    }

    /// Compresses `input` as one frame that records its content size into `output`,
    /// which should hold `compressBound(input.count)` bytes, and returns the number
    /// of bytes written. Produces the same frame as `compress(_:appendingTo:)`.
    public func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(ZstdError)
        -> Int
    {
        let written = ZSTD_compressCCtx(
            context, output.baseAddress, output.count, input.baseAddress, input.count, level)
        if ZSTD_isError(written) != 0 { throw ZstdError(operation: "compress", code: written) }
        return written
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
        try checkFrame(input, expectedSize: expectedSize)
        var failure: ZstdError?
        let output = [UInt8](unsafeUninitializedCapacity: expectedSize) { buffer, initialized in
            do throws(ZstdError) {
                try run(input, into: UnsafeMutableRawBufferPointer(buffer))
                initialized = expectedSize
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return output
    }

    /// Decompresses exactly one frame into `output`, whose size is the expected
    /// content size: the same checks as `decompress(_:expectedSize:)`, in the same
    /// order, but into memory the caller owns (and may reuse). On success every byte
    /// of `output` has been written; on failure its contents are unspecified.
    public func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer)
        throws(ZstdError)
    {
        try checkFrame(input, expectedSize: output.count)
        try run(input, into: output)
    }

    private func checkFrame(_ input: UnsafeRawBufferPointer, expectedSize: Int) throws(ZstdError) {
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
            throw ZstdError(
                operation: "decompress", reason: "frame declares \(declared) bytes, header says \(expectedSize)")
        }
    }

    /// Decompresses a frame already checked by `checkFrame` into exactly `output`.
    private func run(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(ZstdError) {
        let expectedSize = output.count
        let produced = ZSTD_decompressDCtx(context, output.baseAddress, expectedSize, input.baseAddress, input.count)
        if ZSTD_isError(produced) != 0 { throw ZstdError(operation: "decompress", code: produced) }
        guard produced == expectedSize else {
            throw ZstdError(operation: "decompress", reason: "produced \(produced) bytes, expected \(expectedSize)")
        }
    }
}
