import TandemCore

/// `[spool]`: where received (and, during an outage, outgoing) batches are
/// kept durably.
public struct SpoolConfig: Sendable, Equatable {
    /// Absolute path of the spool directory.
    public var directory: String
    /// Upper bound on spool size; nil means bounded only by free disk space.
    /// When set it is at least `batch.maxBytes`, since a spool that cannot
    /// hold one batch would stall the stream forever.
    public var maxBytes: ByteSize?

    public init(directory: String, maxBytes: ByteSize? = nil) {
        self.directory = directory
        self.maxBytes = maxBytes
    }
}

/// `[batch]`: how the shipper groups transactions into batches. Every key is
/// optional; the defaults suit a WAN link of a few ms to a few tens of ms.
public struct BatchConfig: Sendable, Equatable {
    /// A batch is closed once its raw (uncompressed) size reaches this. The
    /// upper bound keeps frames well inside the batch codec's default decode
    /// limits (64 MiB compressed body, 128 MiB uncompressed).
    public var maxBytes: ByteSize
    /// A non-empty batch is sent at the latest this long after its first
    /// transaction: the price in RPO of batching. Capped at 10 s because a
    /// larger value turns a tuning knob into guaranteed data loss exposure.
    public var maxDelay: Duration
    /// zstd level for batch bodies, 1…19. The default is 1, the level the
    /// batch codec defaults to after its benchmark (faster capture on a busy
    /// primary for a ratio only slightly worse than 3).
    public var compressionLevel: Int

    public static let defaultMaxBytes = ByteSize.mebibytes(8)
    public static let defaultMaxDelay = Duration.milliseconds(50)
    public static let defaultCompressionLevel = 1

    public static let maxBytesRange = ByteSize.kibibytes(4)...ByteSize.mebibytes(64)
    public static let maxDelayMillisecondsRange = 0...10_000
    public static let compressionLevelRange = 1...19

    public init(
        maxBytes: ByteSize = defaultMaxBytes, maxDelay: Duration = defaultMaxDelay,
        compressionLevel: Int = defaultCompressionLevel
    ) {
        self.maxBytes = maxBytes
        self.maxDelay = maxDelay
        self.compressionLevel = compressionLevel
    }
}
