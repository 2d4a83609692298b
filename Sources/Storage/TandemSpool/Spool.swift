import TandemCodec
import TandemCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// How a spool is laid out and bounded.
public struct SpoolOptions: Sendable, Hashable {
    public static let defaultSegmentBytes: Int64 = 64 * 1024 * 1024

    /// A new segment is started when the next append would take the current one
    /// past this size. One append never spans two segments (so that it stays one
    /// write and one sync), so a segment can exceed this by at most one append.
    public var segmentBytes: Int64
    /// Upper bound on the bytes held in segments; nil means bounded by the disk only.
    /// An append that would exceed it is refused with `SpoolError.spoolFull`, which
    /// the receiver turns into back-pressure until retention releases segments.
    public var maximumBytes: Int64?
    /// The sequence the first batch must carry, recorded when the spool is created:
    /// 1 for a new stream, the apply checkpoint + 1 when a removed spool is re-created.
    /// Ignored when opening an existing spool (its identity file says).
    public var firstSequence: UInt64
    /// Limits for the frame check done on every appended frame.
    public var frameLimits: BatchLimits

    public init(
        segmentBytes: Int64 = SpoolOptions.defaultSegmentBytes, maximumBytes: Int64? = nil,
        firstSequence: UInt64 = 1, frameLimits: BatchLimits = .default
    ) {
        self.segmentBytes = segmentBytes
        self.maximumBytes = maximumBytes
        self.firstSequence = firstSequence
        self.frameLimits = frameLimits
    }
}

/// Size and extent of a spool, for `status` and lag in batches and bytes.
public struct SpoolStatus: Sendable, Hashable {
    public var stream: StreamID
    public var directory: String
    /// Bytes in segment files (records only; the identity file is not counted).
    public var bytes: Int64
    public var segments: Int
    /// Oldest and newest batch held; nil when the spool holds none.
    public var oldestSequence: UInt64?
    public var newestSequence: UInt64?
    /// The highest durable batch, or the one before the first the spool will accept
    /// when it holds none. The receiver acknowledges and resumes from this.
    public var durableSequence: UInt64
    public var maximumBytes: Int64?
    /// False once an append could not be undone (`SpoolError.needsRestart`) or the spool is closed.
    public var acceptsBatches: Bool
}

/// What `release(upTo:)` removed.
public struct SpoolRelease: Sendable, Hashable {
    public var segmentsDeleted: Int
    public var bytesFreed: Int64
}

/// One spooled batch: its sequence and its frame, byte for byte as it was appended.
public struct SpoolRecord: Sendable, Hashable {
    public var sequence: UInt64
    public var frame: [UInt8]
}

/// The applier's durable, append-only store of received batch frames, for one stream.
///
/// ## The promise
///
/// `append` returns only after the frames are written *and* `fdatasync` returned
/// (plus an `fsync` of the directory when it created a segment file). That is the
/// moment a batch may be acknowledged as durable to the sender — and the sender
/// acknowledges the source only up to what is durable here, which is what makes a
/// crash at any point lossless. Until `append` returns, nothing is promised: start-up
/// recovery may keep the batch (it reached the disk whole) or cut it (torn).
///
/// A failed `append` (a frame that is not the next batch, a full disk, a write
/// error) leaves the spool exactly as it was: the partial record is cut back and the
/// durable sequence is unchanged, so the receiver can retry the same batch later. If
/// even that cleanup fails, the spool refuses appends (`needsRestart`) until it is
/// reopened, and start-up recovery cuts what was left.
///
/// See `SpoolFormat` for the files and `SegmentScanner` for the recovery rules.
///
/// ## Threads
///
/// A `Spool` may be shared between threads. `append`, `release` and `close` are
/// serialized by one internal lock (the design has one writer, the receiver, and
/// one releaser, the applier after its checkpoint commits). Readers (`records(from:)`
/// cursors, `status`, `waitForDurable`) may run on other threads at the same time:
/// they take a second lock only for a snapshot, never across I/O, so a reader is never
/// held up by an fsync in progress, and it only ever sees records whose append has
/// returned. A `SpoolCursor` itself belongs to one thread at a time.
///
/// The directory is `flock`ed while open, so a second agent (or a second `Spool` in
/// this process) on the same spool is refused rather than allowed to interleave writes.
public final class Spool: @unchecked Sendable {
    public let stream: StreamID
    public let directory: String
    public let options: SpoolOptions
    /// What start-up recovery found and did.
    public let recovery: SpoolRecovery

