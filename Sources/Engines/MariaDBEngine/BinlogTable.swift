import TandemCore

/// How one column's bytes are laid out in a row image, resolved from the TABLE_MAP type,
/// its metadata and the optional metadata (signedness, charset, ENUM/SET members).
public enum BinlogColumnKind: Hashable, Sendable {
    /// TINYINT … BIGINT: 1, 2, 3, 4 or 8 bytes little-endian.
    case integer(bytes: Int, unsigned: Bool)
    /// YEAR: one byte, 0 or the year − 1900.
    case year
    case float
    case double
    /// DECIMAL: MySQL's packed binary decimal.
    case decimal(precision: Int, scale: Int)
    /// BIT(n): ⌈n/8⌉ bytes big-endian.
    case bit(bits: Int)
    /// DATE: 3 bytes, day | month << 5 | year << 9.
    case date
    /// TIME(fsp), DATETIME(fsp), TIMESTAMP(fsp) in the MySQL 5.6 binary formats.
    case time(fractionalDigits: Int)
    case datetime(fractionalDigits: Int)
    case timestamp(fractionalDigits: Int)
    /// VARCHAR / VARBINARY: a 1-byte length if at most 255 bytes are allowed, else 2.
    case variableString(maximumBytes: Int, encoding: MariaDBCharsets.Encoding)
    /// CHAR / BINARY (and UUID, INET6): length-prefixed like VARCHAR, trailing pad removed
    /// by the server (spaces for text, NUL bytes for binary, which are put back).
    case fixedString(bytes: Int, encoding: MariaDBCharsets.Encoding)
    /// BLOB / TEXT of every size (and JSON, a LONGTEXT on MariaDB): a little-endian
    /// length of `lengthBytes` bytes, then the data.
    case blob(lengthBytes: Int, encoding: MariaDBCharsets.Encoding)
    /// ENUM: the 1-based member index in 1 or 2 bytes; 0 is the "invalid" empty value.
    case enumeration(packLength: Int, members: [String])
    /// SET: a bit mask of 1, 2, 3, 4 or 8 bytes over the members.
    case set(packLength: Int, members: [String])
    /// GEOMETRY: like a BLOB (SRID then WKB).
    case geometry(lengthBytes: Int)
}

/// A TABLE_MAP turned into Tandem's `Relation` plus the row layout of each column.
public struct BinlogTable: Hashable, Sendable {
    public var tableID: UInt64
    public var relation: Relation
    public var columnKinds: [BinlogColumnKind]

    public init(tableID: UInt64, relation: Relation, columnKinds: [BinlogColumnKind]) {
        self.tableID = tableID
        self.relation = relation
        self.columnKinds = columnKinds
    }

