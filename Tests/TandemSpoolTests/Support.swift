import Foundation
import TandemCodec
import TandemCore
import TandemTestSupport
import Testing

@testable import TandemSpool

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Temporary directories

// `TemporaryDirectory` is the test-support kit's (`TandemTestSupport`). Tests remove it with
// `defer { dir.remove() }`, which also keeps it alive to the end of the test.
extension TemporaryDirectory {
    /// The stream's spool directory under this root (not created).
    func spoolPath(_ stream: StreamID = testStream) -> String {
        Spool.streamDirectory(root: path, stream: stream)
    }
}

let testStream = StreamID("orders-pg")!
let otherStream = StreamID("billing-maria")!

// MARK: - Real batch frames

/// Real TNDB frames from the production encoder: one transaction with one insert
/// whose text column carries `payload` bytes, so sizes are easy to steer.
enum Frames {
    static let relation = Relation(
        name: RelationName(schema: "public", name: "orders"),
        columns: [
            Column(name: "id", type: .integer(bits: 64, signed: true), nativeType: "int8", isKey: true),
            Column(name: "note", type: .text, nativeType: "text"),
        ])

    static func batch(_ sequence: UInt64, stream: StreamID = testStream, payload: Int = 40) -> Batch {
        let note = String(repeating: Character(UnicodeScalar(UInt8(97 + Int(sequence % 26)))), count: payload)
        let transaction = Transaction(
            commitPosition: .postgresql(LSN(0x1_0000 + sequence * 0x100)),
            commitTime: Timestamp(microsecondsSinceEpoch: 1_700_000_000_000_000 + Int64(sequence) * 1000),
            changes: [RowChange(relation: relation, kind: .insert, new: [.int(Int64(sequence)), .text(note)])])
        return Batch(stream: stream, sequence: sequence, transactions: [transaction])
    }

    static func frame(
        _ sequence: UInt64, stream: StreamID = testStream, payload: Int = 40,
        compression: BatchCompression = .none
    ) -> [UInt8] {
        do {
            return try BatchEncoder(compression: compression).encode(batch(sequence, stream: stream, payload: payload))
                .frame
        } catch {
            fatalError("cannot encode test batch \(sequence): \(error)")
        }
    }

    static func frames(_ range: ClosedRange<UInt64>, payload: Int = 40) -> [[UInt8]] {
        range.map { frame($0, payload: payload) }
    }

    /// Checks a frame read back from the spool: byte-identical and decodable.
    static func expectValid(
        _ record: SpoolRecord, sequence: UInt64, payload: Int = 40,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(record.sequence == sequence, sourceLocation: sourceLocation)
        #expect(
            record.frame == frame(sequence, payload: payload), "frame \(sequence) differs",
            sourceLocation: sourceLocation)
        do {
            let header = try BatchDecoder().decodeHeader(record.frame)
            #expect(header.sequence == sequence && header.stream == testStream, sourceLocation: sourceLocation)
        } catch {
            Issue.record("decodeHeader refused frame \(sequence): \(error)", sourceLocation: sourceLocation)
        }
    }
}

// MARK: - Spool shortcuts

func openSpool(
    _ directory: String, stream: StreamID = testStream, options: SpoolOptions = SpoolOptions(),
    io: any SpoolIO = POSIXSpoolIO(), sourceLocation: SourceLocation = #_sourceLocation
) throws -> Spool {
    do {
        return try Spool.open(directory: directory, stream: stream, options: options, io: io)
    } catch {
        Issue.record("open failed: \(error) — \(error.hint)", sourceLocation: sourceLocation)
        throw error
    }
}

/// The error the body throws, or nil.
func spoolError<T>(_ body: () throws(SpoolError) -> T) -> SpoolError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}

func openError(_ directory: String, stream: StreamID = testStream, options: SpoolOptions = SpoolOptions())
    -> SpoolError?
{
    spoolError { () throws(SpoolError) in
        let spool = try Spool.open(directory: directory, stream: stream, options: options)
        spool.close()
    }
}

/// Every durable record from `sequence` on, as a cursor sees them now.
func readAll(_ spool: Spool, from sequence: UInt64) throws -> [SpoolRecord] {
    let cursor = spool.records(from: sequence)
    var out: [SpoolRecord] = []
    while let record = try cursor.next() { out.append(record) }
    return out
}

// MARK: - Files

func segmentNames(_ directory: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".seg") }.sorted()
}

func fileBytes(_ path: String) -> [UInt8] {
    [UInt8](FileManager.default.contents(atPath: path) ?? Data())
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    precondition(FileManager.default.createFile(atPath: path, contents: Data(bytes)), "cannot write \(path)")
}

func flipBit(_ path: String, at offset: Int, bit: Int = 3) {
    var bytes = fileBytes(path)
    bytes[offset] ^= UInt8(1 << bit)
    writeFile(path, bytes)
}

/// The whole directory, name → contents: "the spool is exactly as before".
func snapshot(_ directory: String) -> [String: [UInt8]] {
    var out: [String: [UInt8]] = [:]
    for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
        out[name] = fileBytes(directory + "/" + name)
    }
    return out
}

/// Size on disk of one record holding `frame`.
func recordSize(_ frame: [UInt8]) -> Int { frame.count + SpoolFormat.recordOverhead }