    let io: any SpoolIO

    struct Segment: Sendable, Hashable {
        var first: UInt64
        var path: String
        /// Bytes durably written (every record below this offset is durable).
        var end: Int64
    }

    struct Published {
        /// Ascending and contiguous; the last one is the segment being written.
        var segments: [Segment]
        /// The sequence the next append must start with; everything below is durable.
        var next: UInt64
        var bytes: Int64
        var closed = false
        var stopReason: String?
    }

    /// Serializes the mutators (append, release, close) and guards the writer's own state.
    private let writerLock = ConditionLock()
    /// Guards `published`. Taken after `writerLock` when both are needed, never the other way.
    private let stateLock = ConditionLock()
    /// Changed only with both locks held, so the writer may read it holding `writerLock` alone.
    private var published: Published

    // Writer's own state, guarded by `writerLock`.
    private var directoryFD: Int32
    /// The newest segment, open for writing; -1 before the first segment exists.
    private var activeFD: Int32
    private var recordBuffer: [UInt8] = []
    private let decoder: BatchDecoder

    /// The record buffer is kept between appends unless one append made it larger than this.
    private static let retainedBufferBytes = 8 * 1024 * 1024

    private init(
        stream: StreamID, directory: String, options: SpoolOptions, recovery: SpoolRecovery, io: any SpoolIO,
        published: Published, directoryFD: Int32, activeFD: Int32, decoder: BatchDecoder
    ) {
        self.stream = stream
        self.directory = directory
        self.options = options
        self.recovery = recovery
        self.io = io
        self.published = published
        self.directoryFD = directoryFD
        self.activeFD = activeFD
        self.decoder = decoder
    }

    deinit {
        if activeFD >= 0 { io.close(activeFD) }
        if directoryFD >= 0 { io.close(directoryFD) }
    }

    /// The directory for `stream` under the configured spool root: one per stream, so
    /// a reversed pair after a switchover (a new stream) never shares files with the old.
    public static func streamDirectory(root: String, stream: StreamID) -> String {
        join(normalized(root), stream.rawValue)
    }

    // MARK: - Opening

    /// Opens the spool in `directory` (the stream's own directory, created if missing
    /// together with its identity file), running start-up recovery: every record is
    /// verified, a torn tail is cut, anything else damaged refuses the open.
    public static func open(directory: String, stream: StreamID, options: SpoolOptions = SpoolOptions())
        throws(SpoolError) -> Spool
    {
        try open(directory: directory, stream: stream, options: options, io: POSIXSpoolIO())
    }

