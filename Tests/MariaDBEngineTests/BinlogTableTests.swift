import TandemCore
import Testing

@testable import MariaDBEngine

@Suite("TABLE_MAP resolution")
struct BinlogTableTests {
    static func map(types: [UInt8], metadata: [UInt16], optional: TableMapOptionalMetadata) -> TableMapEvent {
        TableMapEvent(
            tableID: 3, flags: 0, schema: "s", table: "t", columnTypes: types, columnMetadata: metadata,
            nullable: types.map { _ in true }, optional: optional)
    }

    @Test("columns, keys, signedness, charsets by group position, ENUM/SET members, native names")
    func resolves() throws {
        var parser = BinlogEventParser()
        guard case .tableMap(let map) = try parser.parse(BinlogEventParserTests.richTableMap()).body else {
            Issue.record("table map")
            return
        }
        let table = try BinlogTable(map)
        #expect(table.tableID == 0x1234_5678)
        #expect(
            table.columnKinds == [
                .integer(bytes: 4, unsigned: true),
                .fixedString(bytes: 1020, encoding: .utf8(maximumBytesPerCharacter: 4)),
                .blob(lengthBytes: 2, encoding: .binary), .enumeration(packLength: 1, members: ["a", "b", "ç"]),
                .set(packLength: 1, members: ["x", "y"]), .geometry(lengthBytes: 4), .decimal(precision: 10, scale: 2),
            ])
        let columns = table.relation.columns
        #expect(table.relation.name == RelationName(schema: "shop", name: "items"))
        #expect(columns.map(\.name) == ["id", "s", "b", "e", "st", "g", "d"])
        #expect(
            columns.map(\.nativeType) == [
                "int unsigned", "char(255)", "blob", "enum('a','b','ç')", "set('x','y')",
                "point", "decimal(10,2)",
            ])
        #expect(
            columns.map(\.type) == [
                .integer(bits: 32, signed: false), .text, .binary, .enumeration, .set, .binary,
                .decimal(precision: 10, scale: 2),
            ])
        #expect(columns.map(\.nativeTypeID) == [3, 254, 252, 247, 248, 255, 246])
        #expect(table.relation.keyColumnIndices == [0, 1])
        #expect(columns.map(\.isNullable) == [false, true, true, true, true, true, true])
    }

    @Test("per-column charsets, YEAR and floats in the signedness bitmap, quotes in member names")
    func groups() throws {
        // y YEAR, f FLOAT, u BIGINT UNSIGNED, v VARCHAR(10) utf8mb3, w VARBINARY(4), e ENUM("it's")
        let optional = TableMapOptionalMetadata(
            unsignedBitmap: [0b1010_0000], characterCollations: .perColumn([33, 63]),
            columnNames: ["y", "f", "u", "v", "w", "e"], enumMembers: [[Array("it's".utf8)]],
            enumAndSetCollations: .perColumn([46]))
        let table = try BinlogTable(
            Self.map(
                types: [13, 4, 8, 15, 15, 254], metadata: [0, 4, 0, 30, 4, 0x01F7],
                optional: optional))
        #expect(
            table.columnKinds == [
                .year, .float, .integer(bytes: 8, unsigned: true),
                .variableString(maximumBytes: 30, encoding: .utf8(maximumBytesPerCharacter: 3)),
                .variableString(maximumBytes: 4, encoding: .binary), .enumeration(packLength: 1, members: ["it's"]),
            ])
        #expect(
            table.relation.columns.map(\.nativeType) == [
                "year", "float", "bigint unsigned", "varchar(10)",
                "varbinary(4)", "enum('it''s')",
            ])
        #expect(!table.relation.hasKey)
    }

    @Test("refusals: missing FULL metadata, unknown charset, old temporal types, bad metadata")
    func refusals() {
        let name = RelationName(schema: "s", name: "t")
        func refused(
            _ types: [UInt8], _ metadata: [UInt16], _ optional: TableMapOptionalMetadata,
            charsets: MariaDBCharsets = .builtin
        ) -> BinlogDecodeError? {
            do {
                _ = try BinlogTable(Self.map(types: types, metadata: metadata, optional: optional), charsets: charsets)
                return nil
            } catch {
                return error
            }
        }
        #expect(
            refused([3], [0], TableMapOptionalMetadata(unsignedBitmap: [0]))
                == .missingMetadata(table: name, what: "column names (binlog_row_metadata=FULL)"))
        #expect(
            refused([3], [0], TableMapOptionalMetadata(columnNames: ["a"]))
                == .missingMetadata(table: name, what: "signedness (binlog_row_metadata=FULL)"))
        #expect(
            refused([15], [10], TableMapOptionalMetadata(columnNames: ["a"]))
                == .missingMetadata(table: name, what: "column charsets (binlog_row_metadata=FULL)"))
        #expect(
            refused([254], [0x01F7], TableMapOptionalMetadata(columnNames: ["a"]))
                == .missingMetadata(table: name, what: "ENUM values (binlog_row_metadata=FULL)"))
        guard
            case .unsupportedColumn(_, "a", _) = refused(
                [15], [10],
                TableMapOptionalMetadata(
                    characterCollations: .perColumn([8]), columnNames: ["a"]))
        else {
            Issue.record("latin1 accepted")
            return
        }
        guard
            case .unsupportedColumn(_, "a", _) = refused(
                [15], [10],
                TableMapOptionalMetadata(
                    characterCollations: .perColumn([2048]), columnNames: ["a"]))
        else {
            Issue.record("unknown collation accepted")
            return
        }
        // The same collation is fine once the server's table says what it is.
        #expect(
            refused(
                [15], [10], TableMapOptionalMetadata(characterCollations: .perColumn([2048]), columnNames: ["a"]),
                charsets: MariaDBCharsets(charsetNames: [2048: "utf8mb3"])) == nil)
        for type: UInt8 in [7, 11, 12, 245, 6] {
            guard case .unsupportedColumn = refused([type], [0], TableMapOptionalMetadata(columnNames: ["a"])) else {
                Issue.record("type \(type) accepted")
                continue
            }
        }
        for (type, metadata): (UInt8, UInt16) in [
            (246, 0x0302), (246, 66), (16, 0x0009), (16, 0x0900), (19, 7), (252, 5),
        ] {
            guard
                case .invalidTableMap = refused(
                    [type], [metadata],
                    TableMapOptionalMetadata(
                        unsignedBitmap: [0], characterCollations: .perColumn([63]), columnNames: ["a"]))
            else {
                Issue.record("type \(type) metadata \(metadata) accepted")
                continue
            }
        }
        guard
            case .invalidTableMap = refused(
                [3], [0],
                TableMapOptionalMetadata(
                    unsignedBitmap: [0], columnNames: ["a"], primaryKey: [.init(column: 1)])),
            case .invalidTableMap = refused(
                [3], [0], TableMapOptionalMetadata(unsignedBitmap: [0, 0], columnNames: ["a"])),
            case .invalidTableMap = refused(
                [3, 3], [0, 0], TableMapOptionalMetadata(unsignedBitmap: [], columnNames: ["a", "b"]))
        else {
            Issue.record("inconsistent optional metadata accepted")
            return
        }
        guard case .unsupportedColumn = refused([254], [0x05F7], TableMapOptionalMetadata(columnNames: ["a"])),
            case .unsupportedColumn = refused([254], [0x05F8], TableMapOptionalMetadata(columnNames: ["a"])),
            case .unsupportedColumn = refused([254], [0x01F0], TableMapOptionalMetadata(columnNames: ["a"])),
            case .unsupportedColumn = refused(
                [4], [8], TableMapOptionalMetadata(unsignedBitmap: [0], columnNames: ["a"]))
        else {
            Issue.record("bad string or float metadata accepted")
            return
        }
    }
}