    /// Resolves a TABLE_MAP. Needs `binlog_row_metadata=FULL`: column names, signedness,
    /// charsets and ENUM/SET members are part of the values, so a map without them is
    /// refused rather than decoded by guesswork.
    public init(_ map: TableMapEvent, charsets: MariaDBCharsets = .builtin) throws(BinlogDecodeError) {
        let name = RelationName(schema: map.schema, name: map.table)
        let count = map.columnTypes.count
        let meta = map.optional
        guard let names = meta.columnNames, names.count == count else {
            throw .missingMetadata(table: name, what: "column names (binlog_row_metadata=FULL)")
        }
        var isKey = [Bool](repeating: false, count: count)
        for part in meta.primaryKey ?? [] {
            guard part.column < count else {
                throw .invalidTableMap(table: name, reason: "primary key column \(part.column) of \(count)")
            }
            isKey[part.column] = true
        }

        // Walk the columns once, numbering the members of each optional-metadata group the
        // way the server does: numeric (signedness), character (charset), ENUM, SET, geometry.
        var numeric = 0, character = 0, enums = 0, sets = 0, enumOrSet = 0, geometries = 0
        var kinds: [BinlogColumnKind] = []
        var columns: [Column] = []
        kinds.reserveCapacity(count)
        columns.reserveCapacity(count)
        for index in 0..<count {
            let type = map.columnTypes[index]
            let metadata = map.columnMetadata[index]
            let low = Int(metadata & 0xFF), high = Int(metadata >> 8)
            let column = names[index]
            func unsupported(_ reason: String) -> BinlogDecodeError {
                .unsupportedColumn(table: name, column: column, reason: reason)
            }
            func isUnsigned() throws(BinlogDecodeError) -> Bool {
                defer { numeric += 1 }
                guard let bitmap = meta.unsignedBitmap else {
                    throw .missingMetadata(table: name, what: "signedness (binlog_row_metadata=FULL)")
                }
                guard numeric / 8 < bitmap.count else {
                    throw .invalidTableMap(
                        table: name, reason: "signedness bitmap too short for numeric column \(numeric)")
                }
                return bitmap[numeric / 8] & (0x80 >> UInt8(numeric % 8)) != 0
            }
            func characterEncoding() throws(BinlogDecodeError) -> MariaDBCharsets.Encoding {
                defer { character += 1 }
                guard let collations = meta.characterCollations else {
                    throw .missingMetadata(table: name, what: "column charsets (binlog_row_metadata=FULL)")
                }
                guard let collation = collations.collation(at: character) else {
                    throw .invalidTableMap(table: name, reason: "no charset for character column \(character)")
                }
                guard let encoding = charsets.encoding(ofCollation: collation) else {
                    throw unsupported(
                        "collation \(collation) (\(charsets.charsetNames[collation] ?? "unknown charset")); "
                            + "only binary, utf8mb3, utf8mb4 and ascii are decoded")
                }
                return encoding
            }
            func members(_ lists: [[[UInt8]]]?, _ position: Int, _ what: String) throws(BinlogDecodeError) -> [String] {
                defer { enumOrSet += 1 }
                guard let lists, position < lists.count else {
                    throw .missingMetadata(table: name, what: "\(what) values (binlog_row_metadata=FULL)")
                }
                guard let collations = meta.enumAndSetCollations,
                    let collation = collations.collation(at: enumOrSet)
                else {
                    throw .missingMetadata(table: name, what: "ENUM/SET charsets (binlog_row_metadata=FULL)")
                }
                guard case .utf8 = charsets.encoding(ofCollation: collation) else {
                    throw unsupported("\(what) in collation \(collation); only utf8mb3, utf8mb4 and ascii are decoded")
                }
                var result: [String] = []
                for bytes in lists[position] {
                    guard let text = String(validating: bytes, as: UTF8.self) else {
                        throw .invalidTableMap(table: name, reason: "\(what) member of \(column) is not UTF-8")
                    }
                    result.append(text)
                }
                return result
            }

            let kind: BinlogColumnKind
            // UNSIGNED on FLOAT, DOUBLE and DECIMAL changes no bytes, only the type's name.
            var unsignedNonInteger = false
            switch type {
            case 1: kind = .integer(bytes: 1, unsigned: try isUnsigned())
            case 2: kind = .integer(bytes: 2, unsigned: try isUnsigned())
            case 9: kind = .integer(bytes: 3, unsigned: try isUnsigned())
            case 3: kind = .integer(bytes: 4, unsigned: try isUnsigned())
            case 8: kind = .integer(bytes: 8, unsigned: try isUnsigned())
            case 13:
                // YEAR counts as numeric in the signedness bitmap (it is a TINYINT underneath).
                _ = try isUnsigned()
                kind = .year
            case 4, 5:
                unsignedNonInteger = try isUnsigned()
                guard low == (type == 4 ? 4 : 8) else { throw unsupported("floating-point pack length \(low)") }
                kind = type == 4 ? .float : .double
            case 246:
                unsignedNonInteger = try isUnsigned()
                guard (1...65).contains(low), high <= low, high <= 38 else {
                    throw .invalidTableMap(table: name, reason: "DECIMAL(\(low),\(high)) of \(column)")
                }
                kind = .decimal(precision: low, scale: high)
            case 16:
                let bits = high * 8 + low
                guard low < 8, (1...64).contains(bits) else {
                    throw .invalidTableMap(table: name, reason: "BIT metadata \(low)/\(high) of \(column)")
                }
                kind = .bit(bits: bits)
            case 10, 14: kind = .date
            case 17, 18, 19:
                guard low <= 6 else {
                    throw .invalidTableMap(table: name, reason: "fractional digits \(low) of \(column)")
                }
                kind =
                    type == 19
                    ? .time(fractionalDigits: low)
                    : type == 18 ? .datetime(fractionalDigits: low) : .timestamp(fractionalDigits: low)
            case 7, 11, 12:
                // The pre-10.1 formats carry no metadata, and MariaDB's fractional variants of
                // them have other sizes: the bytes cannot be framed safely.
                throw unsupported("old temporal format (type \(type)); ALTER TABLE … FORCE converts it")
            case 15, 253:
                kind = .variableString(maximumBytes: Int(metadata), encoding: try characterEncoding())
            case 254, 247, 248:
                // The real type is in the first metadata byte; CHAR lengths above 255 borrow
                // two of its bits (they are stored inverted, so 0x30 set means "no high bits").
                var realType = low
                var length = high
                if realType & 0x30 != 0x30 {
                    length |= ((realType & 0x30) ^ 0x30) << 4
                    realType |= 0x30
                }
                switch realType {
                case 254: kind = .fixedString(bytes: length, encoding: try characterEncoding())
                case 247:
                    guard length == 1 || length == 2 else { throw unsupported("ENUM pack length \(length)") }
                    kind = .enumeration(packLength: length, members: try members(meta.enumMembers, enums, "ENUM"))
                    enums += 1
                case 248:
                    guard [1, 2, 3, 4, 8].contains(length) else { throw unsupported("SET pack length \(length)") }
                    kind = .set(packLength: length, members: try members(meta.setMembers, sets, "SET"))
                    sets += 1
                default: throw unsupported("string real type \(realType)")
                }
            case 249, 250, 251, 252:
                guard (1...4).contains(low) else {
                    throw .invalidTableMap(table: name, reason: "BLOB length size \(low)")
                }
                kind = .blob(lengthBytes: low, encoding: try characterEncoding())
            case 255:
                guard (1...4).contains(low) else {
                    throw .invalidTableMap(table: name, reason: "GEOMETRY length size \(low)")
                }
                // Geometry columns have a (binary) charset and take a slot among character columns.
                _ = try characterEncoding()
                kind = .geometry(lengthBytes: low)
            case 245: throw unsupported("MySQL binary JSON (type 245)")
            default: throw unsupported("column type \(type)")
            }
            var geometryType: UInt32?
            if case .geometry = kind {
                geometryType = meta.geometryTypes.flatMap { geometries < $0.count ? $0[geometries] : nil }
                geometries += 1
            }
            let (logical, described) = Self.describe(kind, geometryType: geometryType)
            let native = unsignedNonInteger ? described + " unsigned" : described
            kinds.append(kind)
            columns.append(
                Column(
                    name: column, type: logical, nativeType: native,
                    nativeTypeID: UInt32(Self.realType(of: kind, tableMapType: type)),
                    isKey: isKey[index], isNullable: map.nullable[index]))
        }
        if let bitmap = meta.unsignedBitmap, bitmap.count > (numeric + 7) / 8 {
            throw .invalidTableMap(
                table: name, reason: "signedness bitmap has \(bitmap.count) bytes for \(numeric) numeric columns")
        }
        self.init(tableID: map.tableID, relation: Relation(name: name, columns: columns), columnKinds: kinds)
    }

