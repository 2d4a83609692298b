import Foundation
import MariaDBEngine
import MySQLClient
import TandemCore
import TandemTestSupport
import Testing

/// The decoder against what a real MariaDB 10.11 writes (the harness's server: ROW format,
/// full images, full metadata, GTID strict mode, CRC32 checksums). The raw events are read
/// from the server's binlog files, which hold exactly what a replica is sent.
@Suite("binlog decoder against a real MariaDB", .serialized)
struct BinlogIntegrationTests {
    static let typesTable = """
        CREATE TABLE d.types (
          id INT NOT NULL PRIMARY KEY,
          ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED,
          mi MEDIUMINT, mu MEDIUMINT UNSIGNED, ii INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
          d65 DECIMAL(65,30), d10 DECIMAL(10,2) UNSIGNED, d0 DECIMAL(65,0), d3 DECIMAL(3,3),
          f FLOAT, db DOUBLE,
          b1 BIT(1), b10 BIT(10), b64 BIT(64),
          dt DATE, tm TIME, tm1 TIME(1), tm2 TIME(2), tm4 TIME(4), tm6 TIME(6),
          dtm DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6),
          ts TIMESTAMP NULL, ts2 TIMESTAMP(2) NULL, ts6 TIMESTAMP(6) NULL,
          yr YEAR,
          c CHAR(10), c255 CHAR(255), vc VARCHAR(20), vc300 VARCHAR(300), v3 VARCHAR(10) CHARACTER SET utf8mb3,
          bn BINARY(4), vb VARBINARY(10),
          tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
          tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT,
          e ENUM('a','b','ç'), s SET('x','y','z'),
          j JSON,
          g POINT
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """

    static let d65Max = "99999999999999999999999999999999999.999999999999999999999999999999"
    static let d0Negative = "-12345678901234567890123456789012345678901234567890123456789012345"

    static let rowMax = """
        INSERT INTO d.types VALUES (1,
          127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
          '\(d65Max)', 99999999.99, '99999999999999999999999999999999999999999999999999999999999999999', 0.999,
          1.5, 1.7976931348623157e308,
          b'1', b'1010101010', 0xFFFFFFFFFFFFFFFF,
          '9999-12-31', '838:59:59', '838:59:58.9', '12:34:56.78', '-00:00:01.0001', '838:59:59.000000',
          '9999-12-31 23:59:59', '2024-02-29 12:34:56.789', '9999-12-31 23:59:59.999999',
          '2038-01-19 03:14:07', '2038-01-19 03:14:07.99', '2038-01-19 03:14:07.999999',
          2155,
          'héllo😀', REPEAT('é', 255), 'grüße 😀🎉', REPEAT('x', 300), 'abc€',
          'ab', X'00FF00',
          X'01', REPEAT('b', 300), REPEAT('m', 70000), REPEAT('l', 70000),
          'tiny😀', REPEAT('t', 300), REPEAT('м', 40000), 'long',
          'ç', 'x,z',
          '{"a": [1, 2], "b": "😀"}',
          ST_GeomFromText('POINT(1 2)'))
        """

    static let rowMin = """
        INSERT INTO d.types VALUES (2,
          -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
          '-\(d65Max)', 0.01, '\(d0Negative)', -0.5,
          -0.25, -2.2250738585072014e-308,
          b'0', b'0000000001', 0x8000000000000001,
          '1000-01-01', '-838:59:59', '-00:00:01.5', '-00:00:00.01', '-00:00:01.0001', '-00:00:01.500000',
          '1000-01-01 00:00:00', '1000-01-01 00:00:00.001', '1000-01-01 00:00:00.000001',
          '1970-01-01 00:00:01', '1970-01-01 00:00:01.01', '1970-01-01 00:00:01.000001',
          1901,
          '', '', '', '', '',
          X'00000000', '',
          '', '', '', '',
          '', '', '', '',
          'a', '',
          '[]',
          ST_GeomFromText('POINT(-1.5 0)'))
        """

