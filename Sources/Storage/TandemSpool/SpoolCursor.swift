import CTandemShims

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads durable batches in order, from a given sequence on, while appends go on.
///
/// `next()` returns the next batch once its append has returned (it is durable),
/// and nil when the reader has caught up; call it again later, or wait with
/// `Spool.waitForDurable(beyond:timeout:)`. Every record is checked again as it is
/// read (header and record checksums), so damage that happened after start-up is
/// reported as `corrupt` rather than applied. The cursor opens its own read-only
/// descriptors. Retention only deletes batches at or before the apply checkpoint,
/// which the applier has read already; a cursor that still asks for one gets
/// `released`.
///
/// One thread at a time; open several cursors for several readers.
public final class SpoolCursor {
    public let spool: Spool
    /// The sequence `next()` will return.
    public private(set) var nextSequence: UInt64

    private var current: (first: UInt64, path: String, fd: Int32)?
    /// Offset of the record of `nextSequence` in `current`.
    private var offset: Int64 = 0

    init(spool: Spool, from sequence: UInt64) {
        self.spool = spool
        self.nextSequence = sequence
    }

    deinit { close() }

    /// Closes the cursor's file; a later `next()` reopens what it needs.
    public func close() {
        if let current { spool.io.close(current.fd) }
        current = nil
    }

    public func next() throws(SpoolError) -> SpoolRecord? {
        let view = spool.readView(containing: nextSequence)
        guard !view.closed else { throw .closed(path: spool.directory) }
        guard nextSequence < view.next else { return nil }
        guard let segment = view.segment, nextSequence >= (view.oldest ?? .max) else {
            throw .released(path: spool.directory, sequence: nextSequence, oldest: view.oldest)
        }
        if current?.first != segment.first {
            close()
            let fd: Int32
            do throws(SystemCallError) {
                fd = try spool.io.openFile(segment.path, flags: O_RDONLY, mode: 0)
            } catch {
                if error.code == ENOENT {
                    // Deleted by retention between the snapshot and the open.
                    throw .released(path: spool.directory, sequence: nextSequence, oldest: spool.status.oldestSequence)
                }
                throw .io(path: segment.path, operation: error.call, errno: error.code)
            }
            current = (segment.first, segment.path, fd)
            offset = try seek(fd: fd, segment: segment, to: nextSequence)
        }
        let (fd, path) = (current!.fd, current!.path)
        let (header, headerBytes) = try readHeader(
            fd: fd, path: path, at: offset, expected: nextSequence, end: segment.end)
        var frame = try readFully(
            fd: fd, path: path, at: offset + Int64(SpoolFormat.headerSize),
            count: Int(header.length) + SpoolFormat.trailerSize)
        let length = Int(header.length)
        let (crc, stored) = frame.withUnsafeBytes { raw in
            let headerCRC = headerBytes.withUnsafeBytes { tandem_crc32c(0, $0.baseAddress, $0.count) }
            return (
                tandem_crc32c(headerCRC, raw.baseAddress, length),
                raw.loadUnaligned(fromByteOffset: length, as: UInt32.self).littleEndian
            )
        }
        guard crc == stored else {
            throw .corrupt(path: path, offset: offset, reason: "record checksum mismatch in batch \(nextSequence)")
        }
        frame.removeLast(SpoolFormat.trailerSize)
        offset += header.recordSize
        nextSequence += 1
        return SpoolRecord(sequence: header.sequence, frame: frame)
    }

    /// The offset of `sequence`'s record, found by stepping over the records before it.
    private func seek(fd: Int32, segment: Spool.Segment, to sequence: UInt64) throws(SpoolError) -> Int64 {
        var position: Int64 = 0
        var at = segment.first
        while at < sequence {
            let (header, _) = try readHeader(fd: fd, path: segment.path, at: position, expected: at, end: segment.end)
            position += header.recordSize
            at += 1
        }
        return position
    }

    private func readHeader(fd: Int32, path: String, at offset: Int64, expected: UInt64, end: Int64)
        throws(SpoolError) -> (RecordHeader, [UInt8])
    {
        guard offset + Int64(SpoolFormat.headerSize) <= end else {
            throw .corrupt(path: path, offset: offset, reason: "the segment ends where batch \(expected) should start")
        }
        let bytes = try readFully(fd: fd, path: path, at: offset, count: SpoolFormat.headerSize)
        guard let header = bytes.withUnsafeBytes({ RecordHeader($0) }) else {
            throw .corrupt(
                path: path, offset: offset, reason: "no valid record header where batch \(expected) should start")
        }
        guard header.sequence == expected else {
            throw .corrupt(
                path: path, offset: offset,
                reason: "record holds batch \(header.sequence) where batch \(expected) was expected")
        }
        guard offset + header.recordSize <= end else {
            throw .corrupt(
                path: path, offset: offset,
                reason: "record of batch \(expected) runs past the durable end of the segment")
        }
        return (header, bytes)
    }

    private func readFully(fd: Int32, path: String, at offset: Int64, count: Int) throws(SpoolError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = try sys(path) { () throws(SystemCallError) in
                try bytes.withMutableRawBytes { (raw) throws(SystemCallError) in
                    try spool.io.pread(
                        fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[got...]), at: offset + Int64(got))
                }
            }
            guard n > 0 else {
                throw .corrupt(
                    path: path, offset: offset + Int64(got),
                    reason: "the file ends before the durable end of the segment")
            }
            got += n
        }
        return bytes
    }
}
