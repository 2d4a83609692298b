/// Names one replication stream: one source database feeding one target, in one
/// direction. Sequence numbers and checkpoints are per stream, so a reversed pair
/// after a switchover is a new stream and never confuses its numbering with the old.
public struct StreamID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// 1–64 characters of `A-Z a-z 0-9 . _ -`: safe in file names, SQL literals and logs.
    public init?(_ rawValue: String) {
        guard (1...64).contains(rawValue.utf8.count),
            rawValue.utf8.allSatisfy({ byte in
                (byte >= 48 && byte <= 57) || (byte | 0x20 >= 97 && byte | 0x20 <= 122)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            })
        else { return nil }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// The compression applied to a batch body.
public enum BatchCompression: UInt8, Sendable, Hashable, CaseIterable {
    case none = 0
    case zstd = 1
}

/// What is known about a batch without opening its body: enough to spool it,
/// acknowledge it, report lag and resume, without decompressing anything.
public struct BatchHeader: Hashable, Sendable {
    public var stream: StreamID
    /// Gap-free per stream, starting at 1. The receiver accepts exactly the next one.
    public var sequence: UInt64
    public var firstPosition: Position
    public var lastPosition: Position
    public var firstCommitTime: Timestamp
    public var lastCommitTime: Timestamp
    public var transactionCount: UInt32
    public var rowCount: UInt64
    /// Size of the encoded body before compression; bounds the decoder's allocation.
    public var uncompressedSize: UInt32
    public var compression: BatchCompression

    public init(
        stream: StreamID, sequence: UInt64, firstPosition: Position, lastPosition: Position,
        firstCommitTime: Timestamp, lastCommitTime: Timestamp, transactionCount: UInt32,
        rowCount: UInt64, uncompressedSize: UInt32, compression: BatchCompression
    ) {
        self.stream = stream
        self.sequence = sequence
        self.firstPosition = firstPosition
        self.lastPosition = lastPosition
        self.firstCommitTime = firstCommitTime
        self.lastCommitTime = lastCommitTime
        self.transactionCount = transactionCount
        self.rowCount = rowCount
        self.uncompressedSize = uncompressedSize
        self.compression = compression
    }
}

/// One or more whole source transactions, in commit order, shipped and applied as
/// a unit. (A single oversized transaction may instead be one chunk of a split
/// transaction; see `TransactionChunk`.)
public struct Batch: Hashable, Sendable {
    public var stream: StreamID
    public var sequence: UInt64
    public var transactions: [Transaction]

    public init(stream: StreamID, sequence: UInt64, transactions: [Transaction]) {
        self.stream = stream
        self.sequence = sequence
        self.transactions = transactions
    }

    public var rowCount: Int { transactions.reduce(0) { $0 + $1.rowCount } }
}
