import TandemCore

/// Bounds on link frames.
public enum LinkFrameLimits {
    /// 80 MiB. Must exceed the largest BATCH frame: the batch codec's default
    /// maximum frame (16-byte prefix + 64 KiB header + 64 MiB body + 4-byte CRC)
    /// plus the type byte and the 8-byte sequence. The margin leaves room for the
    /// codec's limits to grow a little without a protocol change.
    public static let defaultMaximumFrameLength = 80 * 1024 * 1024
    /// Below this, a HELLO or an ACK carrying a long MySQL GTID set might not fit.
    public static let minimumMaximumFrameLength = 4096
    /// The length prefix is a u32.
    public static let largestExpressibleFrameLength = Int(UInt32.max)
    /// Length prefix (4) + type (1) + sequence (8) in front of a batch frame.
    public static let batchOverhead = 13
    /// What the length prefix counts on top of the batch frame: type and sequence.
    static let batchLengthOverhead = 9
}
