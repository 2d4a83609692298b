import Foundation
import PostgreSQLEngine

#if canImport(Glibc)
    import Glibc
#endif

/// The shipper's stream store: each streamed transaction's messages go to a file of
/// their own (`stream-<xid>.spill` in the capture's spill directory) and come back at
/// Stream Commit, so a transaction of any size costs the shipper disk, not memory.
///
/// Nothing here is fsynced and leftovers are deleted at start: after a crash the slot
/// resends every transaction that was not acknowledged, streamed ones from their start.
/// Record format: 4-byte little-endian length, then the message.
final class PgFileStreamStore: PgStreamStore, @unchecked Sendable {
    // @unchecked: owned by the capture thread's decoder.
    private struct Spill {
        var descriptor: Int32
        var path: String
        /// Bytes written to the file (the buffer comes after).
        var fileLength: Int64 = 0
        var buffer: [UInt8] = []
        /// Where each subtransaction's first message starts (file offset + buffer).
        var firstOffset: [UInt32: Int64] = [:]
    }

    let directory: String
    private var spills: [UInt32: Spill] = [:]
    static let bufferLimit = 1 << 20

    init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where name.hasSuffix(".spill") {
            unlink("\(directory)/\(name)")
        }
    }

    deinit { for xid in spills.keys { discard(xid: xid) } }

    var memoryBytes: Int { spills.values.reduce(0) { $0 + $1.buffer.count } }
    var transactionIDs: [UInt32] { spills.keys.sorted() }
    func contains(xid: UInt32) -> Bool { spills[xid] != nil }

    func open(xid: UInt32) throws {
        guard spills[xid] == nil else { return }
        let path = "\(directory)/stream-\(xid).spill"
        let descriptor = Glibc.open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw SpillError("cannot create \(path): \(String(cString: strerror(errno)))") }
        spills[xid] = Spill(descriptor: descriptor, path: path)
    }

    func append(_ bytes: [UInt8], xid: UInt32, subxid: UInt32?) throws {
        if spills[xid] == nil { try open(xid: xid) }
        guard var spill = spills[xid] else { return }
        spills[xid] = nil  // exclusive access while mutating
        defer { spills[xid] = spill }
        if let subxid, spill.firstOffset[subxid] == nil {
            spill.firstOffset[subxid] = spill.fileLength + Int64(spill.buffer.count)
        }
        let length = UInt32(bytes.count)
        spill.buffer += [
            UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 24),
        ]
        spill.buffer += bytes
        if spill.buffer.count >= Self.bufferLimit { try flush(&spill) }
    }

    func truncate(xid: UInt32, fromSubtransaction subxid: UInt32) throws {
        guard var spill = spills[xid], let offset = spill.firstOffset[subxid] else { return }
        try flush(&spill)
        guard ftruncate(spill.descriptor, off_t(offset)) == 0 else {
            throw SpillError("cannot truncate \(spill.path): \(String(cString: strerror(errno)))")
        }
        spill.fileLength = offset
        spill.firstOffset = spill.firstOffset.filter { $0.value < offset }
        spills[xid] = spill
    }

    func discard(xid: UInt32) {
        guard let spill = spills.removeValue(forKey: xid) else { return }
        close(spill.descriptor)
        unlink(spill.path)
    }

    func replay(xid: UInt32, _ body: ([UInt8]) throws -> Void) throws {
        guard var spill = spills[xid] else { return }
        defer { discard(xid: xid) }
        try flush(&spill)
        spills[xid] = spill
        var reader = Reader(descriptor: spill.descriptor, path: spill.path, end: spill.fileLength)
        while let message = try reader.next() { try body(message) }
    }

    private func flush(_ spill: inout Spill) throws {
        var written = 0
        while written < spill.buffer.count {
            let result = spill.buffer.withUnsafeBytes { raw in
                pwrite(
                    spill.descriptor, raw.baseAddress! + written, raw.count - written,
                    off_t(spill.fileLength) + off_t(written))
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw SpillError("cannot write \(spill.path): \(String(cString: strerror(errno)))")
            }
            written += result
        }
        spill.fileLength += Int64(written)
        spill.buffer.removeAll(keepingCapacity: false)
    }

    /// Reads records back with one large read at a time.
    private struct Reader {
        let descriptor: Int32
        let path: String
        let end: Int64
        var offset: Int64 = 0
        var chunk: [UInt8] = []
        var index = 0

        init(descriptor: Int32, path: String, end: Int64) {
            self.descriptor = descriptor
            self.path = path
            self.end = end
        }

        mutating func next() throws -> [UInt8]? {
            guard let header = try take(4) else { return nil }
            let length = Int(header[0]) | Int(header[1]) << 8 | Int(header[2]) << 16 | Int(header[3]) << 24
            guard let message = try take(length) else { throw SpillError("\(path) ends inside a record") }
            return message
        }

        private mutating func take(_ count: Int) throws -> [UInt8]? {
            var out: [UInt8] = []
            out.reserveCapacity(count)
            while out.count < count {
                if index == chunk.count {
                    guard offset < end else {
                        if out.isEmpty { return nil }
                        throw SpillError("\(path) ends inside a record")
                    }
                    let size = Int(min(Int64(1 << 20), end - offset))
                    chunk = [UInt8](repeating: 0, count: size)
                    let got = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress!, size, off_t(offset)) }
                    guard got > 0 else { throw SpillError("cannot read \(path): \(String(cString: strerror(errno)))") }
                    if got < size { chunk.removeLast(size - got) }
                    offset += Int64(got)
                    index = 0
                }
                let n = min(count - out.count, chunk.count - index)
                out += chunk[index..<(index + n)]
                index += n
            }
            return out
        }
    }
}

struct SpillError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
