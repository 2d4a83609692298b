/// A point in the source database's log counted in bytes, for lag in bytes of source log.
///
/// A `Position` is what the source is acknowledged with and is never translated; a log
/// offset is only for measuring distances: how much source log lies between what the shipper
/// has read (or what the DR site holds durably) and the source's current end. Each engine
/// lays its log out on one line: PostgreSQL's LSNs already are byte offsets; MariaDB's binlog
/// files are laid end to end from the oldest file the server lists. `space` names that line:
/// two offsets are only compared within one space (purging a MariaDB binlog file starts a new
/// one), and a distance across spaces is unknown rather than wrong.
public struct LogOffset: Hashable, Sendable, Codable {
    public var space: String
    public var bytes: UInt64
    /// The engine's own text for the point (an LSN; `file:position`), for people.
    public var text: String

    public init(space: String, bytes: UInt64, text: String) {
        self.space = space
        self.bytes = bytes
        self.text = text
    }

    /// PostgreSQL: the LSN is the offset.
    public init(_ lsn: LSN) {
        self.init(space: "wal", bytes: lsn.rawValue, text: lsn.description)
    }

    /// Bytes from `earlier` to this point; nil across spaces. Zero when `earlier` is ahead (a
    /// source end read before the point `earlier` was taken).
    public func bytes(since earlier: LogOffset) -> UInt64? {
        guard space == earlier.space else { return nil }
        return bytes >= earlier.bytes ? bytes - earlier.bytes : 0
    }
}

/// How far a capture has read its source's log and where the source's log ends.
public struct SourceLogProgress: Hashable, Sendable, Codable {
    /// The end of what the capture has read and handed over or passed by; everything before it
    /// is in delivered batches or in the open one.
    public var read: LogOffset?
    /// The source's log end when last asked (a few times a second).
    public var end: LogOffset?

    public init(read: LogOffset? = nil, end: LogOffset? = nil) {
        self.read = read
        self.end = end
    }

    /// The log's end as best known: the end last asked, or what the capture has read since, if
    /// that is further (the log is at least that long; the end was asked a moment ago).
    public var knownEnd: LogOffset? {
        guard let end else { return nil }
        guard let read, read.space == end.space, read.bytes > end.bytes else { return end }
        return read
    }

    /// Capture lag in bytes of source log: the source's end against what the capture read.
    public var behindBytes: UInt64? {
        guard let read, let end = knownEnd else { return nil }
        return end.bytes(since: read)
    }

    /// A batch delivered: the capture has read at least to its end.
    public mutating func delivered(through offset: LogOffset) {
        if let read, read.space == offset.space, read.bytes >= offset.bytes { return }
        self.read = offset
    }
}