    static func open(directory rawDirectory: String, stream: StreamID, options: SpoolOptions, io: any SpoolIO)
        throws(SpoolError) -> Spool
    {
        precondition(options.segmentBytes > 0, "segmentBytes must be positive")
        precondition(options.firstSequence >= 1, "batch sequences start at 1")
        let directory = normalized(rawDirectory)
        let decoder: BatchDecoder
        do throws(BatchCodecError) { decoder = try BatchDecoder(limits: options.frameLimits) } catch {
            throw .io(path: directory, operation: "creating the frame decoder (\(error))", errno: ENOMEM)
        }

        let directoryFD = try openOrCreateDirectory(directory, io: io)
        var descriptors = [directoryFD]
        var succeeded = false
        defer { if !succeeded { for fd in descriptors { io.close(fd) } } }

        try lockDirectory(directoryFD, directory: directory, io: io)
        let names = try sys(directory) { () throws(SystemCallError) in try io.listDirectory(directory) }
        let segmentFiles = names.compactMap { name in
            SpoolFormat.segmentFirst(fromName: name).map { (first: $0, name: name) }
        }
        .sorted { $0.first < $1.first }

        // Identity: read it, or create it when the directory holds no spool yet.
        let identityPath = join(directory, SpoolFormat.identityFileName)
        var created = false
        let identity: SpoolIdentity
        if names.contains(SpoolFormat.identityFileName) {
            identity = try readIdentity(identityPath, stream: stream, io: io)
            if names.contains(SpoolFormat.identityTemporaryName) {
                // Left by a crash while creating a spool that was then created anyway: harmless.
                try sys(directory) { () throws(SystemCallError) in
                    try io.unlink(join(directory, SpoolFormat.identityTemporaryName))
                    try io.fsync(directoryFD)
                }
            }
        } else {
            guard segmentFiles.isEmpty else {
                throw .notASpool(
                    path: directory, reason: "it holds segment files but no \(SpoolFormat.identityFileName)")
            }
            identity = SpoolIdentity(
                format: SpoolFormat.version, stream: stream.rawValue, firstSequence: options.firstSequence)
            try writeIdentity(identity, directory: directory, directoryFD: directoryFD, io: io)
            created = true
        }

        // Recovery: verify every segment in order.
        var segments: [Segment] = []
        var next = identity.firstSequence
        var bytes: Int64 = 0
        var records = 0
        var activeFD: Int32 = -1
        var cut: ScannedSegment?
        if let oldest = segmentFiles.first, oldest.first < identity.firstSequence {
            throw .corrupt(
                path: join(directory, oldest.name), offset: 0,
                reason:
                    "segment starts at batch \(oldest.first), before the spool's first batch \(identity.firstSequence)")
        }
        for (index, file) in segmentFiles.enumerated() {
            let path = join(directory, file.name)
            let isNewest = index == segmentFiles.count - 1
            if index > 0 && file.first != next {
                throw .corrupt(
                    path: path, offset: 0,
                    reason: file.first > next
                        ? "segment starts at batch \(file.first) but the previous one ends at batch \(next - 1): batches \(next)–\(file.first - 1) are missing"
                        : "segment starts at batch \(file.first) but the previous one already holds batches up to \(next - 1)"
                )
            }
            let fd = try sys(path) { () throws(SystemCallError) in
                try io.openFile(path, flags: isNewest ? O_RDWR : O_RDONLY, mode: 0)
            }
            descriptors.append(fd)
            let scanned = try SegmentScanner.scan(io: io, fd: fd, path: path, first: file.first, isNewest: isNewest)
            if !isNewest {
                guard scanned.records > 0 else {
                    throw .corrupt(path: path, offset: 0, reason: "segment holds no record but is not the newest")
                }
                descriptors.removeLast()
                io.close(fd)
            } else {
                activeFD = fd
            }
            if scanned.cutOffset != nil { cut = scanned }
            records += scanned.records
            bytes += scanned.end
            next = scanned.next
            segments.append(Segment(first: file.first, path: path, end: scanned.end))
        }

        let report = SpoolRecovery(
            created: created, segments: segmentFiles.count, records: records,
            cutFile: cut?.path, cutOffset: cut?.cutOffset, cutBytes: cut?.cutBytes ?? 0,
            cutReason: cut?.cutReason, durableSequence: next - 1)
        succeeded = true
        return Spool(
            stream: stream, directory: directory, options: options, recovery: report, io: io,
            published: Published(segments: segments, next: next, bytes: bytes),
            directoryFD: directoryFD, activeFD: activeFD, decoder: decoder)
    }