// MARK: - Fault injection

/// The real POSIX calls, with faults on demand:
/// - `failWrites(afterBytes:errno:)`: written bytes are counted from the moment it is
///   armed; the write that crosses the limit is cut short there and every later
///   write fails with `errno` until `heal()` — a disk that fills up at a chosen byte.
///   Truncate, sync and unlink keep working, so the spool can clean up.
/// - `crash(afterBytes:)`: the same, except that once that many bytes are written
///   *every* call fails (EIO): the process "died" and did nothing more to the disk.
/// - `failNext(_:errno:)`: the next call of that name fails once.
/// - `beforeFdatasync`: a hook run before each fdatasync (to hold a sync open).
final class FaultyIO: SpoolIO, @unchecked Sendable {
    enum Mode {
        case healthy
        case failWrites(afterBytes: Int, errno: Int32)
        case crash(afterBytes: Int)
    }

    private let real = POSIXSpoolIO()
    private let lock = NSLock()
    private var mode = Mode.healthy
    private var written = 0
    private var crashed = false
    private var failNextCalls: [String: Int32] = [:]
    private var callCounts: [String: Int] = [:]
    private var hook: (@Sendable () -> Void)?

    func failWrites(afterBytes limit: Int, errno code: Int32 = ENOSPC) {
        arm(.failWrites(afterBytes: limit, errno: code))
    }
    func crash(afterBytes limit: Int) { arm(.crash(afterBytes: limit)) }
    func heal() { arm(.healthy) }

    func failNext(_ call: String, errno code: Int32) {
        lock.lock()
        failNextCalls[call] = code
        lock.unlock()
    }

    var beforeFdatasync: (@Sendable () -> Void)? {
        get { lock.lock(); defer { lock.unlock() }; return hook }
        set { lock.lock(); hook = newValue; lock.unlock() }
    }

    func count(_ call: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return callCounts[call, default: 0]
    }

    var hasCrashed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return crashed
    }

    private func arm(_ newMode: Mode) {
        lock.lock()
        mode = newMode
        written = 0
        crashed = false
        lock.unlock()
    }

    /// Counts the call and throws if it is to fail.
    private func enter(_ call: String) throws(SystemCallError) {
        lock.lock()
        defer { lock.unlock() }
        callCounts[call, default: 0] += 1
        if crashed { throw SystemCallError(call, EIO) }
        if let code = failNextCalls.removeValue(forKey: call) { throw SystemCallError(call, code) }
    }

    func openFile(_ path: String, flags: Int32, mode: mode_t) throws(SystemCallError) -> Int32 {
        try enter("open")
        return try real.openFile(path, flags: flags, mode: mode)
    }

    func openDirectory(_ path: String) throws(SystemCallError) -> Int32 {
        try enter("openDirectory")
        return try real.openDirectory(path)
    }

    func close(_ fd: Int32) { real.close(fd) }

    func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(SystemCallError) -> Int {
        try enter("pwrite")
        lock.lock()
        var allowed = bytes.count
        switch mode {
        case .healthy:
            break
        case let .failWrites(limit, code):
            if written >= limit {
                lock.unlock()
                throw SystemCallError("pwrite", code)
            }
            allowed = min(allowed, limit - written)
        case let .crash(limit):
            if written >= limit {
                crashed = true
                lock.unlock()
                throw SystemCallError("pwrite", EIO)
            }
            allowed = min(allowed, limit - written)
        }
        lock.unlock()
        let n = try real.pwrite(fd, UnsafeRawBufferPointer(rebasing: bytes[..<allowed]), at: offset)
        lock.lock()
        written += n
        // A crash at the last byte of a write still lets that write finish; the
        // process dies right after (before the sync).
        if case .crash(let limit) = mode, written >= limit { crashed = true }
        lock.unlock()
        return n
    }

    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(SystemCallError) -> Int
    {
        try enter("pread")
        return try real.pread(fd, into: buffer, at: offset)
    }

    func fdatasync(_ fd: Int32) throws(SystemCallError) {
        beforeFdatasync?()
        try enter("fdatasync")
        try real.fdatasync(fd)
    }

    func fsync(_ fd: Int32) throws(SystemCallError) {
        try enter("fsync")
        try real.fsync(fd)
    }

    func ftruncate(_ fd: Int32, to length: Int64) throws(SystemCallError) {
        try enter("ftruncate")
        try real.ftruncate(fd, to: length)
    }

    func fileSize(_ fd: Int32) throws(SystemCallError) -> Int64 {
        try enter("fileSize")
        return try real.fileSize(fd)
    }

    func rename(_ from: String, _ to: String) throws(SystemCallError) {
        try enter("rename")
        try real.rename(from, to)
    }

    func unlink(_ path: String) throws(SystemCallError) {
        try enter("unlink")
        try real.unlink(path)
    }

    func mkdir(_ path: String, mode: mode_t) throws(SystemCallError) {
        try enter("mkdir")
        try real.mkdir(path, mode: mode)
    }

    func listDirectory(_ path: String) throws(SystemCallError) -> [String] {
        try enter("listDirectory")
        return try real.listDirectory(path)
    }

    func lockExclusive(_ fd: Int32) throws(SystemCallError) {
        try enter("flock")
        try real.lockExclusive(fd)
    }
}
