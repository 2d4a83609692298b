import MariaDBEngine
import TandemCore

/// One column as the seed reads it, described from `information_schema.COLUMNS` in the binlog
/// decoder's own terms (`BinlogColumnKind`), so a copied row has the `Relation` and the `Value`s
/// capture would give the same row: the applier cannot tell a copied row from a captured one.
///
/// Values come over the text protocol, which is exact for every type once the session is fixed
/// (`MariaDBSeedSource.settings`): integers, DECIMAL, dates and times print every digit (TIMESTAMP in
/// UTC), strings and binaries arrive as their bytes (CHAR without its pad, as the binlog has it;
/// BINARY with its NUL pad, which the decoder puts back), BIT as its big-endian bytes. Only
/// FLOAT's text is short (six digits): it is selected as a DOUBLE, exactly its value, whose
/// text is the shortest one that reads back to the same double.
struct SeedColumn: Hashable, Sendable {
    var name: String
    var kind: BinlogColumnKind
    var column: Column
    /// The charset of a character column, for key literals (`_utf8mb4 X'…'`); nil for binary.
    var charset: String?

    /// The catalog's facts about one column (a row of `SeedColumn.catalogColumns`).
    struct Facts: Sendable {
        var name: String
        var dataType: String
        var columnType: String
        var charset: String?
        var octetLength: Int?
        var precision: Int?
        var scale: Int?
        var datetimePrecision: Int?
        var nullable: Bool
        var isKey: Bool
    }

    /// What `Facts` is read from, in its order.
    static let catalogColumns =
        "COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION, "
        + "NUMERIC_SCALE, DATETIME_PRECISION, IS_NULLABLE"

    /// Why a column cannot be copied: the decoder could not capture it either.
    struct Unsupported: Error, Equatable {
        var reason: String
    }

    init(_ facts: Facts) throws(Unsupported) {
        let type = facts.dataType.lowercased()
        let unsigned = facts.columnType.lowercased().contains("unsigned")
        func encoding() throws(Unsupported) -> MariaDBCharsets.Encoding {
            switch facts.charset?.lowercased() {
            case nil, "binary": return .binary
            case "utf8mb4": return .utf8(maximumBytesPerCharacter: 4)
            case "utf8mb3", "utf8": return .utf8(maximumBytesPerCharacter: 3)
            case "ascii": return .utf8(maximumBytesPerCharacter: 1)
            case let other?:
                throw Unsupported(reason: "charset \(other); only binary, utf8mb3, utf8mb4 and ascii are replicated")
            }
        }
        let kind: BinlogColumnKind
        let mapType: UInt8
        switch type {
        case "tinyint": (kind, mapType) = (.integer(bytes: 1, unsigned: unsigned), 1)
        case "smallint": (kind, mapType) = (.integer(bytes: 2, unsigned: unsigned), 2)
        case "mediumint": (kind, mapType) = (.integer(bytes: 3, unsigned: unsigned), 9)
        case "int": (kind, mapType) = (.integer(bytes: 4, unsigned: unsigned), 3)
        case "bigint": (kind, mapType) = (.integer(bytes: 8, unsigned: unsigned), 8)
        case "year": (kind, mapType) = (.year, 13)
        case "float": (kind, mapType) = (.float, 4)
        case "double": (kind, mapType) = (.double, 5)
        case "decimal": (kind, mapType) = (.decimal(precision: facts.precision ?? 10, scale: facts.scale ?? 0), 246)
        case "bit": (kind, mapType) = (.bit(bits: facts.precision ?? 1), 16)
        case "date": (kind, mapType) = (.date, 10)
        case "time": (kind, mapType) = (.time(fractionalDigits: facts.datetimePrecision ?? 0), 19)
        case "datetime": (kind, mapType) = (.datetime(fractionalDigits: facts.datetimePrecision ?? 0), 18)
        case "timestamp": (kind, mapType) = (.timestamp(fractionalDigits: facts.datetimePrecision ?? 0), 17)
        case "varchar", "varbinary":
            (kind, mapType) = (.variableString(maximumBytes: facts.octetLength ?? 0, encoding: try encoding()), 15)
        case "char", "binary":
            (kind, mapType) = (.fixedString(bytes: facts.octetLength ?? 0, encoding: try encoding()), 254)
        case "tinytext", "tinyblob": (kind, mapType) = (.blob(lengthBytes: 1, encoding: try encoding()), 252)
        case "text", "blob": (kind, mapType) = (.blob(lengthBytes: 2, encoding: try encoding()), 252)
        case "mediumtext", "mediumblob": (kind, mapType) = (.blob(lengthBytes: 3, encoding: try encoding()), 252)
        case "longtext", "longblob", "json": (kind, mapType) = (.blob(lengthBytes: 4, encoding: try encoding()), 252)
        case "enum":
            let members = Self.members(facts.columnType)
            (kind, mapType) = (.enumeration(packLength: members.count < 256 ? 1 : 2, members: members), 254)
        case "set":
            let members = Self.members(facts.columnType)
            let bytes = (members.count + 7) / 8
            (kind, mapType) = (.set(packLength: bytes > 4 ? 8 : bytes, members: members), 254)
        case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
            "geometrycollection":
            (kind, mapType) = (.geometry(lengthBytes: 4), 255)
        default:
            throw Unsupported(reason: "type \(facts.columnType)")
        }
        switch kind {
        case .enumeration, .set:
            // The decoder reads members only as text.
            if try encoding() == .binary { throw Unsupported(reason: "ENUM or SET of binary members") }
        default: break
        }
        let geometryNames = [
            "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
            "geometrycollection",
        ]
        let (logical, described) = BinlogTable.describe(
            kind, geometryType: geometryNames.firstIndex(of: type).map { UInt32($0) })
        let nonIntegerUnsigned = unsigned && ["float", "double", "decimal"].contains(type)
        self.name = facts.name
        self.kind = kind
        self.charset = facts.charset
        self.column = Column(
            name: facts.name, type: logical, nativeType: nonIntegerUnsigned ? described + " unsigned" : described,
            nativeTypeID: UInt32(BinlogTable.realType(of: kind, tableMapType: mapType)), isKey: facts.isKey,
            isNullable: facts.nullable)
    }

