import SeededRandom
import TandemCore
import Testing

@testable import MariaDBEngine

/// Damaged and hostile events: every one must be refused with a typed error (or, where the
/// format cannot tell, parse to something) and none may trap or over-allocate.
@Suite("hostile binlog input")
struct HostileInputTests {
    /// A deterministic generator, so a failure reproduces.
    static var validEvents: [[UInt8]] {
        let hello = Array("hello hello hello hello".utf8)
        let compressedRows = Bytes().u48(5).u16(1).packed(2).u8(3).u8(0x81).u8(UInt8(hello.count))
            .raw(BinlogEventParserTests.fixedZlib).bytes
        return [
            Events.gtid(1), Events.gtid(2, flags: 0x0E), Events.query("BEGIN"), Events.query("CREATE TABLE t (a int)"),
            Events.xid(5), Events.rotate("mariadb-bin.000009"), Events.tableMap(),
            BinlogEventParserTests.richTableMap(),
            Events.writeRow(id: 7, name: "seven"),
            Events.event(
                BinlogEventType.updateRowsV1,
                Bytes().u48(5).u16(1).packed(2).u8(3).u8(3)
                    .raw([0, 1, 0, 0, 0, 1, 0x61, 0, 2, 0, 0, 0, 1, 0x62]).bytes),
            Events.event(BinlogEventType.gtidList, Bytes().u32(1).u32(0).u32(1).u64(9).bytes),
            Events.event(BinlogEventType.binlogCheckpoint, Bytes().u32(3).text("b.1").bytes),
            Events.event(BinlogEventType.writeRowsCompressedV1, compressedRows),
        ]
    }

