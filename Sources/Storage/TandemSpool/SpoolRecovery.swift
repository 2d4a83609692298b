import CTandemShims

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What start-up recovery found and did.
public struct SpoolRecovery: Sendable, Hashable, CustomStringConvertible {
    /// True when this open created the spool (no identity file was there).
    public var created: Bool
    /// Segment files scanned, and intact records verified in them (every one, CRC included).
    public var segments: Int
    public var records: Int
    /// The torn tail that was cut, if any: the newest segment was truncated to
    /// `cutOffset`, dropping `cutBytes` bytes (`cutReason` says what was found there).
    public var cutFile: String?
    public var cutOffset: Int64?
    public var cutBytes: Int64
    public var cutReason: String?
    /// The highest batch the spool holds after recovery (or the one before the first
    /// it will accept, when it holds none): what the receiver states on HELLO.
    public var durableSequence: UInt64

    public var description: String {
        var text =
            created
            ? "created an empty spool"
            : "verified \(records) records in \(segments) segments; durable through batch \(durableSequence)"
        if let cutFile, let cutOffset {
            text += "; cut a torn tail of \(cutBytes) bytes from \(cutFile) at offset \(cutOffset)"
            if let cutReason { text += " (\(cutReason))" }
        }
        return text
    }
}

/// A 1 MiB window over a file, for sequential scans that must not read a record at
/// a time (records may be tiny or up to the frame limit).
final class FileWindow {
    static let capacity = 1 << 20
    let io: any SpoolIO
    let fd: Int32
    let path: String
    let size: Int64
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: FileWindow.capacity, alignment: 16)
    private var start: Int64 = 0
    private var filled = 0

    init(io: any SpoolIO, fd: Int32, path: String, size: Int64) {
        self.io = io
        self.fd = fd
        self.path = path
        self.size = size
    }

    deinit { buffer.deallocate() }

    /// `count` (≤ capacity) bytes at `offset`, all inside the file. Valid until the next call.
    func bytes(at offset: Int64, count: Int) throws(SpoolError) -> UnsafeRawBufferPointer {
        precondition(count <= Self.capacity && offset >= 0 && offset + Int64(count) <= size)
        if offset < start || offset + Int64(count) > start + Int64(filled) {
            let want = Int(min(Int64(Self.capacity), size - offset))
            var got = 0
            while got < want {
                let n: Int
                do throws(SystemCallError) {
                    n = try io.pread(
                        fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[got..<want]), at: offset + Int64(got))
                } catch {
                    throw .io(path: path, operation: error.call, errno: error.code)
                }
                if n == 0 { break }
                got += n
            }
            start = offset
            filled = got
            guard got >= count else {
                throw .io(path: path, operation: "read (the file shrank while being scanned)", errno: EIO)
            }
        }
        let from = Int(offset - start)
        return UnsafeRawBufferPointer(rebasing: buffer[from..<from + count])
    }

    /// CRC32C of `count` bytes from `offset`.
    func checksum(from offset: Int64, count: Int64) throws(SpoolError) -> UInt32 {
        var crc: UInt32 = 0
        var position = offset
        var left = count
        while left > 0 {
            let n = Int(min(left, Int64(Self.capacity)))
            let chunk = try bytes(at: position, count: n)
            crc = tandem_crc32c(crc, chunk.baseAddress, n)
            position += Int64(n)
            left -= Int64(n)
        }
        return crc
    }

    func header(at offset: Int64) throws(SpoolError) -> RecordHeader? {
        RecordHeader(try bytes(at: offset, count: SpoolFormat.headerSize))
    }
}

/// One segment after its scan.
struct ScannedSegment {
    var first: UInt64
    var path: String
    /// Bytes kept (the file's length after any cut).
    var end: Int64
    /// The sequence after the last intact record (`first` when it holds none).
    var next: UInt64
    var records: Int
    var cutOffset: Int64?
    var cutBytes: Int64 = 0
    var cutReason: String?
}

/// Start-up recovery: every record of every segment is verified, and damage is
/// either a torn tail (cut) or corruption (refuse).
///
/// ## The rules
///
/// The write path guarantees: each `append` is one `pwrite` into one segment followed
/// by `fdatasync`, and the next append (or a new segment) starts only after that
/// returned. So at any crash point everything is durable except possibly the last
/// append, whose records are all in the newest segment — in any state, because the
/// kernel may have written its pages in any order.
///
/// Hence, scanning records in order and stopping at the first damaged one (a partial
/// header, a bad magic or header checksum, a record cut off by the end of the file,
/// a record checksum mismatch):
///
/// - in any segment but the newest → **corruption**: those segments were complete and
///   synced before the newer one was created;
/// - in the newest segment → a **torn tail**, cut with `ftruncate` + `fsync`, if no
///   intact record header behind the damage belongs to a *later* append (one whose
///   append start is after the damaged record's sequence). Intact records of the same
///   append behind it are part of the same unacknowledged write and are cut with it;
/// - otherwise → **corruption**: a later append was written, so this one had been
///   synced, and its damage happened afterwards.
///
/// An intact record that is out of place — a sequence other than the next one, an
/// append start that makes no sense, a segment that does not start where the previous
/// one ended, an empty segment that is not the newest — is never the product of a torn
/// write and is always corruption. Corruption refuses the open, naming file and
/// offset: batches the spool may have acknowledged as durable are never dropped quietly.
///
/// ## The price of that rule
///
/// Within the last append the spool cannot tell "never finished syncing" from
/// "synced, then rotted", so damage there is cut as torn even if the append had been
/// acknowledged. The recovery report says how much was cut; the receiver states its
/// (lower) durable sequence on HELLO, and the sender resends from there if it still
/// can. The same holds for a bit flip in the very last record, whatever the appends.
enum SegmentScanner {
    private enum Examined {
        case intact(RecordHeader)
        /// Damage that a torn write could explain; the search for later appends starts at `searchFrom`.
        case damaged(reason: String, searchFrom: Int64)
        /// An intact record that cannot be where it is.
        case inconsistent(String)
    }

