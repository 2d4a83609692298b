import PostgreSQLEngine
import TandemCore
import Testing

@Suite("pgoutput decoder: large transactions in chunks")
struct PgOutputChunkingTests {
    static func ids(_ t: Transaction) -> [Value] { t.changes.compactMap { $0.new?.first } }

    @Test("a plain transaction is handed on every N changes; the commit brings the final chunk")
    func plainTransactionChunks() throws {
        var decoder = PgOutputDecoder(chunkChanges: 2)
        var events: [PgOutputEvent] = []
        try decoder.feed(Messages.relation(1, name: "k", columns: [(1, "id", 20, -1)]), into: &events)
        try decoder.feed(Messages.begin(final: 500, time: 7_000_000), into: &events)
        for id in 1...5 { try decoder.feed(Messages.insert(1, [.text("\(id)")]), into: &events) }
        #expect(events.count == 2)
        try decoder.feed(Messages.commit(lsn: 500, end: 540, time: 7_000_000), into: &events)
        #expect(events.count == 3)
        var pieces: [Transaction] = []
        for event in events {
            switch event {
            case .chunk(let t): pieces.append(t)
            case .transaction(let t, let end, _):
                pieces.append(t)
                #expect(end == LSN(540))
            case .message: Issue.record("unexpected message")
            }
        }
        #expect(
            pieces.map(\.chunk) == [
                TransactionChunk(index: 0, isFinal: false), TransactionChunk(index: 1, isFinal: false),
                TransactionChunk(index: 2, isFinal: true),
            ])
        #expect(pieces.flatMap(Self.ids) == (1...5).map { .int(Int64($0)) })
        #expect(Set(pieces.map(\.commitPosition)) == [.postgresql(LSN(500))])
        #expect(Set(pieces.map(\.commitTime)).count == 1)
        if case .chunk = events[0] {} else { Issue.record("the first event must be a chunk") }
    }

    @Test("a small transaction stays whole; a streamed one is cut while it is replayed at its commit")
    func streamedTransactionChunksOnlyAtCommit() throws {
        var decoder = PgOutputDecoder(chunkChanges: 3)
        var events: [PgOutputEvent] = []
        try decoder.feed(Messages.relation(1, name: "k", columns: [(1, "id", 20, -1)]), into: &events)
        try decoder.feed(Messages.begin(final: 100), into: &events)
        try decoder.feed(Messages.insert(1, [.text("1")]), into: &events)
        try decoder.feed(Messages.commit(lsn: 100, end: 110), into: &events)
        guard case .transaction(let small, _, _) = events.last, events.count == 1 else {
            Issue.record("no whole transaction"); return
        }
        #expect(small.chunk == .whole)
        events = []
        try decoder.feed(MessageBuilder("S").u32(900).u8(1).bytes, into: &events)
        for id in 1...7 { try decoder.feed(Messages.insert(1, [.text("\(id)")], xid: 900), into: &events) }
        try decoder.feed([UInt8(ascii: "E")], into: &events)
        #expect(events.isEmpty, "an uncommitted streamed transaction must not be handed on")
        try decoder.feed(MessageBuilder("c").u32(900).u8(0).u64(200).u64(230).i64(0).bytes, into: &events)
        let pieces = events.map { event -> Transaction? in
            switch event {
            case .chunk(let t), .transaction(let t, _, _): t
            case .message: nil
            }
        }.compactMap { $0 }
        #expect(pieces.map(\.changes.count) == [3, 3, 1])
        #expect(pieces.map(\.chunk.isFinal) == [false, false, true])
        #expect(pieces.flatMap(Self.ids) == (1...7).map { .int(Int64($0)) })
        #expect(Set(pieces.map(\.commitPosition)) == [.postgresql(LSN(200))])
    }
}
