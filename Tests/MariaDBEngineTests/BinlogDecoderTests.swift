import TandemCore
import Testing

@testable import MariaDBEngine

@Suite("binlog decoder state machine")
struct BinlogDecoderTests {
    static let start = try! MariaDBGTIDList(parsing: "0-77-5,3-9-100")
    static let gtid6 = MariaDBGTID(domain: 0, server: 77, sequence: 6)

    /// Feeds events, returning the outputs; the first error is returned instead.
    static func run(_ events: [[UInt8]], decoder: inout BinlogDecoder) -> ([BinlogDecoderEvent], BinlogDecodeError?) {
        var outputs: [BinlogDecoderEvent] = []
        for event in events {
            do {
                if let output = try decoder.feed(event) { outputs.append(output) }
            } catch {
                return (outputs, error)
            }
        }
        return (outputs, nil)
    }

    static func run(_ events: [[UInt8]]) -> ([BinlogDecoderEvent], BinlogDecodeError?) {
        var decoder = BinlogDecoder(startPosition: start)
        return run(events, decoder: &decoder)
    }

    @Test("GTID, BEGIN, rows, XID: one transaction at the advanced position, with commit time and origin")
    func transaction() throws {
        var decoder = BinlogDecoder(startPosition: Self.start)
        let (outputs, error) = Self.run(
            [
                Events.formatDescription(), Events.gtid(6), Events.query("BEGIN"), Events.tableMap(5),
                Events.writeRow(5, id: 1, name: "a", flags: 0), Events.writeRow(5, id: -2, name: "bé"),
                Events.event(BinlogEventType.annotateRows, Array("INSERT …".utf8)),
                Events.xid(9, timestamp: 1_700_000_123),
            ], decoder: &decoder)
        #expect(error == nil)
        guard case .transaction(let t) = try #require(outputs.first) else {
            Issue.record("no transaction")
            return
        }
        #expect(outputs.count == 1)
        let expected = try MariaDBGTIDList(parsing: "0-77-6,3-9-100")
        #expect(t.commitPosition == .mariadb(expected) && decoder.gtidState == expected)
        #expect(t.commitTime == Timestamp(microsecondsSinceEpoch: 1_700_000_123_000_000))
        #expect(t.origin == "0-77")
        let relation = Relation(
            name: RelationName(schema: "db", name: "t"),
            columns: [
                Column(
                    name: "id", type: .integer(bits: 32, signed: true), nativeType: "int", nativeTypeID: 3, isKey: true,
                    isNullable: false),
                Column(name: "name", type: .text, nativeType: "varchar(10)", nativeTypeID: 15, isNullable: true),
            ])
        #expect(
            t.changes == [
                RowChange(relation: relation, kind: .insert, new: [.int(1), .text("a")]),
                RowChange(relation: relation, kind: .insert, new: [.int(-2), .text("bé")]),
            ])
        #expect(!decoder.isInGroup)
    }

    @Test("a row of tandem.seed_mark becomes the transaction's seed mark and ships no row; other rows stay")
    func seedMarkRows() throws {
        let (outputs, error) = Self.run([
            Events.gtid(6), Events.query("BEGIN"), Events.tableMap(5), Events.writeRow(5, id: 1, name: "a"),
            Events.tableMap(6, schema: "tandem", table: "seed_mark", second: "mark"),
            Events.writeRow(6, id: 1, name: "1f-2"), Events.xid(),
            Events.gtid(7), Events.query("BEGIN"),
            Events.tableMap(6, schema: "tandem", table: "seed_mark", second: "mark"),
            Events.writeRow(6, id: 1, name: "not a mark"), Events.writeRow(6, id: 1, name: "a-b"), Events.xid(),
        ])
        #expect(error == nil)
        guard outputs.count == 2, case .transaction(let first) = outputs[0], case .transaction(let second) = outputs[1]
        else {
            Issue.record("expected two transactions, got \(outputs)")
            return
        }
        #expect(first.changes.map(\.relation.name) == [RelationName(schema: "db", name: "t")])
        #expect(first.changes.first?.new == [.int(1), .text("a")])
        #expect(first.seedMarks == [SeedMark(run: 0x1f, chunk: 2)])
        #expect(second.changes.isEmpty)
        #expect(second.seedMarks == [SeedMark(run: 0xa, chunk: 0xb)])
    }

    @Test("a new domain is added to the position; other domains are kept")
    func newDomain() throws {
        let (outputs, _) = Self.run([
            Events.gtid(1, domain: 1), Events.tableMap(), Events.writeRow(id: 1, name: "x"), Events.xid(),
        ])
        guard case .transaction(let t) = outputs.first else {
            Issue.record("no transaction")
            return
        }
        #expect(t.commitPosition == .mariadb(try MariaDBGTIDList(parsing: "0-77-5,1-77-1,3-9-100")))
    }

    @Test("standalone DDL, DDL group with rows (CREATE … SELECT), COMMIT-terminated groups, SAVEPOINT")
    func groupShapes() throws {
        let ddl = GTIDEvent.flagStandalone | GTIDEvent.flagDDL
        let (outputs, error) = Self.run([
            Events.gtid(6, flags: ddl), Events.query("CREATE TABLE t (id int)"),
            Events.gtid(7, flags: GTIDEvent.flagDDL), Events.query("CREATE TABLE `db`.`c` (id int)"), Events.tableMap(),
            Events.writeRow(id: 1, name: "x"), Events.xid(),
            Events.gtid(8, flags: 0), Events.query("BEGIN"), Events.tableMap(), Events.writeRow(id: 2, name: "y"),
            Events.query("COMMIT"),
            Events.gtid(9), Events.query("BEGIN"), Events.query("SAVEPOINT `s`"), Events.tableMap(),
            Events.writeRow(id: 3, name: "z"), Events.xid(),
            Events.gtid(10), Events.query("BEGIN"), Events.xid(),
        ])
        #expect(error == nil)
        try #require(outputs.count == 5)
        #expect(outputs[0] == .ddl(statement: "CREATE TABLE t (id int)", gtid: Self.gtid6))
        #expect(
            outputs[1]
                == .ddl(
                    statement: "CREATE TABLE `db`.`c` (id int)", gtid: MariaDBGTID(domain: 0, server: 77, sequence: 7)))
        guard case .transaction(let myisam) = outputs[2], case .transaction(let savepoint) = outputs[3],
            case .transaction(let empty) = outputs[4]
        else {
            Issue.record("expected transactions, got \(outputs)")
            return
        }
        #expect(myisam.changes.map(\.new) == [[.int(2), .text("y")]])
        #expect(savepoint.changes.count == 1)
        let afterEmpty = try MariaDBGTIDList(parsing: "0-77-10,3-9-100")
        #expect(empty.changes.isEmpty && empty.commitPosition == .mariadb(afterEmpty))
    }

    @Test("order violations are typed errors")
    func orderErrors() throws {
        let gtid7 = MariaDBGTID(domain: 0, server: 77, sequence: 7)
        let cases: [([[UInt8]], BinlogDecodeError)] = [
            ([Events.xid()], .outsideGroup(type: 16)),
            ([Events.query("COMMIT")], .outsideGroup(type: 2)),
            ([Events.tableMap()], .outsideGroup(type: 19)),
            ([Events.writeRow(id: 1, name: "a")], .outsideGroup(type: 23)),
            ([Events.gtid(6), Events.gtid(7)], .gtidInsideGroup(open: Self.gtid6, new: gtid7)),
            (
                [Events.gtid(5)],
                .gtidOutOfOrder(
                    previous: MariaDBGTID(domain: 0, server: 77, sequence: 5),
                    new: MariaDBGTID(domain: 0, server: 77, sequence: 5))
            ),
            ([Events.gtid(6), Events.writeRow(id: 1, name: "a")], .unknownTableID(5)),
            // Table maps do not outlive their group.
            (
                [
                    Events.gtid(6), Events.tableMap(), Events.writeRow(id: 1, name: "a"), Events.xid(), Events.gtid(7),
                    Events.writeRow(id: 1, name: "a"),
                ], .unknownTableID(5)
            ),
            ([Events.gtid(6, flags: 1), Events.xid()], .terminatorInStandaloneGroup(gtid: Self.gtid6)),
            ([Events.gtid(6, flags: 1), Events.tableMap()], .rowsInStandaloneGroup(gtid: Self.gtid6)),
            (
                [Events.gtid(6, flags: 1), Events.query("DROP TABLE a"), Events.query("DROP TABLE b")],
                .outsideGroup(type: 2)
            ),
            (
                [Events.gtid(6), Events.query("INSERT INTO t VALUES (1)")],
                .unexpectedStatement(gtid: Self.gtid6, statement: "INSERT INTO t VALUES (1)")
            ),
            (
                [
                    Events.gtid(6), Events.query("BEGIN"), Events.tableMap(), Events.writeRow(id: 1, name: "a"),
                    Events.query("BEGIN"),
                ],
                .unexpectedStatement(gtid: Self.gtid6, statement: "BEGIN")
            ),
            (
                [Events.gtid(6), Events.query("ROLLBACK")],
                .unexpectedStatement(gtid: Self.gtid6, statement: "ROLLBACK")
            ),
            ([Events.gtid(6), Events.rotate("x.2")], .insideGroup(type: 4, gtid: Self.gtid6)),
            ([Events.gtid(6), Events.formatDescription()], .insideGroup(type: 15, gtid: Self.gtid6)),
            (
                [Events.gtid(6), Events.event(BinlogEventType.gtidList, [0, 0, 0, 0])],
                .insideGroup(type: 163, gtid: Self.gtid6)
            ),
            ([Events.gtid(6), Events.event(BinlogEventType.stop, [])], .insideGroup(type: 3, gtid: Self.gtid6)),
            ([Events.event(BinlogEventType.incident, [1, 0, 0])], .incident),
            ([Events.event(BinlogEventType.startEncryption, [1, 0, 0, 0, 0])], .encryptedBinlog),
            ([Events.event(BinlogEventType.userVariable, [1])], .unsupportedEvent(type: 14)),
            (
                [Events.event(BinlogEventType.xid, [1])],
                .parse(.truncated(event: 16, field: "xid", offset: 19, needed: 8))
            ),
        ]
        for (events, expected) in cases {
            let (_, error) = Self.run(events)
            #expect(error == expected, "\(events.map { $0[4] })")
        }
        let xa = Bytes().u64(6).u32(0).u8(GTIDEvent.flagPreparedXA).u32(1).u8(1).u8(0).u8(7).bytes
        #expect(Self.run([Events.event(BinlogEventType.gtid, xa)]).1 == .unsupportedXA(gtid: Self.gtid6))
    }

    @Test("ignorable and harmless events pass; empty statement-end rows events need no table")
    func harmless() throws {
        let (outputs, error) = Self.run([
            Events.event(BinlogEventType.stop, []), Events.event(200, [1], flags: BinlogEventHeader.ignorableFlag),
            Events.event(BinlogEventType.binlogCheckpoint, Bytes().u32(1).text("b").bytes),
            Events.gtid(6),
            Events.event(BinlogEventType.writeRowsV1, Bytes().u48(0xFF_FFFF).u16(1).packed(1).u8(1).bytes),
            Events.xid(),
        ])
        #expect(error == nil && outputs.count == 1)
    }

    @Test("the latest TABLE_MAP for an id wins")
    func latestTableMap() throws {
        let (outputs, error) = Self.run([
            Events.gtid(6), Events.tableMap(5, table: "first"), Events.tableMap(5, table: "second"),
            Events.writeRow(5, id: 1, name: "a"), Events.xid(),
        ])
        #expect(error == nil)
        guard case .transaction(let t) = outputs.first else {
            Issue.record("no transaction")
            return
        }
        #expect(t.changes.first?.relation.name.name == "second")
    }

    @Test("binlog file and position from the fake ROTATE, log_pos, real ROTATE and heartbeats")
    func positionTracking() throws {
        var decoder = BinlogDecoder(startPosition: Self.start)
        // The stream opens with an artificial ROTATE (log_pos 0) before any FORMAT_DESCRIPTION.
        _ = try decoder.feed(
            Events.rotate("mariadb-bin.000003", position: 1234, flags: BinlogEventHeader.artificialFlag))
        #expect(decoder.binlogFile == "mariadb-bin.000003" && decoder.binlogPosition == 1234)
        _ = try decoder.feed(
            Events.event(
                BinlogEventType.gtid, Bytes().u64(6).u32(0).u8(4).raw([0, 0, 0, 0, 0, 0]).bytes,
                logPosition: 1300))
        #expect(decoder.binlogPosition == 1300 && decoder.isInGroup)
        _ = try decoder.feed(Events.event(BinlogEventType.xid, Bytes().u64(1).bytes, logPosition: 1331))
        #expect(decoder.binlogPosition == 1331 && !decoder.isInGroup)
        _ = try decoder.feed(Events.rotate("mariadb-bin.000004", logPosition: 1380))
        #expect(decoder.binlogFile == "mariadb-bin.000004" && decoder.binlogPosition == 4)
        _ = try decoder.feed(
            Events.event(BinlogEventType.heartbeat, Array("mariadb-bin.000004".utf8), logPosition: 900))
        #expect(decoder.binlogFile == "mariadb-bin.000004" && decoder.binlogPosition == 900)
    }

    @Test("a TABLE_MAP the decoder cannot resolve fails the rows event that needs it")
    func unresolvable() throws {
        // Same shape as Events.tableMap, but the VARCHAR is latin1 (collation 8).
        let optional = Bytes().tlv(1, Bytes().u8(0)).tlv(2, Bytes().packed(8)).tlv(
            4, Bytes().lstring("id").lstring("name"))
        let body = Bytes().u48(5).u16(1).u8(2).text("db").u8(0).u8(1).text("t").u8(0).packed(2).raw([3, 15]).packed(2)
            .u16(10).u8(0b10).raw(optional.bytes)
        let (_, error) = Self.run([Events.gtid(6), Events.event(19, body.bytes), Events.writeRow(id: 1, name: "a")])
        guard case .unsupportedColumn(let table, "name", _) = error else {
            Issue.record("expected the latin1 column to be refused, got \(String(describing: error))")
            return
        }
        #expect(table == RelationName(schema: "db", name: "t"))
    }

    @Test("a FORMAT_DESCRIPTION fed already parsed is adopted: later raw events follow its checksum")
    func parsedFormatDescription() throws {
        var parser = BinlogEventParser()
        let description = try parser.parse(Events.formatDescription(algorithm: 0))
        var decoder = BinlogDecoder(startPosition: Self.start, checksum: .crc32)
        _ = try decoder.feed(description)
        #expect(decoder.parser.checksum == .none)
        _ = try decoder.feed(Events.event(BinlogEventType.gtid, Array(Events.gtid(6)[19..<38]), checksum: false))
        let output = try decoder.feed(Events.event(BinlogEventType.xid, Bytes().u64(1).bytes, checksum: false))
        guard case .transaction(let t) = output else {
            Issue.record("no transaction")
            return
        }
        #expect(t.changes.isEmpty)
    }

    @Test("statement keywords")
    func keywords() {
        #expect(BinlogDecoder.keyword("  begin") == "BEGIN")
        #expect(BinlogDecoder.keyword("COMMIT /* x */") == "COMMIT")
        #expect(BinlogDecoder.keyword("SAVEPOINT `a`") == "SAVEPOINT")
        #expect(BinlogDecoder.keyword("") == "")
    }
}

