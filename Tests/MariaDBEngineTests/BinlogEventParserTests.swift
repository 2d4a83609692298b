import TandemCore
import Testing

@testable import MariaDBEngine

@Suite("binlog event parser")
struct BinlogEventParserTests {
    @Test("CRC-32 matches its standard check value")
    func checksumVectors() {
        #expect(Checksums.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(Checksums.crc32([]) == 0)
    }

    @Test("a repeated TABLE_MAP parses to the same event from the cache; any changed byte is parsed afresh")
    func tableMapCache() throws {
        var parser = BinlogEventParser()
        func map(_ bytes: [UInt8]) throws -> TableMapEvent? {
            guard case .tableMap(let map) = try parser.parse(bytes).body else { return nil }
            return map
        }
        let first = try #require(try map(Events.tableMap(5, table: "t")))
        #expect(first.table == "t" && first.tableID == 5)
        #expect(try map(Events.tableMap(5, table: "t")) == first)
        // Same id, same length, another table name (a reused id after DROP/CREATE): not the cached one.
        let renamed = try #require(try map(Events.tableMap(5, table: "u")))
        #expect(renamed.table == "u")
        #expect(try map(Events.tableMap(6, table: "t"))?.tableID == 6)
        // A corrupted body is still refused by its checksum, cached id or not.
        var corrupt = Events.tableMap(5, table: "u")
        corrupt[corrupt.count - 6] ^= 0xFF
        #expect(throws: BinlogParseError.self) { try parser.parse(corrupt) }
        // With checksums off, a body that differs from the cached one is parsed (and refused
        // when it no longer parses).
        var unchecked = BinlogEventParser(checksum: .none)
        let plain = Events.tableMap(5, table: "t")
        let withoutCRC = Array(plain.dropLast(4))
        var header = withoutCRC
        let size = UInt32(withoutCRC.count)
        for i in 0..<4 { header[9 + i] = UInt8(truncatingIfNeeded: size >> (8 * UInt32(i))) }
        guard case .tableMap(let ok) = try unchecked.parse(header).body else { Issue.record("not a table map"); return }
        #expect(ok.table == "t")
        var broken = header
        broken[BinlogEventHeader.length + 8] = 200  // the schema length runs past the body
        #expect(throws: BinlogParseError.self) { try unchecked.parse(broken) }
    }