    // MARK: - Appending

    /// Appends one batch frame; see `append(_:)` for the whole contract.
    @discardableResult
    public func append(_ frame: [UInt8]) throws(SpoolError) -> UInt64 {
        try append([frame])
    }

    /// Makes `frames` durable, in order, and returns the new highest durable sequence.
    ///
    /// Each frame must be a valid batch frame of this spool's stream (its checksum and
    /// header are checked), and their sequences must continue the spool exactly
    /// (durable + 1, + 2, …). All frames are written with one `pwrite` into one segment
    /// and synced with one `fdatasync`: group commit, one sync for however many batches
    /// arrived while the previous sync ran. When this returns, every frame is durable
    /// and may be acknowledged; when it throws, none was kept and the spool is as before.
    @discardableResult
    public func append(_ frames: [[UInt8]]) throws(SpoolError) -> UInt64 {
        try writerLock.withLock { () throws(SpoolError) -> UInt64 in try appendLocked(frames) }
    }

    private func appendLocked(_ frames: [[UInt8]]) throws(SpoolError) -> UInt64 {
        guard !published.closed else { throw .closed(path: directory) }
        if let reason = published.stopReason { throw .needsRestart(path: directory, reason: reason) }
        let first = published.next
        guard !frames.isEmpty else { return first - 1 }

        // Everything is checked before anything is written.
        var size: Int64 = 0
        for (index, frame) in frames.enumerated() {
            let header: BatchHeader
            do throws(BatchCodecError) { header = try decoder.decodeHeader(frame) } catch {
                throw .invalidFrame(path: directory, index: index, reason: error)
            }
            guard header.stream == stream else {
                throw .wrongStream(path: directory, expected: stream, found: header.stream, sequence: header.sequence)
            }
            let expected = first + UInt64(index)
            guard header.sequence == expected else {
                throw .outOfSequence(path: directory, expected: expected, received: header.sequence)
            }
            size += SpoolFormat.recordSize(frameLength: frame.count)
        }
        if let limit = options.maximumBytes, published.bytes + size > limit {
            throw .spoolFull(path: directory, bytes: published.bytes, needed: size, limit: limit)
        }

        recordBuffer.removeAll(keepingCapacity: true)
        recordBuffer.reserveCapacity(Int(size))
        defer { if recordBuffer.capacity > Self.retainedBufferBytes { recordBuffer = [] } }
        for (index, frame) in frames.enumerated() {
            RecordHeader.appendRecord(
                frame: frame, sequence: first + UInt64(index), appendStart: first, to: &recordBuffer)
        }

        var fd = activeFD
        var path = published.segments.last?.path ?? ""
        var offset = published.segments.last?.end ?? 0
        var createdSegment = false
        // An empty newest segment (new, or emptied by recovery) is already named `first`.
        if published.segments.isEmpty || (offset > 0 && offset + size > options.segmentBytes) {
            path = join(directory, SpoolFormat.segmentName(first: first))
            fd = try createSegment(path)
            offset = 0
            createdSegment = true
        }

        do throws(SystemCallError) {
            try writeFully(fd, recordBuffer, at: offset)
            try io.fdatasync(fd)
        } catch {
            undoAppend(fd: fd, path: path, offset: offset, createdSegment: createdSegment, cause: error)
            throw writeFailure(error, path: path)
        }

        let last = first + UInt64(frames.count) - 1
        stateLock.withLock {
            if createdSegment {
                published.segments.append(Segment(first: first, path: path, end: size))
            } else {
                published.segments[published.segments.count - 1].end += size
            }
            published.bytes += size
            published.next = last + 1
            stateLock.broadcast()
        }
        if createdSegment {
            // The previous segment was synced by its last append; it is complete.
            if activeFD >= 0 { io.close(activeFD) }
            activeFD = fd
        }
        return last
    }