    /// Zero values, legal only under a permissive sql_mode.
    static let rowZero = """
        INSERT INTO d.types (id, dt, dtm, dtm3, dtm6, ts, ts6, yr, e, tm6, d65, d0, f, db, b64)
        VALUES (4, '0000-00-00', '0000-00-00 00:00:00', '2024-00-00 00:00:00.000', '0000-00-00 00:00:00.000000',
          '0000-00-00 00:00:00', '0000-00-00 00:00:00.000000', 0, 'not a member', '-838:59:59.000000', 0, 0, 0, 0, 0)
        """

    @Test("every column type with edge values, NULLs and zero values, compared with SELECT")
    func typeCoverage() async throws {
        try await withMariaDB { server in
            let c = try server.connect()
            defer { c.close() }
            let recorder = PositionRecorder(c)
            try recorder.run("CREATE DATABASE d")
            try recorder.run(Self.typesTable)
            try recorder.run(Self.rowMax)
            try recorder.run(Self.rowMin)
            try recorder.run("INSERT INTO d.types (id) VALUES (3)")
            try c.execute("SET SESSION sql_mode = ''")
            try recorder.run(Self.rowZero)
            let selected = try c.rows("SELECT * FROM d.types ORDER BY id")
            let serverCharsets = try ServerBinlog.charsets(c)

            // The built-in collation table agrees with the server wherever it has an entry.
            for (id, name) in MariaDBCharsets.builtin.charsetNames {
                #expect(serverCharsets.charsetNames[id] == name, "collation \(id)")
            }

            let stream = DecodedStream(try ServerBinlog.events(of: server), charsets: serverCharsets)
            #expect(stream.error == nil)
            try #require(stream.outputs.count == 6)
            guard case .ddl(let createDatabase, let firstGTID) = stream.outputs[0],
                case .ddl(let createTable, _) = stream.outputs[1]
            else {
                Issue.record("expected two DDL events first, got \(stream.outputs.prefix(2))")
                return
            }
            #expect(createDatabase == "CREATE DATABASE d")
            #expect(createTable.hasPrefix("CREATE TABLE d.types"))
            #expect(firstGTID == MariaDBGTID(domain: 0, server: server.serverID, sequence: 1))

            let transactions = stream.transactions
            try #require(transactions.count == 4)
            let inserts = transactions.flatMap(\.changes)
            try #require(inserts.count == 4)
            #expect(inserts.allSatisfy { $0.kind == .insert && $0.old == nil })
            let relation = inserts[0].relation
            #expect(relation.name == RelationName(schema: "d", name: "types"))
            #expect(relation.keyColumnIndices == [0])
            #expect(relation.columns.count == 52)
            #expect(relation.columns[0].isNullable == false && relation.columns[1].isNullable)

            // Each decoded value renders exactly as SELECT shows it (floats: numerically).
            let rows = inserts.map { $0.new ?? [] }
            try #require(selected.count == 4)
            for (row, expected) in zip(rows, selected) {
                try #require(row.count == expected.count)
                for (index, column) in relation.columns.enumerated() {
                    switch (row[index], column.type) {
                    case (.float32(let f), _):
                        let text = String(decoding: expected[index] ?? [], as: UTF8.self)
                        let server = try #require(Float(text), "\(column.name): \(text)")
                        #expect(abs(f - server) <= abs(server) * 1e-5, "\(column.name)")
                    case (.float64(let d), _):
                        let text = String(decoding: expected[index] ?? [], as: UTF8.self)
                        #expect(d == Double(text), "\(column.name): \(text)")
                    default:
                        #expect(
                            SelectText.render(row[index], column: column) == expected[index],
                            "\(column.name) of row \(row[0]): \(row[index])")
                    }
                }
            }

            // And the edge values themselves, exactly.
            let max = rows[0], min = rows[1], nulls = rows[2], zero = rows[3]
            let indexes = Dictionary(uniqueKeysWithValues: relation.columns.enumerated().map { ($1.name, $0) })
            func column(_ name: String) -> Int {
                guard let index = indexes[name] else {
                    Issue.record("no column \(name)")
                    return 0
                }
                return index
            }
            let integers = ["ti", "tu", "si", "su", "mi", "mu", "ii", "iu", "bi", "bu"].map(column)
            #expect(
                integers.map { max[$0] } == [
                    .int(127), .uint(255), .int(32767), .uint(65535), .int(8_388_607), .uint(16_777_215),
                    .int(2_147_483_647), .uint(4_294_967_295), .int(Int64.max), .uint(UInt64.max),
                ])
            #expect(
                integers.map { min[$0] } == [
                    .int(-128), .uint(0), .int(-32768), .uint(0), .int(-8_388_608), .uint(0), .int(-2_147_483_648),
                    .uint(0),
                    .int(Int64.min), .uint(0),
                ])
            #expect(max[column("d65")] == .decimal(ExactDecimal(Self.d65Max)!))
            #expect(min[column("d65")] == .decimal(ExactDecimal("-" + Self.d65Max)!))
            #expect(min[column("d0")] == .decimal(ExactDecimal(Self.d0Negative)!))
            #expect(max[column("d10")] == .decimal(ExactDecimal("99999999.99")!))
            #expect(min[column("d3")] == .decimal(ExactDecimal("-0.500")!))
            #expect(zero[column("d65")] == .decimal(ExactDecimal("0." + String(repeating: "0", count: 30))!))
            #expect(max[column("f")] == .float32(1.5))
            #expect(max[column("db")] == .float64(Double.greatestFiniteMagnitude))
            #expect(min[column("f")] == .float32(-0.25))
            #expect(min[column("db")] == .float64(-Double.leastNormalMagnitude))
            #expect(max[column("b1")] == .bits(BitString(count: 1, bytes: [0x80])!))
            #expect(max[column("b10")] == .bits(BitString(count: 10, bytes: [0b1010_1010, 0b1000_0000])!))
            #expect(max[column("b64")] == .bits(BitString(count: 64, bytes: Array(repeating: 0xFF, count: 8))!))
            #expect(min[column("b1")] == .bits(BitString(count: 1, bytes: [0])!))
            #expect(min[column("b64")] == .bits(BitString(count: 64, bytes: [0x80, 0, 0, 0, 0, 0, 0, 1])!))
            #expect(max[column("dt")] == .date(CivilDate(year: 9999, month: 12, day: 31)))
            #expect(zero[column("dt")] == .date(CivilDate(year: 0, month: 0, day: 0)))
            #expect(max[column("tm")] == .time(TimeOfDay(hours: 838, minutes: 59, seconds: 59)))
            #expect(min[column("tm")] == .time(TimeOfDay(hours: 838, minutes: 59, seconds: 59, negative: true)))
            #expect(min[column("tm1")] == .time(TimeOfDay(microseconds: -1_500_000)))
            #expect(min[column("tm2")] == .time(TimeOfDay(microseconds: -10_000)))
            #expect(max[column("tm4")] == .time(TimeOfDay(microseconds: -1_000_100)))
            #expect(min[column("tm6")] == .time(TimeOfDay(microseconds: -1_500_000)))
            #expect(zero[column("tm6")] == .time(TimeOfDay(hours: 838, minutes: 59, seconds: 59, negative: true)))
            #expect(
                max[column("dtm6")]
                    == .timestamp(
                        CivilDateTime(
                            date: CivilDate(year: 9999, month: 12, day: 31),
                            time: TimeOfDay(hours: 23, minutes: 59, seconds: 59, microseconds: 999_999))))
            #expect(
                max[column("dtm3")]
                    == .timestamp(
                        CivilDateTime(
                            date: CivilDate(year: 2024, month: 2, day: 29),
                            time: TimeOfDay(hours: 12, minutes: 34, seconds: 56, microseconds: 789_000))))
            #expect(
                zero[column("dtm3")]
                    == .timestamp(
                        CivilDateTime(
                            date: CivilDate(year: 2024, month: 0, day: 0), time: TimeOfDay(microseconds: 0))))
            #expect(max[column("ts6")] == .timestampWithZone(Timestamp(microsecondsSinceEpoch: 2_147_483_647_999_999)))
            #expect(min[column("ts")] == .timestampWithZone(Timestamp(microsecondsSinceEpoch: 1_000_000)))
            #expect(zero[column("ts")] == .native("0000-00-00 00:00:00"))
            #expect(zero[column("ts6")] == .native("0000-00-00 00:00:00.000000"))
            #expect(max[column("yr")] == .int(2155) && min[column("yr")] == .int(1901) && zero[column("yr")] == .int(0))
            #expect(max[column("c")] == .text("héllo😀"))
            #expect(max[column("c255")] == .text(String(repeating: "é", count: 255)))
            #expect(max[column("vc")] == .text("grüße 😀🎉"))
            #expect(max[column("vc300")] == .text(String(repeating: "x", count: 300)))
            #expect(max[column("v3")] == .text("abc€"))
            #expect(max[column("bn")] == .bytes([0x61, 0x62, 0, 0]))
            #expect(min[column("bn")] == .bytes([0, 0, 0, 0]))
            #expect(max[column("vb")] == .bytes([0, 0xFF, 0]))
            #expect(max[column("mb")] == .bytes(Array(repeating: 0x6D, count: 70000)))
            #expect(max[column("mt")] == .text(String(repeating: "м", count: 40000)))
            #expect(min[column("tx")] == .text(""))
            #expect(max[column("e")] == .text("ç") && min[column("e")] == .text("a") && zero[column("e")] == .text(""))
            #expect(max[column("s")] == .text("x,z") && min[column("s")] == .text(""))
            #expect(max[column("j")] == .text("{\"a\": [1, 2], \"b\": \"😀\"}"))
            #expect(nulls.dropFirst().allSatisfy { $0 == .null })

            // Column descriptions as MariaDB would name the types.
            let native = Dictionary(uniqueKeysWithValues: relation.columns.map { ($0.name, $0.nativeType) })
            #expect(
                native["tu"] == "tinyint unsigned" && native["mi"] == "mediumint" && native["bu"] == "bigint unsigned")
            #expect(native["d65"] == "decimal(65,30)" && native["b10"] == "bit(10)" && native["tm6"] == "time(6)")
            #expect(
                native["d10"] == "decimal(10,2) unsigned" && native["f"] == "float" && native["dtm3"] == "datetime(3)")
            #expect(native["c255"] == "char(255)" && native["vc300"] == "varchar(300)" && native["v3"] == "varchar(10)")
            #expect(native["bn"] == "binary(4)" && native["vb"] == "varbinary(10)" && native["mb"] == "mediumblob")
            #expect(native["lt"] == "longtext" && native["e"] == "enum('a','b','ç')" && native["g"] == "point")
            let types = Dictionary(uniqueKeysWithValues: relation.columns.map { ($0.name, $0.type) })
            #expect(types["tu"] == .integer(bits: 8, signed: false) && types["ts6"] == .timestampWithZone)
            #expect(types["dtm"] == .timestamp && types["yr"] == .year && types["s"] == .set && types["bl"] == .binary)

            // Positions: each transaction's commit position is the server's own GTID position after it.
            #expect(transactions.map(\.commitPosition) == recorder.positions.suffix(4).map { Position.mariadb($0) })
            #expect(stream.decoder.gtidState == recorder.positions.last)
            let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
            for t in transactions {
                #expect(abs(t.commitTime.microsecondsSinceEpoch - now) < 600_000_000)
                #expect(t.origin == "0-\(server.serverID)")
            }
        }
    }
}
