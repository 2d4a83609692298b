import PostgreSQLEngine
import TandemCore
import Testing

@Suite("pgoutput decoder")
struct PgOutputDecoderTests {
    /// id int4 key, flag bool, big int8, r float4, d float8, amount numeric(40,2), name varchar,
    /// raw bytea, doc jsonb, uid uuid, born date, mood (custom type).
    static let relationBytes = Messages.relation(
        16384, name: "t",
        columns: [
            (1, "id", 23, -1), (0, "flag", 16, -1), (0, "big", 20, -1), (0, "r", 700, -1),
            (0, "d", 701, -1), (0, "amount", 1700, (40 << 16 | 2) + 4), (0, "name", 1043, 24),
            (0, "raw", 17, -1), (0, "doc", 3802, -1), (0, "uid", 2950, -1), (0, "born", 1082, -1),
            (0, "mood", 90001, -1),
        ])

    static func transaction(_ event: PgOutputEvent?) -> Transaction? {
        if case .transaction(let t, _, _) = event { t } else { nil }
    }

    @Test("a plain transaction: typed values, NULL, unchanged TOAST, times and positions")
    func plainTransaction() throws {
        var decoder = PgOutputDecoder()
        #expect(try decoder.feed(MessageBuilder("Y").u32(90001).string("public").string("mood").bytes) == nil)
        #expect(try decoder.feed(Self.relationBytes) == nil)
        #expect(try decoder.feed(Messages.begin(final: 0x1_0000_0100, time: 1_000_000)) == nil)
        #expect(try decoder.feed(MessageBuilder("O").u64(0x99).string("tandem").bytes) == nil)
        let row: [MessageBuilder.Col] = [
            .text("1"), .text("t"), .text("-9223372036854775808"), .text("1.1"), .text("0.1"),
            .text("12345678901234567890123456789012345678.91"), .text("Grüße"), .text("\\x00ff10"),
            .text("{\"a\": 1}"), .text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), .text("2024-02-29"), .text("happy"),
        ]
        _ = try decoder.feed(Messages.insert(16384, row))
        var second = row
        second[0] = .text("2"); second[1] = .null; second[3] = .text("NaN"); second[4] = .text("-Infinity")
        second[6] = .unchanged
        _ = try decoder.feed(
            MessageBuilder("U").u32(16384).char("K").tuple([.text("1")] + Array(repeating: .null, count: 11))
                .char("N").tuple(second).bytes)
        let event = try decoder.feed(Messages.commit(lsn: 0x1_0000_0100, end: 0x1_0000_0130, time: 1_000_000))
        guard case .transaction(let t, let end, let messages) = event else { Issue.record("no transaction"); return }
        #expect(end == LSN(0x1_0000_0130))
        #expect(messages.isEmpty)
        #expect(t.commitPosition == .postgresql(LSN(0x1_0000_0100)))
        #expect(t.commitTime == Timestamp(microsecondsSinceEpoch: 946_684_800_000_000 + 1_000_000))
        #expect(t.commitTime.description == "2000-01-01 00:00:01+00")
        #expect(t.origin == "tandem")
        #expect(t.changes.count == 2)
        let first: [Value] = [
            .int(1), .bool(true), .int(Int64.min), .float32(1.1), .float64(0.1),
            .decimal(ExactDecimal("12345678901234567890123456789012345678.91")!), .text("Grüße"),
            .bytes([0, 0xFF, 0x10]),
            .json("{\"a\": 1}"), .uuid(UUIDBytes(parsing: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")!),
            .native("2024-02-29"), .native("happy"),
        ]
        #expect(t.changes[0].kind == .insert && t.changes[0].new == first && t.changes[0].old == nil)
        var updated = first
        updated[0] = .int(2); updated[1] = .null; updated[3] = .float32(.nan); updated[4] = .float64(-.infinity)
        updated[6] = .unchanged
        #expect(t.changes[1].kind == .update)
        #expect(t.changes[1].new == updated)
        // The K image's non-key columns are "not known", never NULL.
        #expect(t.changes[1].old == [.int(1)] + Array(repeating: .unchanged, count: 11))
        #expect(t.changes[1].key == [.int(1)])

        let relation = t.changes[0].relation
        #expect(relation.name == RelationName(schema: "public", name: "t"))
        #expect(relation.hasKey && relation.keyColumnIndices == [0])
        #expect(
            relation.columns[0]
                == Column(
                    name: "id", type: .integer(bits: 32, signed: true), nativeType: "int4",
                    nativeTypeID: 23, isKey: true))
        #expect(relation.columns[5].type == .decimal(precision: 40, scale: 2))
        #expect(relation.columns[10].type == .date)
        #expect(
            relation.columns[11] == Column(name: "mood", type: .other, nativeType: "public.mood", nativeTypeID: 90001))
        #expect(!decoder.isInTransaction)
    }

    @Test("Delete, Truncate options, keyless relations and relation replacement")
    func deleteTruncateAndSchema() throws {
        var decoder = PgOutputDecoder()
        _ = try decoder.feed(Messages.relation(1, name: "k", columns: [(1, "id", 20, -1), (0, "v", 25, -1)]))
        _ = try decoder.feed(Messages.relation(2, name: "bag", identity: "n", columns: [(0, "v", 25, -1)]))
        _ = try decoder.feed(Messages.begin(final: 50))
        _ = try decoder.feed(MessageBuilder("D").u32(1).char("K").tuple([.text("7"), .null]).bytes)
        _ = try decoder.feed(Messages.insert(2, [.text("x")]))
        _ = try decoder.feed(MessageBuilder("T").u32(2).u8(3).u32(1).u32(2).bytes)
        let t = try #require(Self.transaction(try decoder.feed(Messages.commit(lsn: 50, end: 60))))
        #expect(
            t.changes.map(\.kind) == [
                .delete, .insert, .truncate(cascade: true, restartIdentity: true),
                .truncate(cascade: true, restartIdentity: true),
            ])
        #expect(t.changes[0].old == [.int(7), .unchanged])
        #expect(!t.changes[1].relation.hasKey)
        #expect(decoder.relations[2]?.replicaIdentity == UInt8(ascii: "n"))

        // A new Relation message (ALTER TABLE) replaces the cached shape.
        _ = try decoder.feed(
            Messages.relation(1, name: "k", columns: [(1, "id", 20, -1), (0, "v", 25, -1), (0, "w", 23, -1)]))
        _ = try decoder.feed(Messages.begin(final: 70))
        _ = try decoder.feed(Messages.insert(1, [.text("8"), .null, .text("3")]))
        let t2 = try #require(Self.transaction(try decoder.feed(Messages.commit(lsn: 70, end: 80))))
        #expect(t2.changes[0].new == [.int(8), .null, .int(3)])
        #expect(t2.changes[0].relation.columns.count == 3)
    }

    @Test("transactional and non-transactional logical messages")
    func logicalMessages() throws {
        var decoder = PgOutputDecoder()
        let loose = try decoder.feed(MessageBuilder("M").u8(0).u64(5).string("hb").u32(1).raw([9]).bytes)
        #expect(loose == .message(PgLogicalMessage(lsn: LSN(5), transactional: false, prefix: "hb", content: [9])))
        _ = try decoder.feed(Messages.begin(final: 10))
        _ = try decoder.feed(MessageBuilder("M").u8(1).u64(8).string("hb").u32(0).bytes)
        let event = try decoder.feed(Messages.commit(lsn: 10, end: 20))
        guard case .transaction(let t, _, let messages) = event else { Issue.record("no transaction"); return }
        #expect(t.changes.isEmpty)
        #expect(messages == [PgLogicalMessage(lsn: LSN(8), transactional: true, prefix: "hb", content: [])])
    }

    @Test("streamed transactions: buffered per xid, interleaved, committed, aborted, subtransaction abort")
    func streaming() throws {
        var decoder = PgOutputDecoder()
        _ = try decoder.feed(Messages.relation(1, name: "k", columns: [(1, "id", 20, -1)]))
        // Segment 1 of xid 900, with its own Relation message for a new table.
        let streamRelation = Messages.relation(3, name: "s", columns: [(1, "id", 23, -1)], xid: 900)
        let segment1 = [
            MessageBuilder("S").u32(900).u8(1).bytes, streamRelation,
            Messages.insert(3, [.text("1")], xid: 900), Messages.insert(1, [.text("2")], xid: 900),
            [UInt8(ascii: "E")],
        ]
        for m in segment1 { #expect(try decoder.feed(m) == nil) }
        let expectedBuffered = streamRelation.count + 2 * Messages.insert(3, [.text("1")], xid: 900).count
        #expect(decoder.bufferedByteCount == expectedBuffered)
        #expect(decoder.bufferedTransactionIDs == [900])
        // Not applied to the cache before the stream commits.
        #expect(decoder.relations[3] == nil)

        // A plain transaction in between.
        _ = try decoder.feed(Messages.begin(final: 100))
        _ = try decoder.feed(Messages.insert(1, [.text("50")]))
        let plain = try #require(Self.transaction(try decoder.feed(Messages.commit(lsn: 100, end: 110))))
        #expect(plain.changes.map(\.new) == [[.int(50)]])

        // xid 901 streams and aborts entirely; xid 900 loses a subtransaction.
        _ = try decoder.feed(MessageBuilder("S").u32(901).u8(1).bytes)
        _ = try decoder.feed(Messages.insert(1, [.text("666")], xid: 901))
        _ = try decoder.feed([UInt8(ascii: "E")])
        _ = try decoder.feed(MessageBuilder("S").u32(900).u8(0).bytes)
        _ = try decoder.feed(Messages.insert(1, [.text("3")], xid: 900))
        _ = try decoder.feed(Messages.insert(1, [.text("4")], xid: 905))
        _ = try decoder.feed(Messages.insert(1, [.text("5")], xid: 905))
        _ = try decoder.feed([UInt8(ascii: "E")])
        #expect(decoder.bufferedTransactionIDs == [900, 901])
        #expect(try decoder.feed(MessageBuilder("A").u32(901).u32(901).bytes) == nil)
        #expect(try decoder.feed(MessageBuilder("A").u32(900).u32(905).bytes) == nil)
        #expect(decoder.bufferedTransactionIDs == [900])

        let event = try decoder.feed(MessageBuilder("c").u32(900).u8(0).u64(200).u64(230).i64(0).bytes)
        let streamed = try #require(Self.transaction(event))
        #expect(streamed.commitPosition == .postgresql(LSN(200)))
        #expect(streamed.changes.map(\.new) == [[.int(1)], [.int(2)], [.int(3)]])
        #expect(streamed.changes[0].relation.name.name == "s")
        #expect(decoder.relations[3] != nil)
        #expect(decoder.bufferedByteCount == 0)
        #expect(decoder.bufferedTransactionIDs.isEmpty)
    }

    @Test("protocol violations and bad values are typed errors")
    func errors() throws {
        var decoder = PgOutputDecoder()
        #expect(throws: PgOutputDecodeError.commitWithoutBegin) { try decoder.feed(Messages.commit(lsn: 1, end: 2)) }
        #expect(throws: PgOutputDecodeError.outsideTransaction(messageType: UInt8(ascii: "I"))) {
            try decoder.feed(Messages.insert(1, [.text("1")]))
        }
        #expect(throws: PgOutputDecodeError.streamNotOpen) { try decoder.feed([UInt8(ascii: "E")]) }
        #expect(throws: PgOutputDecodeError.unknownStreamTransaction(xid: 4)) {
            try decoder.feed(MessageBuilder("A").u32(4).u32(4).bytes)
        }
        _ = try decoder.feed(Messages.relation(1, name: "k", columns: [(1, "id", 20, -1), (0, "b", 16, -1)]))
        _ = try decoder.feed(Messages.begin(final: 10))
        #expect(throws: PgOutputDecodeError.beginInsideTransaction(xid: 700)) {
            try decoder.feed(Messages.begin(final: 10))
        }
        #expect(throws: PgOutputDecodeError.unknownRelation(relid: 2)) {
            try decoder.feed(Messages.insert(2, [.text("1")]))
        }
        let name = RelationName(schema: "public", name: "k")
        #expect(throws: PgOutputDecodeError.columnCountMismatch(relation: name, expected: 2, got: 1)) {
            try decoder.feed(Messages.insert(1, [.text("1")]))
        }
        #expect(throws: PgOutputDecodeError.invalidValue(relation: name, column: "id", typeOID: 20, text: "1x")) {
            try decoder.feed(Messages.insert(1, [.text("1x"), .null]))
        }
        #expect(throws: PgOutputDecodeError.invalidValue(relation: name, column: "b", typeOID: 16, text: "true")) {
            try decoder.feed(Messages.insert(1, [.text("1"), .text("true")]))
        }
        #expect(throws: PgOutputDecodeError.binaryValueUnsupported(relation: name, column: "id")) {
            try decoder.feed(Messages.insert(1, [.binary([1]), .null]))
        }
        #expect(throws: PgOutputDecodeError.unknownRelation(relid: 9)) {
            try decoder.feed(MessageBuilder("T").u32(2).u8(0).u32(1).u32(9).bytes)
        }
        #expect(throws: PgOutputDecodeError.parse(.unknownMessageType(UInt8(ascii: "?")))) { try decoder.feed([63]) }
        // The refused messages above left nothing behind in the open transaction.
        _ = try decoder.feed(Messages.insert(1, [.text("5"), .text("f")]))
        let clean = try #require(Self.transaction(try decoder.feed(Messages.commit(lsn: 10, end: 11))))
        #expect(clean.changes.map(\.new) == [[.int(5), .bool(false)]])
        _ = try decoder.feed(Messages.begin(final: 10))
        #expect(throws: PgOutputDecodeError.commitLSNMismatch(begin: LSN(10), commit: LSN(11))) {
            try decoder.feed(Messages.commit(lsn: 11, end: 12))
        }
        #expect(throws: PgOutputDecodeError.timestampOutOfRange(postgresMicroseconds: Int64.max)) {
            _ = try decoder.feed(Messages.begin(final: 10))
            return try decoder.feed(Messages.commit(lsn: 10, end: 12, time: Int64.max))
        }
    }
}