    /// The members of `enum('a','b''c')` / `set(…)` as the catalog spells the type.
    static func members(_ columnType: String) -> [String] {
        guard let open = columnType.firstIndex(of: "("), let close = columnType.lastIndex(of: ")"), open < close
        else { return [] }
        var members: [String] = []
        var current = ""
        var quoted = false
        var characters = columnType[columnType.index(after: open)..<close].makeIterator()
        var pending = characters.next()
        while let character = pending {
            pending = characters.next()
            if quoted {
                if character == "'" {
                    if pending == "'" {
                        current.append("'")
                        pending = characters.next()
                    } else {
                        quoted = false
                        members.append(current)
                        current = ""
                    }
                } else {
                    current.append(character)
                }
            } else if character == "'" {
                quoted = true
            }
        }
        return members
    }

    /// The expression the SELECT reads the column with (see the type's notes on FLOAT).
    var selected: String {
        let quoted = SeedSQL.quote(name)
        if case .float = kind { return "CAST(\(quoted) AS DOUBLE)" }
        return quoted
    }

    /// The value the binlog decoder gives for the stored value whose text-protocol bytes are
    /// `bytes` (nil: SQL NULL); nil when the bytes are not a value of this column.
    func value(_ bytes: [UInt8]?) -> Value? {
        guard let bytes else { return .null }
        func text() -> String? { String(validating: bytes, as: UTF8.self) }
        switch kind {
        case .integer(_, let unsigned):
            guard let text = text() else { return nil }
            if unsigned { return UInt64(text).map(Value.uint) }
            return Int64(text).map(Value.int)
        case .year:
            return text().flatMap { Int64($0) }.map(Value.int)
        case .float:
            return text().flatMap { Double($0) }.map { Value.float32(Float($0)) }
        case .double:
            return text().flatMap { Double($0) }.map(Value.float64)
        case .decimal:
            return text().flatMap { ExactDecimal($0) }.map(Value.decimal)
        case .bit(let bits):
            return Self.bitString(bytes, bits: bits).map(Value.bits)
        case .date:
            return text().flatMap(SeedTemporal.date).map(Value.date)
        case .time:
            return text().flatMap(SeedTemporal.time).map(Value.time)
        case .datetime:
            return text().flatMap(SeedTemporal.dateTime).map(Value.timestamp)
        case .timestamp:
            guard let text = text(), let civil = SeedTemporal.dateTime(text) else { return nil }
            // TIMESTAMP's zero value is no instant; the decoder keeps MariaDB's own text for it.
            if civil.date.isZeroDate { return .native(text) }
            return .timestampWithZone(SeedTemporal.instant(civil))
        case .variableString(_, let encoding), .fixedString(_, let encoding), .blob(_, let encoding):
            if case .binary = encoding { return .bytes(bytes) }
            return text().map(Value.text)
        case .enumeration, .set:
            return text().map(Value.text)
        case .geometry:
            return .bytes(bytes)
        }
    }

    /// BIT(n) arrives as ⌈n/8⌉ big-endian bytes holding an n-bit number; `BitString` packs
    /// the n bits from the most significant bit of its first byte.
    static func bitString(_ stored: [UInt8], bits: Int) -> BitString? {
        guard stored.count == (bits + 7) / 8 else { return nil }
        let unused = stored.count * 8 - bits
        guard unused == 0 || stored[0] >> UInt8(8 - unused) == 0 else { return nil }
        var packed = stored
        if unused > 0 {
            for i in packed.indices {
                let next = i + 1 < stored.count ? stored[i + 1] >> UInt8(8 - unused) : 0
                packed[i] = stored[i] << UInt8(unused) | next
            }
        }
        return BitString(count: bits, bytes: packed)
    }