    @Test("header fields, little-endian")
    func header() throws {
        let bytes = Events.event(
            BinlogEventType.xid, Bytes().u64(7).bytes, serverID: 0x0102_0304, timestamp: 0x0A0B_0C0D,
            logPosition: 0x1234, flags: 0x0020)
        var parser = BinlogEventParser()
        let event = try parser.parse(bytes)
        #expect(
            event.header
                == BinlogEventHeader(
                    timestamp: 0x0A0B_0C0D, typeCode: 16, serverID: 0x0102_0304,
                    eventSize: 31, logPosition: 0x1234, flags: 0x20))
        #expect(event.header.isArtificial && !event.header.isIgnorable)
        #expect(event.body == .xid(7))
    }

    @Test("FORMAT_DESCRIPTION: version, post-header lengths, checksum algorithm; in-use flag outside the CRC")
    func formatDescription() throws {
        var parser = BinlogEventParser(checksum: .none)
        let inUse = Events.formatDescription(flags: BinlogEventHeader.binlogInUseFlag)
        guard case .formatDescription(let fde) = try parser.parse(inUse).body else {
            Issue.record("not a format description")
            return
        }
        #expect(fde.binlogVersion == 4 && fde.serverVersion == "10.11.19-MariaDB-log" && fde.headerLength == 19)
        #expect(fde.checksum == .crc32 && parser.checksum == .crc32 && parser.format == fde)
        #expect(fde.postHeaderLengths.count == 171)
        #expect(fde.postHeaderLength(of: BinlogEventType.gtid) == 19 && fde.postHeaderLength(of: 200) == nil)
        // The same event after the server closed the file (flag cleared in place) still verifies.
        #expect(throws: Never.self) { try parser.parse(Events.formatDescription(flags: 0)) }
        // Any other flipped bit does not.
        var damaged = inUse
        damaged[17] ^= 0x02
        let damagedError = captured({ () throws(BinlogParseError) in try parser.parse(damaged) })
        guard case .checksumMismatch(type: 15, _, _) = damagedError else {
            Issue.record("a flipped flag bit other than in-use must fail the CRC")
            return
        }

        var off = BinlogEventParser()
        guard case .formatDescription(let none) = try off.parse(Events.formatDescription(algorithm: 0)).body else {
            Issue.record("not a format description")
            return
        }
        #expect(none.checksum == .none && off.checksum == .none && none.postHeaderLengths.count == 171)
        // Events after it then carry no trailer.
        #expect(try off.parse(Events.xid(3, timestamp: 1).dropLast(4).resized()).body == .xid(3))

        #expect(throws: BinlogParseError.unsupportedChecksumAlgorithm(7)) {
            try off.parse(Events.formatDescription(algorithm: 7))
        }
        #expect(throws: BinlogParseError.unsupportedBinlogVersion(3)) {
            try off.parse(Events.formatDescription(binlogVersion: 3))
        }
        #expect(throws: BinlogParseError.unsupportedHeaderLength(23)) {
            try off.parse(Events.formatDescription(headerLength: 23))
        }
        // A pre-checksum server (MySQL 5.5) has no algorithm byte: everything after the header
        // length is the post-header array (our builder's trailing five bytes included).
        guard case .formatDescription(let old) = try off.parse(Events.formatDescription(version: "5.5.62-log")).body
        else {
            Issue.record("not a format description")
            return
        }
        #expect(old.checksum == .none && old.postHeaderLengths.count == 171 + 5)
        #expect(
            BinlogEventParser.isChecksumAware("5.3.0-MariaDB") && !BinlogEventParser.isChecksumAware("5.2.9-MariaDB"))
        #expect(BinlogEventParser.isChecksumAware("5.6.1") && !BinlogEventParser.isChecksumAware("5.6.0"))
        #expect(BinlogEventParser.isChecksumAware("garbage"))
    }

    @Test("ROTATE, XID, GTID_LIST, BINLOG_CHECKPOINT, HEARTBEAT, ANNOTATE_ROWS, unknown types")
    func smallEvents() throws {
        var parser = BinlogEventParser()
        #expect(
            try parser.parse(Events.rotate("mariadb-bin.000002", position: 4)).body
                == .rotate(RotateEvent(position: 4, fileName: "mariadb-bin.000002")))
        #expect(try parser.parse(Events.xid(0xDEAD_BEEF_0000_0001)).body == .xid(0xDEAD_BEEF_0000_0001))
        let list = Bytes().u32(2 | 0x1000_0000).u32(0).u32(1).u64(100).u32(3).u32(2).u64(7).bytes
        #expect(
            try parser.parse(Events.event(BinlogEventType.gtidList, list)).body
                == .gtidList(
                    GTIDListEvent(
                        gtids: [
                            MariaDBGTID(domain: 0, server: 1, sequence: 100),
                            MariaDBGTID(domain: 3, server: 2, sequence: 7),
                        ],
                        flags: 1)))
        // The server's empty list carries padding after the count.
        #expect(
            try parser.parse(Events.event(BinlogEventType.gtidList, [0, 0, 0, 0, 0, 0])).body
                == .gtidList(GTIDListEvent(gtids: [])))
        let checkpoint = Bytes().u32(5).text("bin.1").bytes
        #expect(
            try parser.parse(Events.event(BinlogEventType.binlogCheckpoint, checkpoint)).body
                == .binlogCheckpoint(fileName: "bin.1"))
        #expect(
            try parser.parse(Events.event(BinlogEventType.heartbeat, Array("bin.9".utf8))).body
                == .heartbeat(fileName: "bin.9"))
        #expect(
            try parser.parse(Events.event(BinlogEventType.annotateRows, [0x49, 0xFF])).body
                == .annotateRows(statement: [0x49, 0xFF]))
        #expect(try parser.parse(Events.event(200, [1, 2, 3])).body == .other(type: 200))
        #expect(try parser.parse(Events.event(BinlogEventType.incident, [1, 0, 0])).body == .other(type: 26))
    }

    @Test("GTID: plain, with commit id, XA, extra flags")
    func gtid() throws {
        var parser = BinlogEventParser()
        #expect(
            try parser.parse(Events.gtid(9, domain: 2, flags: 0x29)).body
                == .gtid(GTIDEvent(sequence: 9, domain: 2, flags: 0x29)))
        let grouped = try parser.parse(
            Events.gtid(10, flags: GTIDEvent.flagGroupCommitID | GTIDEvent.flagTransactional))
        #expect(grouped.body == .gtid(GTIDEvent(sequence: 10, domain: 0, flags: 6, commitID: 99)))
        let xa = Bytes().u64(11).u32(0).u8(GTIDEvent.flagPreparedXA).u32(1).u8(2).u8(1).raw([7, 8, 9]).bytes
        #expect(
            try parser.parse(Events.event(BinlogEventType.gtid, xa)).body
                == .gtid(
                    GTIDEvent(
                        sequence: 11, domain: 0, flags: 0x40,
                        xa: GTIDEvent.XAID(formatID: 1, gtrid: [7, 8], bqual: [9]))))
        let extra = Bytes().u64(12).u32(0).u8(0).u8(GTIDEvent.extraFlagMultiEngine | GTIDEvent.extraFlagCommitAlter)
            .u8(2).u64(5).bytes
        #expect(
            try parser.parse(Events.event(BinlogEventType.gtid, extra)).body
                == .gtid(
                    GTIDEvent(
                        sequence: 12, domain: 0, flags: 0, extraFlags: 5, extraEngines: 2, startAlterSequence: 5)))
        let badXA = Bytes().u64(1).u32(0).u8(GTIDEvent.flagCompletedXA).u32(1).u8(65).u8(0).raw(
            [UInt8](repeating: 0, count: 65))
        #expect(throws: BinlogParseError.self) { try parser.parse(Events.event(BinlogEventType.gtid, badXA.bytes)) }
        let event = GTIDEvent(sequence: 3, domain: 1, flags: 0x21)
        #expect(event.isStandalone && event.isDDL && !event.isTransactional && !event.isXA)
        #expect(event.gtid(serverID: 4) == MariaDBGTID(domain: 1, server: 4, sequence: 3))
    }

    @Test("QUERY with status variables and database; post-header longer than 13 is skipped")
    func query() throws {
        var parser = BinlogEventParser()
        guard case .query(let q) = try parser.parse(Events.query("BEGIN", database: "shop")).body else {
            Issue.record("not a query")
            return
        }
        #expect(
            q
                == QueryEvent(
                    threadID: 42, executionTime: 0, errorCode: 0, statusVariables: [0, 0, 0, 0, 0],
                    database: "shop", statement: Array("BEGIN".utf8)))
        #expect(q.statementText == "BEGIN")
        var longer = Events.mariaDBPostHeaders
        longer[1] = 15
        _ = try parser.parse(Events.formatDescription(postHeaders: longer))
        let body = Bytes().u32(1).u32(2).u8(0).u16(3).u16(0).u16(0xFFFF).u8(0).text("COMMIT").bytes
        guard case .query(let q2) = try parser.parse(Events.event(2, body)).body else {
            Issue.record("not a query")
            return
        }
        #expect(q2.threadID == 1 && q2.executionTime == 2 && q2.errorCode == 3 && q2.statementText == "COMMIT")
        var shorter = Events.mariaDBPostHeaders
        shorter[1] = 11
        _ = try parser.parse(Events.formatDescription(postHeaders: shorter))
        #expect(throws: BinlogParseError.postHeaderTooShort(event: 2, length: 11, minimum: 13)) {
            try parser.parse(Events.query("x"))
        }
    }

    /// A map with every optional metadata field MariaDB writes, plus one it does not.
    static func richTableMap(tableID: UInt64 = 0x0000_1234_5678) -> [UInt8] {
        // id INT UNSIGNED, s CHAR(255) utf8mb4, b BLOB, e ENUM, st SET, g POINT, d DECIMAL(10,2)
        let types: [UInt8] = [3, 254, 252, 254, 254, 255, 246]
        let metadata = Bytes().raw([0xCE, 0xFC]).u8(2).raw([0xF7, 0x01]).raw([0xF8, 0x01]).u8(4).raw([10, 2])
        let optional = Bytes()
            .tlv(1, Bytes().u8(0b1000_0000))
            .tlv(2, Bytes().packed(45).packed(1).packed(63).packed(2).packed(63))
            .tlv(
                4, Bytes().lstring("id").lstring("s").lstring("b").lstring("e").lstring("st").lstring("g").lstring("d")
            )
            .tlv(5, Bytes().packed(2).lstring("x").lstring("y"))
            .tlv(6, Bytes().packed(3).lstring("a").lstring("b").lstring("ç"))
            .tlv(7, Bytes().packed(1))
            .tlv(9, Bytes().packed(0).packed(0).packed(1).packed(3))
            .tlv(10, Bytes().packed(45))
            .tlv(99, Bytes().raw([1, 2, 3]))
        let body = Bytes().u48(tableID).u16(1).u8(4).text("shop").u8(0).u8(5).text("items").u8(0)
            .packed(UInt64(types.count)).raw(types).packed(UInt64(metadata.bytes.count)).raw(metadata.bytes)
            .u8(0b0111_1110).raw(optional.bytes)
        return Events.event(BinlogEventType.tableMap, body.bytes)
    }

    @Test("TABLE_MAP with full optional metadata")
    func tableMap() throws {
        var parser = BinlogEventParser()
        guard case .tableMap(let map) = try parser.parse(Self.richTableMap()).body else {
            Issue.record("not a table map")
            return
        }
        #expect(map.tableID == 0x1234_5678 && map.flags == 1 && map.schema == "shop" && map.table == "items")
        #expect(map.columnTypes == [3, 254, 252, 254, 254, 255, 246])
        #expect(map.columnMetadata == [0, 0xFCCE, 2, 0x01F7, 0x01F8, 4, 0x020A])
        #expect(map.nullable == [false, true, true, true, true, true, true])
        let o = map.optional
        #expect(o.unsignedBitmap == [0x80])
        #expect(o.characterCollations == .defaultWithExceptions(default: 45, exceptions: [1: 63, 2: 63]))
        #expect(o.characterCollations?.collation(at: 0) == 45 && o.characterCollations?.collation(at: 2) == 63)
        #expect(o.columnNames == ["id", "s", "b", "e", "st", "g", "d"])
        #expect(o.setMembers == [[Array("x".utf8), Array("y".utf8)]])
        #expect(o.enumMembers == [[Array("a".utf8), Array("b".utf8), Array("ç".utf8)]])
        #expect(o.geometryTypes == [1])
        #expect(o.primaryKey == [.init(column: 0, prefix: 0), .init(column: 1, prefix: 3)])
        #expect(o.enumAndSetCollations == .defaultWithExceptions(default: 45, exceptions: [:]))
        #expect(o.unknownFields == [99])

        // Servers declaring a 6-byte post-header write 4-byte table ids.
        var old = Events.mariaDBPostHeaders
        old[18] = 6
        _ = try parser.parse(Events.formatDescription(postHeaders: old))
        let body = Bytes().u32(9).u16(0).u8(1).text("d").u8(0).u8(1).text("t").u8(0).packed(1).u8(3).packed(0).u8(0)
        guard case .tableMap(let small) = try parser.parse(Events.event(19, body.bytes)).body else {
            Issue.record("not a table map")
            return
        }
        #expect(small.tableID == 9 && small.optional == TableMapOptionalMetadata())
    }

    @Test("TABLE_MAP refusals: unknown type, metadata length, name count")
    func tableMapRefusals() {
        var parser = BinlogEventParser()
        func map(types: [UInt8], metadata: [UInt8], optional: [UInt8] = []) -> [UInt8] {
            let body = Bytes().u48(1).u16(0).u8(1).text("d").u8(0).u8(1).text("t").u8(0).packed(UInt64(types.count))
                .raw(types).packed(UInt64(metadata.count)).raw(metadata).raw(
                    [UInt8](repeating: 0, count: (types.count + 7) / 8)
                )
                .raw(optional)
            return Events.event(19, body.bytes)
        }
        #expect(throws: BinlogParseError.unknownColumnType(column: 1, type: 100)) {
            try parser.parse(map(types: [3, 100], metadata: []))
        }
        #expect(throws: BinlogParseError.unknownColumnType(column: 0, type: 0)) {
            try parser.parse(map(types: [0], metadata: [0, 0]))
        }
        #expect(throws: BinlogParseError.metadataLengthMismatch(declared: 1, used: 2)) {
            try parser.parse(map(types: [15], metadata: [10]))
        }
        #expect(throws: BinlogParseError.metadataLengthMismatch(declared: 3, used: 2)) {
            try parser.parse(map(types: [15], metadata: [10, 0, 0]))
        }
        #expect(throws: BinlogParseError.self) {
            try parser.parse(map(types: [3, 3], metadata: [], optional: Bytes().tlv(4, Bytes().lstring("a")).bytes))
        }
        // A name that is not UTF-8.
        #expect(throws: BinlogParseError.self) {
            try parser.parse(map(types: [3], metadata: [], optional: Bytes().tlv(4, Bytes().packed(1).u8(0xFF)).bytes))
        }
    }

    @Test("rows events: write, update with two bitmaps, delete, version 2 with extra data")
    func rows() throws {
        var parser = BinlogEventParser()
        let write = Events.writeRow(5, id: 1, name: "ab")
        #expect(
            try parser.parse(write).body
                == .rows(
                    RowsEvent(
                        kind: .write, tableID: 5, flags: 1, columnCount: 2, columnsPresent: [true, true],
                        columnsPresentAfter: nil,
                        rowData: [0, 1, 0, 0, 0, 2, 0x61, 0x62])))
        let update = Bytes().u48(5).u16(0).packed(2).u8(0b01).u8(0b10).raw([0, 1, 0, 0, 0, 0, 1, 0x7A]).bytes
        #expect(
            try parser.parse(Events.event(BinlogEventType.updateRowsV1, update)).body
                == .rows(
                    RowsEvent(
                        kind: .update, tableID: 5, flags: 0, columnCount: 2, columnsPresent: [true, false],
                        columnsPresentAfter: [false, true], rowData: [0, 1, 0, 0, 0, 0, 1, 0x7A])))
        let delete = Bytes().u48(5).u16(1).packed(2).u8(0b11).bytes
        guard case .rows(let d) = try parser.parse(Events.event(BinlogEventType.deleteRowsV1, delete)).body else {
            Issue.record("not rows")
            return
        }
        #expect(d.kind == .delete && d.rowData.isEmpty && d.isStatementEnd)
        let v2 = Bytes().u48(5).u16(0).u16(5).raw([1, 2, 3]).packed(1).u8(1).raw([0, 9]).bytes
        guard case .rows(let w2) = try parser.parse(Events.event(BinlogEventType.writeRowsV2, v2)).body else {
            Issue.record("not rows")
            return
        }
        #expect(w2.kind == .write && w2.columnCount == 1 && w2.rowData == [0, 9])
        let badExtra = Bytes().u48(5).u16(0).u16(1).packed(1).u8(1).bytes
        #expect(throws: BinlogParseError.self) { try parser.parse(Events.event(BinlogEventType.writeRowsV2, badExtra)) }
    }

    static let fixedZlib: [UInt8] = [
        0x78, 0xDA, 0xCB, 0x48, 0xCD, 0xC9, 0xC9, 0x57, 0xC8, 0x40, 0x27, 0x01, 0x68, 0x03,
        0x08, 0xB1,
    ]  // "hello hello hello hello"

    @Test("compressed QUERY and rows events are inflated; bad headers and sizes are refused")
    func compressed() throws {
        var parser = BinlogEventParser()
        let hello = Array("hello hello hello hello".utf8)
        let payload = Bytes().u8(0x81).u8(UInt8(hello.count)).raw(Self.fixedZlib).bytes
        let queryBody = Bytes().u32(1).u32(0).u8(0).u16(0).u16(0).u8(0).raw(payload).bytes
        guard case .query(let q) = try parser.parse(Events.event(BinlogEventType.queryCompressed, queryBody)).body
        else {
            Issue.record("not a query")
            return
        }
        #expect(q.statement == hello && q.wasCompressed)
        // The length in two big-endian bytes.
        let wide = Bytes().u8(0x82).u8(0).u8(UInt8(hello.count)).raw(Self.fixedZlib).bytes
        let rows = Bytes().u48(5).u16(1).packed(1).u8(1).raw(wide).bytes
        guard case .rows(let r) = try parser.parse(Events.event(BinlogEventType.writeRowsCompressedV1, rows)).body
        else {
            Issue.record("not rows")
            return
        }
        #expect(r.rowData == hello && r.wasCompressed && r.kind == .write)
        for type in [BinlogEventType.updateRowsCompressedV1, BinlogEventType.deleteRowsCompressedV1] {
            let body = Bytes().u48(5).u16(1).packed(1).u8(1).raw(type == 167 ? [1] : []).raw(wide).bytes
            guard case .rows(let r) = try parser.parse(Events.event(type, body)).body else { continue }
            #expect(r.rowData == hello && r.kind == (type == 167 ? .update : .delete))
        }
        let v2 = Bytes().u48(5).u16(1).u16(2).packed(1).u8(1).raw(wide).bytes
        guard case .rows(let r2) = try parser.parse(Events.event(BinlogEventType.writeRowsCompressedV2, v2)).body else {
            Issue.record("not rows")
            return
        }
        #expect(r2.rowData == hello)

        func rowsWith(_ compressed: [UInt8]) -> [UInt8] {
            Events.event(
                BinlogEventType.writeRowsCompressedV1, Bytes().u48(5).u16(1).packed(1).u8(1).raw(compressed).bytes)
        }
        #expect(throws: BinlogParseError.badCompressionHeader(event: 166, byte: 0x01)) {
            try parser.parse(rowsWith([0x01, 23] + Self.fixedZlib))
        }
        #expect(throws: BinlogParseError.badCompressionHeader(event: 166, byte: 0x91)) {
            try parser.parse(rowsWith([0x91, 23] + Self.fixedZlib))
        }
        #expect(throws: BinlogParseError.badCompressionHeader(event: 166, byte: 0x85)) {
            try parser.parse(rowsWith([0x85, 0, 0, 0, 0, 23] + Self.fixedZlib))
        }
        #expect(throws: BinlogParseError.decompression(event: 166, .lengthMismatch(declared: 24, actual: 23))) {
            try parser.parse(rowsWith([0x81, 24] + Self.fixedZlib))
        }
        #expect(throws: BinlogParseError.decompression(event: 166, .outputTooLarge(limit: 22))) {
            try parser.parse(rowsWith([0x81, 22] + Self.fixedZlib))
        }
        var small = BinlogEventParser(maximumDecompressedSize: 1000)
        #expect(throws: BinlogParseError.decompressedSizeTooLarge(event: 166, declared: 0xFFFF_FFFF, limit: 1000)) {
            try small.parse(rowsWith([0x84, 0xFF, 0xFF, 0xFF, 0xFF] + Self.fixedZlib))
        }
    }

    @Test("framing: size mismatch, checksum mismatch, trailing bytes, short header")
    func framing() {
        var parser = BinlogEventParser()
        #expect(throws: BinlogParseError.truncatedHeader(length: 18)) {
            try parser.parse([UInt8](repeating: 0, count: 18))
        }
        let xid = Events.xid(1)
        #expect(throws: BinlogParseError.eventSizeMismatch(type: 16, declared: 31, actual: 32)) {
            try parser.parse(xid + [0])
        }
        var flipped = xid
        flipped[20] ^= 1
        let flippedError = captured({ () throws(BinlogParseError) in try parser.parse(flipped) })
        guard case .checksumMismatch(type: 16, _, _) = flippedError else {
            Issue.record("expected a checksum mismatch")
            return
        }
        let long = Events.event(BinlogEventType.xid, Bytes().u64(1).u8(0).bytes)
        #expect(throws: BinlogParseError.trailingBytes(event: 16, count: 1)) { try parser.parse(long) }
        let tiny = Events.event(BinlogEventType.xid, [], checksum: false)
        #expect(throws: BinlogParseError.truncated(event: 16, field: "checksum", offset: 19, needed: 4)) {
            try parser.parse(tiny)
        }
    }

    @Test("binlog files: magic, event boundaries, torn tail")
    func files() throws {
        let events = [Events.formatDescription(), Events.gtid(1), Events.xid(2)]
        let file = BinlogFile.magic + events.joined()
        let split = try BinlogFile.split(file)
        #expect(split.events.map { Array(file[$0]) } == events && split.incompleteTail == nil)
        let torn = try BinlogFile.split(Array(file.dropLast(3)))
        #expect(torn.events.count == 2 && torn.incompleteTail == 4 + events[0].count + events[1].count)
        #expect(try BinlogFile.split(BinlogFile.magic + [1, 2]).incompleteTail == 4)
        #expect(throws: BinlogParseError.badMagic) { try BinlogFile.split([0xFE, 0x62, 0x69]) }
        var bad = file
        bad[4 + 9] = 3
        bad[4 + 10] = 0
        #expect(throws: BinlogParseError.self) { try BinlogFile.split(bad) }
    }
}

/// The error a throwing call produced (nil if it did not throw).
func captured<T>(_ body: () throws(BinlogParseError) -> T) -> BinlogParseError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}

extension Array where Element == UInt8 {
    /// The event with its size field set to its length (after a test dropped the trailer).
    func resized() -> [UInt8] {
        var copy = self
        copy.replaceSubrange(9..<13, with: Bytes().u32(UInt32(count)).bytes)
        return copy
    }
}

extension ArraySlice where Element == UInt8 {
    func resized() -> [UInt8] { Array(self).resized() }
}