@Suite("pgoutput built-in types")
struct PgOutputBuiltinTypeTests {
    @Test("built-ins without a neutral value are named, arrays carry their element type, values stay native")
    func namesAndArrays() throws {
        var decoder = PgOutputDecoder()
        _ = try decoder.feed(
            Messages.relation(
                1, name: "x",
                columns: [
                    (1, "id", 20, -1), (0, "ip", 869, -1),
                    (0, "tags", 1009, -1), (0, "odd", 99_999, -1),
                ]))
        _ = try decoder.feed(Messages.begin(final: 5))
        _ = try decoder.feed(Messages.insert(1, [.text("1"), .text("10.0.0.1/32"), .text("{a,\"b c\"}"), .text("?")]))
        guard case .transaction(let t, _, _) = try decoder.feed(Messages.commit(lsn: 5, end: 6)) else {
            Issue.record("no transaction"); return
        }
        let columns = t.changes[0].relation.columns
        #expect(columns.map(\.nativeType) == ["int8", "inet", "_text", "oid 99999"])
        #expect(columns.map(\.type) == [.integer(bits: 64, signed: true), .other, .array(.text), .other])
        #expect(t.changes[0].new == [.int(1), .native("10.0.0.1/32"), .native("{a,\"b c\"}"), .native("?")])
    }