@Suite("binlog decoder: large transactions in chunks")
struct BinlogChunkingTests {
    @Test("a group is handed on every N changes; the XID brings the final chunk and the position advances once")
    func chunks() throws {
        var decoder = BinlogDecoder(startPosition: BinlogDecoderTests.start)
        decoder.chunkChanges = 2
        var events: [[UInt8]] = [Events.formatDescription(), Events.gtid(6), Events.query("BEGIN"), Events.tableMap(5)]
        for id in 1...5 { events.append(Events.writeRow(5, id: Int32(id), name: "r\(id)")) }
        events.append(Events.xid(9, timestamp: 1_700_000_123))
        let (outputs, error) = BinlogDecoderTests.run(events, decoder: &decoder)
        #expect(error == nil)
        var pieces: [Transaction] = []
        for output in outputs {
            switch output {
            case .chunk(let t): pieces.append(t)
            case .transaction(let t): pieces.append(t)
            case .ddl: Issue.record("unexpected DDL")
            }
        }
        #expect(pieces.map(\.changes.count) == [2, 2, 1])
        #expect(
            pieces.map(\.chunk) == [
                TransactionChunk(index: 0, isFinal: false), TransactionChunk(index: 1, isFinal: false),
                TransactionChunk(index: 2, isFinal: true),
            ])
        let expected = try MariaDBGTIDList(parsing: "0-77-6,3-9-100")
        #expect(Set(pieces.map(\.commitPosition)) == [.mariadb(expected)])
        #expect(decoder.gtidState == expected)
        if case .chunk = outputs.first {} else { Issue.record("the first output must be a chunk") }
        if case .transaction = outputs.last {} else { Issue.record("the last output must be the transaction") }
    }
}
