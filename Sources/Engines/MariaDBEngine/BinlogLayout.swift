import TandemCore

/// The primary's binlog files laid end to end, as `SHOW BINARY LOGS` lists them: turns a binlog
/// coordinate (file, position) into a byte offset on one line (`LogOffset`), so that lag can be
/// told in bytes of binlog across file rotations.
///
/// The line starts at the oldest file listed and is named after it: purging that file moves
/// the start, so offsets taken before and after a purge are in different spaces and are never
/// compared.
public struct BinlogLayout: Hashable, Sendable {
    public struct File: Hashable, Sendable {
        public var name: String
        public var size: UInt64
        public init(name: String, size: UInt64) {
            self.name = name
            self.size = size
        }
    }

    public let files: [File]
    private let starts: [String: UInt64]

    public init(files: [File]) {
        self.files = files
        var starts: [String: UInt64] = [:]
        var total: UInt64 = 0
        for file in files {
            starts[file.name] = total
            total += file.size
        }
        self.starts = starts
    }

    /// The space offsets of this layout are in: the oldest file listed.
    public var space: String { "binlog:" + (files.first?.name ?? "") }

    /// The offset of `position` in `file`; nil when the file is not listed (rotated to after the
    /// layout was read, or purged).
    public func offset(file: String, position: UInt64) -> LogOffset? {
        guard let start = starts[file] else { return nil }
        return LogOffset(space: space, bytes: start + position, text: "\(file):\(position)")
    }

    /// The end of the newest file: where the primary's binlog ends.
    public var end: LogOffset? {
        guard let last = files.last else { return nil }
        return offset(file: last.name, position: last.size)
    }
}