    /// The type code a client would see for the column (ENUM and SET instead of STRING).
    public static func realType(of kind: BinlogColumnKind, tableMapType: UInt8) -> UInt8 {
        switch kind {
        case .enumeration: 247
        case .set: 248
        default: tableMapType
        }
    }

    /// Tandem's logical type and MariaDB's type name. Character lengths are the byte
    /// lengths of the TABLE_MAP divided by the charset's maximum bytes per character,
    /// which is how the server derived them.
    public static func describe(_ kind: BinlogColumnKind, geometryType: UInt32?) -> (LogicalType, String) {
        func sized(_ bytes: Int, _ encoding: MariaDBCharsets.Encoding, text: String, binary: String)
            -> (LogicalType, String)
        {
            switch encoding {
            case .binary: (.binary, "\(binary)(\(bytes))")
            case .utf8(let maximum): (.text, "\(text)(\(bytes / maximum))")
            }
        }
        func quoted(_ members: [String]) -> String {
            members.map { member in
                "'" + member.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'"
            }
            .joined(separator: ",")
        }
        switch kind {
        case let .integer(bytes, unsigned):
            let base = [1: "tinyint", 2: "smallint", 3: "mediumint", 4: "int", 8: "bigint"][bytes] ?? "int"
            return (.integer(bits: bytes * 8, signed: !unsigned), unsigned ? base + " unsigned" : base)
        case .year: return (.year, "year")
        case .float: return (.float32, "float")
        case .double: return (.float64, "double")
        case let .decimal(precision, scale):
            return (.decimal(precision: precision, scale: scale), "decimal(\(precision),\(scale))")
        case .bit(let bits): return (.bits, "bit(\(bits))")
        case .date: return (.date, "date")
        case .time(let digits): return (.time, digits == 0 ? "time" : "time(\(digits))")
        case .datetime(let digits): return (.timestamp, digits == 0 ? "datetime" : "datetime(\(digits))")
        case .timestamp(let digits): return (.timestampWithZone, digits == 0 ? "timestamp" : "timestamp(\(digits))")
        case let .variableString(bytes, encoding): return sized(bytes, encoding, text: "varchar", binary: "varbinary")
        case let .fixedString(bytes, encoding): return sized(bytes, encoding, text: "char", binary: "binary")
        case let .blob(lengthBytes, encoding):
            let size = ["tiny", "", "medium", "long"][lengthBytes - 1]
            if case .binary = encoding { return (.binary, size + "blob") }
            return (.text, size + "text")
        case .enumeration(_, let members): return (.enumeration, "enum(\(quoted(members)))")
        case .set(_, let members): return (.set, "set(\(quoted(members)))")
        case .geometry:
            let names = [
                "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
                "geometrycollection",
            ]
            return (.binary, geometryType.flatMap { $0 < 8 ? names[Int($0)] : nil } ?? "geometry")
        }
    }
}