    @Test("every truncation of every event is refused")
    func truncations() {
        for event in Self.validEvents {
            for length in 0..<event.count {
                var parser = BinlogEventParser()
                #expect(throws: BinlogParseError.self, "\(event[4]) cut at \(length)") {
                    try parser.parse(Array(event[0..<length]))
                }
            }
        }
    }

    /// Bodies cut short but re-sealed (size and CRC consistent): the body parser itself
    /// must notice, by a typed error, never by trapping.
    @Test("every re-sealed body truncation is refused (or is still a complete body)")
    func resealedTruncations() {
        for event in Self.validEvents {
            let bodyLength = event.count - 19 - 4
            for cut in 1...bodyLength {
                let shorter = Array(event[0..<(event.count - 4 - cut)]) + [0, 0, 0, 0]
                var parser = BinlogEventParser()
                do {
                    _ = try parser.parse(Events.resealed(shorter))
                    // Only formats whose tail is free-form may still parse (names, statements, padding).
                    #expect(
                        [2, 4, 160, 161, 162, 163, 19, 23, 24].contains(event[4]),
                        "\(event[4]) parsed with \(cut) bytes cut")
                } catch {
                    // A typed BinlogParseError, and one of the body: the envelope was re-sealed,
                    // so a size or checksum complaint would mean the test did not reach the body.
                    switch error {
                    case .truncatedHeader, .eventSizeMismatch, .checksumMismatch:
                        Issue.record("\(event[4]) cut by \(cut): refused by the envelope, not the body: \(error)")
                    default: break
                    }
                }
            }
        }
    }

    @Test("every single-bit flip is caught by the CRC")
    func bitFlips() {
        for event in Self.validEvents {
            for bit in 0..<(event.count * 8) {
                var damaged = event
                damaged[bit / 8] ^= 1 << UInt8(bit % 8)
                var parser = BinlogEventParser()
                #expect(throws: BinlogParseError.self, "\(event[4]) bit \(bit)") { try parser.parse(damaged) }
            }
        }
    }

    @Test("random damage without a CRC never traps")
    func randomDamage() {
        var rng = SplitMix64(seed: 42)
        var parsed = 0, refused = 0
        for event in Self.validEvents {
            let body = Array(event[19..<(event.count - 4)])
            for _ in 0..<400 {
                var damaged = body
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    damaged[Int.random(in: 0..<damaged.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                var parser = BinlogEventParser(checksum: .none)
                let bytes = Events.event(event[4], damaged, checksum: false)
                do {
                    let parsedEvent = try parser.parse(bytes)
                    // Only the body was damaged: the header must read back as it was written.
                    if parsedEvent.header.typeCode == event[4], Int(parsedEvent.header.eventSize) == bytes.count {
                        parsed += 1
                    } else {
                        Issue.record("damaged body of \(event[4]) changed the header: \(parsedEvent.header)")
                    }
                } catch {
                    // Refused by the body parser; the intact header and size must not be blamed.
                    switch error {
                    case .truncatedHeader, .eventSizeMismatch, .checksumMismatch:
                        Issue.record("damaged body of \(event[4]) refused for its envelope: \(error)")
                    default: refused += 1
                    }
                }
            }
        }
        // Every round is counted only when it passed its check above, so the sum is not a given.
        #expect(parsed + refused == Self.validEvents.count * 400 && refused > 0)
    }

    @Test("lengths and counts pointing past the end are typed errors")
    func lengthsPastTheEnd() {
        var parser = BinlogEventParser()
        func refuses(_ type: UInt8, _ body: Bytes, _ note: Comment) {
            #expect(throws: BinlogParseError.self, note) { try parser.parse(Events.event(type, body.bytes)) }
        }
        refuses(BinlogEventType.gtidList, Bytes().u32(0x0FFF_FFFF), "GTID count")
        refuses(BinlogEventType.binlogCheckpoint, Bytes().u32(0xFFFF_FFFF).text("x"), "checkpoint name length")
        refuses(BinlogEventType.query, Bytes().u32(1).u32(0).u8(200).u16(0).u16(0).u8(0), "database length")
        refuses(BinlogEventType.query, Bytes().u32(1).u32(0).u8(0).u16(0).u16(0xFFFF).u8(0), "status length")
        refuses(BinlogEventType.query, Bytes().u32(1).u32(0).u8(1).u16(0).u16(0).text("d").u8(1), "database terminator")
        let tableHead = Bytes().u48(1).u16(0).u8(1).text("d").u8(0).u8(1).text("t").u8(0)
        refuses(19, tableHead.packed(1 << 40), "column count")
        refuses(19, tableHead.u8(254).u64(UInt64.max), "column count, 8 bytes")
        refuses(19, tableHead.u8(251), "NULL length marker")
        refuses(19, tableHead.packed(1).u8(3).packed(1 << 30), "metadata length")
        refuses(19, tableHead.packed(1).u8(3).packed(0), "null bitmap")
        refuses(19, tableHead.packed(1).u8(3).packed(0).u8(0).u8(4).packed(100).u8(1), "optional field length")
        refuses(
            19, tableHead.packed(1).u8(3).packed(0).u8(0).tlv(4, Bytes().packed(50).text("x")), "column name length")
        refuses(19, tableHead.packed(1).u8(3).packed(0).u8(0).tlv(6, Bytes().packed(1 << 30)), "member count")
        refuses(19, tableHead.packed(1).u8(3).packed(0).u8(0).tlv(8, Bytes().u8(254).u64(1 << 40)), "key column")
        refuses(BinlogEventType.writeRowsV1, Bytes().u48(1).u16(0).packed(1 << 40).u8(0xFF), "rows column count")
        refuses(BinlogEventType.updateRowsV1, Bytes().u48(1).u16(0).packed(9).u8(0xFF).u8(1), "after-image bitmap")
        refuses(BinlogEventType.writeRowsV2, Bytes().u48(1).u16(0).u16(0xFFFF), "extra data length")
        refuses(BinlogEventType.rotate, Bytes().u32(1), "rotate position")
        refuses(BinlogEventType.gtid, Bytes().u64(1).u32(0).u8(GTIDEvent.flagGroupCommitID), "commit id")
    }

    @Test("row decoding of random bytes never traps")
    func randomRows() throws {
        var parser = BinlogEventParser()
        guard case .tableMap(let map) = try parser.parse(BinlogEventParserTests.richTableMap()).body else {
            Issue.record("table map")
            return
        }
        let table = try BinlogTable(map)
        var rng = SplitMix64(seed: 7)
        var decoded = 0, refused = 0
        for round in 0..<3000 {
            let data = (0..<Int.random(in: 0...60, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let kind: RowsEvent.Kind = [.write, .update, .delete][round % 3]
            let present = (0..<7).map { _ in Bool.random(using: &rng) }
            let event = RowsEvent(
                kind: kind, tableID: 1, flags: 0, columnCount: 7, columnsPresent: present,
                columnsPresentAfter: kind == .update ? present : nil, rowData: data)
            do {
                let changes = try RowImageDecoder.changes(event, table: table)
                // Decoded: rows of this table, of the event's kind.
                let kindMatches = changes.allSatisfy { change in
                    switch kind {
                    case .write: change.kind == .insert
                    case .update: change.kind == .update
                    case .delete: change.kind == .delete
                    }
                }
                if kindMatches && changes.allSatisfy({ $0.relation == table.relation }) {
                    decoded += 1
                } else {
                    Issue.record("round \(round): \(kind) rows decoded to \(changes)")
                }
            } catch {
                // Refused for the row data (the only random part), not for the table or the event's shape.
                switch error {
                case .truncatedRow, .invalidValue, .emptyRowImage, .unsupportedColumn, .parse: refused += 1
                default: Issue.record("round \(round): random row data refused for something else: \(error)")
                }
            }
        }
        // Every round is counted only when it passed its check above, so the sum is not a given.
        #expect(decoded + refused == 3000 && refused > 0 && decoded > 0)
    }
}