    /// Creates a segment file and makes its name durable (directory fsync) before any
    /// record goes in, so that a synced record is never in a file a crash could unname.
    private func createSegment(_ path: String) throws(SpoolError) -> Int32 {
        let fd: Int32
        do throws(SystemCallError) {
            fd = try io.openFile(path, flags: O_RDWR | O_CREAT | O_EXCL, mode: 0o640)
        } catch {
            throw writeFailure(error, path: path)
        }
        do throws(SystemCallError) { try io.fsync(directoryFD) } catch {
            io.close(fd)
            do throws(SystemCallError) {
                try io.unlink(path)
                try io.fsync(directoryFD)
            } catch let cleanup {
                stop(
                    "could not remove the new segment \(path) after a failed directory sync (\(cleanup.call): \(errnoText(cleanup.code)))"
                )
            }
            throw writeFailure(error, path: directory)
        }
        return fd
    }

    private func writeFully(_ fd: Int32, _ bytes: [UInt8], at offset: Int64) throws(SystemCallError) {
        try bytes.withRawBytes { (raw) throws(SystemCallError) in
            var done = 0
            while done < raw.count {
                let n = try io.pwrite(fd, UnsafeRawBufferPointer(rebasing: raw[done...]), at: offset + Int64(done))
                // pwrite returns 0 only when it cannot make progress; report it as "no space".
                guard n > 0 else { throw SystemCallError("pwrite", ENOSPC) }
                done += n
            }
        }
    }

    /// Puts the files back as they were before a failed append: cuts the partial
    /// records (or removes the segment the append created) and syncs that. If this
    /// fails as well, the spool stops taking batches until it is reopened.
    private func undoAppend(fd: Int32, path: String, offset: Int64, createdSegment: Bool, cause: SystemCallError) {
        do throws(SystemCallError) {
            if createdSegment {
                io.close(fd)
                try io.unlink(path)
                try io.fsync(directoryFD)
            } else {
                try io.ftruncate(fd, to: offset)
                try io.fsync(fd)
            }
        } catch {
            stop(
                "after \(cause.call) failed (\(errnoText(cause.code))), removing the partial append from \(path) failed too (\(error.call): \(errnoText(error.code)))"
            )
        }
    }

    private func stop(_ reason: String) {
        stateLock.withLock { if published.stopReason == nil { published.stopReason = reason } }
    }

    private func writeFailure(_ error: SystemCallError, path: String) -> SpoolError {
        error.isNoSpace ? .diskFull(path: path) : .writeFailed(path: path, operation: error.call, errno: error.code)
    }

    // MARK: - Retention

    /// Deletes, oldest first, every whole segment whose batches are all at or before
    /// `appliedSequence` — the apply checkpoint, committed in the target database, so
    /// these batches will never be asked for again. The segment being written is never
    /// deleted, nor anything beyond the durable sequence. Each deletion is followed by a
    /// directory fsync, so a crash leaves the remaining segments a contiguous run.
    @discardableResult
    public func release(upTo appliedSequence: UInt64) throws(SpoolError) -> SpoolRelease {
        try writerLock.withLock { () throws(SpoolError) -> SpoolRelease in
            guard !published.closed else { throw .closed(path: directory) }
            let limit = min(appliedSequence, published.next - 1)
            var result = SpoolRelease(segmentsDeleted: 0, bytesFreed: 0)
            while published.segments.count > 1, published.segments[1].first - 1 <= limit {
                let segment = published.segments[0]
                do throws(SystemCallError) { try io.unlink(segment.path) } catch {
                    if error.code != ENOENT { throw .io(path: segment.path, operation: error.call, errno: error.code) }
                }
                stateLock.withLock {
                    published.segments.removeFirst()
                    published.bytes -= segment.end
                }
                result.segmentsDeleted += 1
                result.bytesFreed += segment.end
                try sys(directory) { () throws(SystemCallError) in try io.fsync(directoryFD) }
            }
            return result
        }
    }

