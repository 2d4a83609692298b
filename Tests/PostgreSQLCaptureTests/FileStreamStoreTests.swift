import Foundation
import PostgreSQLEngine
import Testing

@testable import PostgreSQLCapture

@Suite("spill files for streamed transactions")
struct FileStreamStoreTests {
    static func directory() -> String { NSTemporaryDirectory() + "tandem-spill-\(UUID().uuidString)" }

    @Test("messages come back in order across the write buffer; subtransaction aborts cut the file; files go away")
    func roundTripAndTruncate() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try PgFileStreamStore(directory: dir)
        try store.open(xid: 10)
        // Enough to pass the 1 MiB write buffer several times.
        var expected: [[UInt8]] = []
        for i in 0..<3000 {
            let message = [UInt8](repeating: UInt8(i % 251), count: 1000 + i % 7)
            expected.append(message)
            try store.append(message, xid: 10, subxid: i < 2000 ? 10 : 11)
            if i == 2500 { try store.append([9, 9, 9], xid: 20, subxid: 20) }
        }
        #expect(store.transactionIDs == [10, 20])
        #expect(store.memoryBytes < 2 << 20)
        try store.truncate(xid: 10, fromSubtransaction: 11)
        var replayed: [[UInt8]] = []
        try store.replay(xid: 10) { replayed.append($0) }
        #expect(replayed == Array(expected.prefix(2000)))
        #expect(store.transactionIDs == [20])
        store.discard(xid: 20)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(left.isEmpty, "spill files left behind: \(left)")
    }

    @Test("leftover spill files from a crash are removed at start")
    func leftoversRemoved() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/stream-7.spill"))
        _ = try PgFileStreamStore(directory: dir)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test("the decoder replays a streamed transaction from the file store in chunks")
    func decoderWithFileStore() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try PgFileStreamStore(directory: dir)
        var decoder = PgOutputDecoder(chunkChanges: 100, streamStore: store)
        var count = 0
        var chunks = 0
        func relation() -> [UInt8] {
            // Relation 1 "public.k" with one int8 key column.
            var b: [UInt8] =
                [UInt8(ascii: "R"), 0, 0, 0, 1] + Array("public".utf8) + [0] + Array("k".utf8) + [
                    0, UInt8(ascii: "d"), 0, 1,
                ]
            b += [1] + Array("id".utf8) + [0] + [0, 0, 0, 20] + [0xFF, 0xFF, 0xFF, 0xFF]
            return b
        }
        func insert(_ id: Int) -> [UInt8] {
            let text = Array(String(id).utf8)
            return [
                UInt8(ascii: "I"), 0, 0, 3, 0x84, 0, 0, 0, 1, UInt8(ascii: "N"), 0, 1, UInt8(ascii: "t"), 0, 0, 0,
                UInt8(text.count),
            ] + text
        }
        try decoder.feed(relation()) { _ in }
        try decoder.feed([UInt8(ascii: "S"), 0, 0, 3, 0x84, 1]) { _ in }
        for id in 1...1000 { try decoder.feed(insert(id)) { _ in } }
        try decoder.feed([UInt8(ascii: "E")]) { _ in }
        #expect(decoder.bufferedByteCount < 64 << 10)
        var commit: [UInt8] = [UInt8(ascii: "c"), 0, 0, 3, 0x84, 0]
        commit += [0, 0, 0, 0, 0, 0, 2, 0] + [0, 0, 0, 0, 0, 0, 2, 0x10] + [0, 0, 0, 0, 0, 0, 0, 0]
        try decoder.feed(commit) { event in
            switch event {
            case .chunk(let t): chunks += 1; count += t.changes.count
            case .transaction(let t, _, _): count += t.changes.count
            case .message: break
            }
        }
        #expect(count == 1000)
        #expect(chunks == 10)  // the 10th cut comes at the 1000th change; the final piece is then empty
        #expect(decoder.bufferedTransactionIDs.isEmpty)
    }
}