    static func scan(io: any SpoolIO, fd: Int32, path: String, first: UInt64, isNewest: Bool)
        throws(SpoolError) -> ScannedSegment
    {
        let size: Int64
        do throws(SystemCallError) { size = try io.fileSize(fd) } catch {
            throw .io(path: path, operation: error.call, errno: error.code)
        }
        let window = FileWindow(io: io, fd: fd, path: path, size: size)
        var result = ScannedSegment(first: first, path: path, end: size, next: first, records: 0)
        var offset: Int64 = 0
        var previousAppendStart: UInt64?
        while offset < size {
            switch try examine(window, at: offset, expected: result.next, previousAppendStart: previousAppendStart) {
            case .intact(let header):
                offset += header.recordSize
                result.next += 1
                result.records += 1
                previousAppendStart = header.appendStart
            case let .inconsistent(reason):
                throw .corrupt(path: path, offset: offset, reason: reason)
            case let .damaged(reason, searchFrom):
                guard isNewest else {
                    throw .corrupt(
                        path: path, offset: offset,
                        reason:
                            "\(reason), in a segment that is not the newest (it was complete before the next one was started)"
                    )
                }
                if let later = try laterAppend(window, from: searchFrom, damagedSequence: result.next) {
                    throw .corrupt(
                        path: path, offset: offset,
                        reason:
                            "\(reason); the intact record of batch \(later.sequence) at offset \(later.offset) was written by a later append, so this is not a torn write"
                    )
                }
                do throws(SystemCallError) {
                    try io.ftruncate(fd, to: offset)
                    try io.fsync(fd)
                } catch {
                    throw .io(
                        path: path, operation: "\(error.call) while cutting a torn tail at offset \(offset)",
                        errno: error.code)
                }
                result.end = offset
                result.cutOffset = offset
                result.cutBytes = size - offset
                result.cutReason = reason
                return result
            }
        }
        return result
    }

    private static func examine(
        _ window: FileWindow, at offset: Int64, expected: UInt64,
        previousAppendStart: UInt64?
    ) throws(SpoolError) -> Examined {
        let remaining = window.size - offset
        guard remaining >= Int64(SpoolFormat.headerSize) else {
            return .damaged(
                reason:
                    "partial record header (\(remaining) of \(SpoolFormat.headerSize) bytes) where batch \(expected) should start",
                searchFrom: window.size)
        }
        guard let header = try window.header(at: offset) else {
            return .damaged(
                reason: "no valid record header (bad magic or header checksum) where batch \(expected) should start",
                searchFrom: offset + 1)
        }
        guard header.sequence == expected else {
            let what = header.sequence < expected ? "a duplicate or stale batch" : "a sequence gap"
            return .inconsistent("record holds batch \(header.sequence) where batch \(expected) was expected (\(what))")
        }
        guard header.appendStart == header.sequence || header.appendStart == previousAppendStart else {
            return .inconsistent(
                "record of batch \(header.sequence) claims an append starting at batch \(header.appendStart), which does not match the records before it"
            )
        }
        let end = offset + header.recordSize
        guard end <= window.size else {
            return .damaged(
                reason: "record of batch \(expected) is cut off (\(remaining) of \(header.recordSize) bytes present)",
                searchFrom: window.size)
        }
        let covered = Int64(SpoolFormat.headerSize) + Int64(header.length)
        let computed = try window.checksum(from: offset, count: covered)
        let stored = try window.bytes(at: offset + covered, count: 4).loadUnaligned(as: UInt32.self).littleEndian
        guard computed == stored else {
            return .damaged(reason: "record checksum mismatch in batch \(expected)", searchFrom: end)
        }
        return .intact(header)
    }

    /// The first intact record header at or after `from` that cannot belong to the
    /// append that wrote the damaged record `damagedSequence`.
    private static func laterAppend(_ window: FileWindow, from: Int64, damagedSequence: UInt64)
        throws(SpoolError) -> (sequence: UInt64, offset: Int64)?
    {
        let headerSize = Int64(SpoolFormat.headerSize)
        let firstMagicByte = Int32(SpoolFormat.recordMagic & 0xFF)
        var position = from
        while position + headerSize <= window.size {
            let chunk = try window.bytes(
                at: position, count: Int(min(Int64(FileWindow.capacity), window.size - position)))
            guard let hit = memchr(chunk.baseAddress!, firstMagicByte, chunk.count) else {
                position += Int64(chunk.count)
                continue
            }
            let candidate = position + Int64(chunk.baseAddress!.distance(to: UnsafeRawPointer(hit)))
            guard candidate + headerSize <= window.size else { return nil }
            if let header = try window.header(at: candidate) {
                let sameAppend = header.appendStart <= damagedSequence && header.sequence >= damagedSequence
                if !sameAppend { return (header.sequence, candidate) }
                // Part of the torn append: step over it when it fits, its length being checked.
                let end = candidate + header.recordSize
                position = end <= window.size ? end : candidate + 1
            } else {
                position = candidate + 1
            }
        }
        return nil
    }
}