    // MARK: - State

    public var status: SpoolStatus {
        stateLock.withLock {
            let holdsAny = published.segments.first.map { $0.first < published.next } ?? false
            return SpoolStatus(
                stream: stream, directory: directory, bytes: published.bytes, segments: published.segments.count,
                oldestSequence: holdsAny ? published.segments.first!.first : nil,
                newestSequence: holdsAny ? published.next - 1 : nil,
                durableSequence: published.next - 1, maximumBytes: options.maximumBytes,
                acceptsBatches: !published.closed && published.stopReason == nil)
        }
    }

    /// The highest durable batch (see `SpoolStatus.durableSequence`).
    public var durableSequence: UInt64 { stateLock.withLock { published.next - 1 } }

    /// Waits until a batch after `sequence` is durable, the spool is closed, or
    /// `timeout` passes; returns the durable sequence then. For a reader that has
    /// caught up (`SpoolCursor.next()` returned nil) and wants the next batch.
    public func waitForDurable(beyond sequence: UInt64, timeout: Duration) -> UInt64 {
        _ = stateLock.wait(timeout: timeout) { published.next - 1 > sequence || published.closed }
        return durableSequence
    }

    /// Releases the files and the directory lock. Appends and releases then fail
    /// with `closed`; so do cursors' next reads.
    public func close() {
        writerLock.withLock {
            guard !published.closed else { return }
            stateLock.withLock {
                published.closed = true
                stateLock.broadcast()
            }
            if activeFD >= 0 { io.close(activeFD) }
            activeFD = -1
            io.close(directoryFD)
            directoryFD = -1
        }
    }

    // MARK: - Reading

    /// A cursor over the durable batches from `sequence` on, in order.
    public func records(from sequence: UInt64) -> SpoolCursor {
        SpoolCursor(spool: self, from: sequence)
    }

    struct ReadView {
        var closed: Bool
        /// Everything below is durable.
        var next: UInt64
        /// The segment that holds the requested sequence, if the spool still has it.
        var segment: Segment?
        var oldest: UInt64?
    }

    func readView(containing sequence: UInt64) -> ReadView {
        stateLock.withLock {
            let segments = published.segments
            var low = 0
            var high = segments.count
            while low < high {  // first index whose segment starts after `sequence`
                let middle = (low + high) / 2
                if segments[middle].first <= sequence { low = middle + 1 } else { high = middle }
            }
            let holdsAny = segments.first.map { $0.first < published.next } ?? false
            return ReadView(
                closed: published.closed, next: published.next,
                segment: low > 0 ? segments[low - 1] : nil,
                oldest: holdsAny ? segments.first!.first : nil)
        }
    }

    // MARK: - Files

    private static func openOrCreateDirectory(_ directory: String, io: any SpoolIO) throws(SpoolError) -> Int32 {
        do throws(SystemCallError) { return try io.openDirectory(directory) } catch {
            guard error.code == ENOENT else { throw .io(path: directory, operation: error.call, errno: error.code) }
        }
        do throws(SystemCallError) { try io.mkdir(directory, mode: 0o750) } catch {
            guard error.code == EEXIST else { throw .io(path: directory, operation: error.call, errno: error.code) }
        }
        // The new directory's name must be durable before anything inside it is.
        let parent = parentDirectory(directory)
        try sys(parent) { () throws(SystemCallError) in
            let fd = try io.openDirectory(parent)
            defer { io.close(fd) }
            try io.fsync(fd)
        }
        return try sys(directory) { () throws(SystemCallError) in try io.openDirectory(directory) }
    }

    /// How long `open` keeps trying for a directory lock that is held.
    ///
    /// A lock held by a live agent is held for good, so waiting briefly changes
    /// nothing there. But `flock` belongs to the open file description, and a child
    /// being forked by another thread holds a copy of every descriptor until it execs
    /// (`O_CLOEXEC` closes them only then), so a spool closed and reopened at that moment
    /// can find its own lock still held for a few milliseconds.
    static let lockPatience: Duration = .seconds(1)