    // MARK: Keys

    /// How a key column's value travels in `KeyValue` (as verify has it): numbers and times as
    /// their text, strings and binaries as the hex of their bytes.
    enum KeyEncoding: Equatable {
        case number, time
        /// `charset` nil for binary strings.
        case bytes(charset: String?)
    }

    var keyEncoding: KeyEncoding? {
        switch kind {
        case .integer, .year, .decimal: .number
        case .date, .time, .datetime, .timestamp: .time
        case .variableString(_, let encoding), .fixedString(_, let encoding), .blob(_, let encoding):
            .bytes(charset: encoding == .binary ? nil : charset)
        default: nil
        }
    }

    /// The key part of a row's value as it was read.
    func keyPart(_ bytes: [UInt8]?) -> String? {
        guard let bytes else { return nil }
        if case .bytes = keyEncoding { return SeedSQL.hex(bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A key part as a literal of this column; nil when it is not one (a key of another table).
    func literal(_ part: String?) -> String? {
        guard let part, let encoding = keyEncoding else { return nil }
        switch encoding {
        case .number:
            return !part.isEmpty && part.utf8.allSatisfy { "0123456789+-.".utf8.contains($0) } ? part : nil
        case .time:
            return !part.isEmpty && part.utf8.allSatisfy { "0123456789-:. ".utf8.contains($0) } ? "'" + part + "'" : nil
        case .bytes(let charset):
            guard part.utf8.count % 2 == 0, part.utf8.allSatisfy({ "0123456789ABCDEFabcdef".utf8.contains($0) })
            else { return nil }
            return (charset.map { "_" + $0 + " " } ?? "") + "X'" + part + "'"
        }
    }

    func display(_ bytes: [UInt8]?) -> String {
        guard let bytes else { return "NULL" }
        if case .bytes(let charset) = keyEncoding {
            if charset != nil, let text = String(validating: bytes, as: UTF8.self) { return text }
            return "X'" + SeedSQL.hex(bytes) + "'"
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// MariaDB's date and time texts, as the text protocol prints them, into the change model.
enum SeedTemporal {
    /// `YYYY-MM-DD`, zero dates included.
    static func date(_ text: String) -> CivilDate? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigitCharacter) }),
            let year = Int32(parts[0]), let month = UInt8(parts[1]), let day = UInt8(parts[2]), month <= 12, day <= 31
        else { return nil }
        return CivilDate(year: year, month: month, day: day)
    }

    /// `[-]H…H:MM:SS[.ffffff]`.
    static func time(_ text: String) -> TimeOfDay? {
        var body = Substring(text)
        let negative = body.first == "-"
        if negative { body = body.dropFirst() }
        let (clock, micros) = fraction(body)
        let parts = clock.split(separator: ":", omittingEmptySubsequences: false)
        guard let micros, parts.count == 3, let hours = Int64(parts[0]), let minutes = Int64(parts[1]),
            let seconds = Int64(parts[2]), hours >= 0, (0..<60).contains(minutes), (0..<60).contains(seconds)
        else { return nil }
        return TimeOfDay(hours: hours, minutes: minutes, seconds: seconds, microseconds: micros, negative: negative)
    }

    /// `YYYY-MM-DD HH:MM:SS[.ffffff]`.
    static func dateTime(_ text: String) -> CivilDateTime? {
        let halves = text.split(separator: " ", omittingEmptySubsequences: false)
        guard halves.count == 2, let day = date(String(halves[0])), let clock = time(String(halves[1])),
            clock.microseconds >= 0, clock.microseconds < 86_400_000_000
        else { return nil }
        return CivilDateTime(date: day, time: clock)
    }

    /// The clock part and the fraction in microseconds (nil when malformed).
    private static func fraction(_ text: Substring) -> (Substring, Int64?) {
        guard let dot = text.firstIndex(of: ".") else { return (text, 0) }
        let digits = text[text.index(after: dot)...]
        guard (1...6).contains(digits.count), digits.allSatisfy(\.isASCIIDigitCharacter), let value = Int64(digits)
        else { return (text, nil) }
        var micros = value
        for _ in digits.count..<6 { micros *= 10 }
        return (text[..<dot], micros)
    }

    /// A UTC date and time as an instant (days from the civil calendar, proleptic Gregorian).
    static func instant(_ civil: CivilDateTime) -> Timestamp {
        let year = Int64(civil.date.year) - (civil.date.month <= 2 ? 1 : 0)
        let era = (year >= 0 ? year : year - 399) / 400
        let yearOfEra = year - era * 400
        let month = Int64(civil.date.month)
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + Int64(civil.date.day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Timestamp(microsecondsSinceEpoch: days * 86_400_000_000 + civil.time.microseconds)
    }
}

extension Character {
    fileprivate var isASCIIDigitCharacter: Bool { isASCII && isNumber }
}