    @Test("bytea must be hex output; float text must be plain decimal or PostgreSQL's specials")
    func strictText() throws {
        var decoder = PgOutputDecoder()
        _ = try decoder.feed(Messages.relation(1, name: "x", columns: [(0, "b", 17, -1), (0, "f", 701, -1)]))
        _ = try decoder.feed(Messages.begin(final: 5))
        let name = RelationName(schema: "public", name: "x")
        for (b, f, bad) in [
            ("\\x0", "1", ("b", 17, "\\x0")), ("\\001", "1", ("b", 17, "\\001")),
            ("\\xzz", "1", ("b", 17, "\\xzz")), ("\\x", "inf", ("f", 701, "inf")),
            ("\\x", "0x1p3", ("f", 701, "0x1p3")), ("\\x", "nan", ("f", 701, "nan")),
        ] {
            #expect(
                throws: PgOutputDecodeError.invalidValue(
                    relation: name, column: bad.0, typeOID: UInt32(bad.1), text: bad.2)
            ) {
                try decoder.feed(Messages.insert(1, [.text(b), .text(f)]))
            }
        }
        _ = try decoder.feed(Messages.insert(1, [.text("\\xDEADbeef"), .text("-1.5e-300")]))
        guard case .transaction(let t, _, _) = try decoder.feed(Messages.commit(lsn: 5, end: 6)) else {
            Issue.record("no transaction"); return
        }
        #expect(t.changes.map(\.new) == [[.bytes([0xDE, 0xAD, 0xBE, 0xEF]), .float64(-1.5e-300)]])
    }
}