    private static func lockDirectory(_ fd: Int32, directory: String, io: any SpoolIO) throws(SpoolError) {
        let deadline = ContinuousClock.now + lockPatience
        while true {
            do throws(SystemCallError) {
                try io.lockExclusive(fd)
                return
            } catch {
                guard error.code == EWOULDBLOCK || error.code == EAGAIN else {
                    throw .io(path: directory, operation: error.call, errno: error.code)
                }
                guard ContinuousClock.now < deadline else { throw .locked(path: directory) }
                usleep(10_000)
            }
        }
    }

    private static func readIdentity(_ path: String, stream: StreamID, io: any SpoolIO) throws(SpoolError)
        -> SpoolIdentity
    {
        let bytes = try sys(path) { () throws(SystemCallError) -> [UInt8]? in
            let fd = try io.openFile(path, flags: O_RDONLY, mode: 0)
            defer { io.close(fd) }
            let size = try io.fileSize(fd)
            guard size <= 4096 else { return nil }
            var bytes = [UInt8](repeating: 0, count: Int(size))
            var got = 0
            while got < bytes.count {
                let n = try bytes.withMutableRawBytes { (raw) throws(SystemCallError) in
                    try io.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[got...]), at: Int64(got))
                }
                if n == 0 { break }
                got += n
            }
            return Array(bytes[..<got])
        }
        guard let bytes else { throw .notASpool(path: path, reason: "the identity file is larger than 4 KiB") }
        switch SpoolIdentity.parse(String(decoding: bytes, as: UTF8.self)) {
        case .failure(.unsupported(let version)):
            throw .unsupportedFormat(path: path, version: version)
        case .failure(.malformed(let reason)):
            throw .notASpool(path: path, reason: reason)
        case .success(let identity):
            guard identity.stream == stream.rawValue else {
                throw .streamMismatch(path: path, expected: stream, found: identity.stream)
            }
            return identity
        }
    }

    /// Written to a temporary name, synced, renamed into place and the directory
    /// synced: a crash leaves either no identity (and an ignorable temporary) or a
    /// complete one, never a half-written file that would make the spool unreadable.
    private static func writeIdentity(_ identity: SpoolIdentity, directory: String, directoryFD: Int32, io: any SpoolIO)
        throws(SpoolError)
    {
        let temporary = join(directory, SpoolFormat.identityTemporaryName)
        let final = join(directory, SpoolFormat.identityFileName)
        do throws(SystemCallError) {
            let fd = try io.openFile(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o640)
            defer { io.close(fd) }
            let bytes = Array(identity.text.utf8)
            var done = 0
            while done < bytes.count {
                let n = try bytes.withRawBytes { (raw) throws(SystemCallError) in
                    try io.pwrite(fd, UnsafeRawBufferPointer(rebasing: raw[done...]), at: Int64(done))
                }
                guard n > 0 else { throw SystemCallError("pwrite", ENOSPC) }
                done += n
            }
            try io.fsync(fd)
            try io.rename(temporary, final)
            try io.fsync(directoryFD)
        } catch {
            if error.isNoSpace { throw .diskFull(path: final) }
            throw .io(path: final, operation: error.call, errno: error.code)
        }
    }
}

/// Runs file-system calls, naming `path` in the error if one fails.
func sys<T>(_ path: String, _ body: () throws(SystemCallError) -> T) throws(SpoolError) -> T {
    do throws(SystemCallError) { return try body() } catch {
        throw .io(path: path, operation: error.call, errno: error.code)
    }
}

func join(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
}

/// Without trailing slashes (except for "/" itself).
func normalized(_ path: String) -> String {
    var path = path
    while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
    return path
}

func parentDirectory(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}
