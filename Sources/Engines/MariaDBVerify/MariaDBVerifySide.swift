import MySQLClient
import TandemCore
import TandemVerify

/// Verify's port on a MariaDB server: every digest is computed by the server, so a chunk costs
/// one statement and returns one row whatever its size.
///
/// ## The compared form
/// Each column enters the row as a form that is a function of its exact value (`Form`): bytes
/// (strings, binary, BIT, JSON, ENUM, SET, anything unknown) as the stored bytes, untouched by
/// any character set or collation; numbers and times as their text, which under the session's
/// fixed `time_zone` and `sql_mode` depends on nothing else. The row's digest is
/// `MD5(CONCAT_WS(',', <one ISNULL flag per column>, <the non-NULL forms>))`: the flags say which
/// columns are present, no form contains a comma, so NULL, `''` and `'NULL'` differ and no two
/// rows share a text.
///
/// A string function whose result would exceed `max_allowed_packet` returns NULL, which would
/// drop the row out of the sum unnoticed. So the bytes of BLOB, TEXT and JSON columns, which
/// may be that large, enter as their `MD5`; those of every other byte type as their `HEX`
/// (faster), which the row size limit (64 KB for all of them together) keeps under 128 KB, and
/// the session refuses a server whose `max_allowed_packet` is not well above that.
///
/// A chunk's digest is the exact DECIMAL `SUM` of the first 64 bits of its rows' MD5s:
/// order-independent, and a change of any one row moves it.
///
/// ## Key order
/// Keys order and compare under their columns' own collations, which the DR site shares because
/// its schema is the primary's. A key part travels as text the same engine reads back exactly:
/// the hex of a string's or binary's bytes (sent back as `_charset X'…'` so the bytes arrive
/// untouched and the column's collation applies), a number's or time's text.
///
/// Used by one thread at a time.
public final class MariaDBVerifySide: VerifySide {
    private var connection: MySQLConnection
    /// Set when the side opened the connection itself, so that it may open a new one after the
    /// old one was lost (calls may be retried).
    private let login: MySQLLogin?
    private var lost = false
    private let filter: VerifyTableFilter?
    private var layouts: [VerifyTable: Layout] = [:]

    /// How one column enters the row digest.
    private enum Form {
        case hex, digest, text, float

        init(dataType: String) {
            switch dataType {
            case "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "double", "date", "time",
                "datetime", "timestamp", "year":
                self = .text
            // FLOAT's text has six significant digits; as a DOUBLE its value is exact.
            case "float": self = .float
            case "char", "varchar", "binary", "varbinary", "tinytext", "tinyblob", "enum", "set", "bit": self = .hex
            default: self = .digest
            }
        }

        func sql(_ column: String) -> String {
            switch self {
            case .hex: "HEX(\(column))"
            case .digest: "MD5(\(column))"
            case .text: column
            case .float: "CAST(\(column) AS DOUBLE)"
            }
        }
    }

    /// The smallest `max_allowed_packet` under which no row's compared form can exceed it.
    static let packetFloor = 1 << 20

    /// A key column as this site's catalog has it, and how its value travels.
    private struct KeyColumn {
        enum Encoding {
            /// The value's text, sent back bare (a quoted number would compare as a double).
            case number
            /// The value's text, sent back as a string literal.
            case time
            /// The bytes' hex; `charset` nil for binary strings.
            case bytes(charset: String?)
        }

        var quoted: String
        var encoding: Encoding

        var selected: String {
            if case .bytes = encoding { return "HEX(\(quoted))" }
            return quoted
        }

        func literal(_ part: String?) -> String? {
            guard let part else { return nil }
            switch encoding {
            case .number:
                return !part.isEmpty && part.utf8.allSatisfy { "0123456789+-.eE".utf8.contains($0) } ? part : nil
            case .time:
                return !part.isEmpty && part.utf8.allSatisfy { "0123456789-:. ".utf8.contains($0) }
                    ? "'" + part + "'" : nil
            case .bytes(let charset):
                guard part.utf8.allSatisfy({ "0123456789ABCDEFabcdef".utf8.contains($0) }) else { return nil }
                return (charset.map { "_" + $0 + " " } ?? "") + "X'" + part + "'"
            }
        }

        func display(_ part: String?) -> String {
            guard let part else { return "NULL" }
            guard case .bytes(let charset) = encoding else { return part }
            let bytes = hexBytes(part)
            if charset != nil, let text = String(validating: bytes, as: UTF8.self) { return text }
            return "X'" + part + "'"
        }
    }

    /// What the side knows of one table at this site.
    private struct Layout {
        var key: [KeyColumn]
        var forms: [String]
    }

    /// Verifies on `connection`, which the side then owns (and closes).
    public init(connection: MySQLConnection, filter: VerifyTableFilter? = nil) throws(VerifyError) {
        self.connection = connection
        self.login = nil
        self.filter = filter
        try Self.prepare(connection)
    }

    public init(login: MySQLLogin, filter: VerifyTableFilter? = nil) throws(VerifyError) {
        self.connection = try Self.open(login)
        self.login = login
        self.filter = filter
    }

    public convenience init(
        host: String? = "127.0.0.1", port: Int = 3306, user: String, password: String? = nil,
        database: String? = nil, filter: VerifyTableFilter? = nil
    ) throws(VerifyError) {
        try self.init(
            login: MySQLLogin(host: host, port: port, user: user, password: password, database: database),
            filter: filter)
    }

    /// The session settings that make text forms a function of the value alone: TIMESTAMP's
    /// text follows `time_zone`; CHAR's follows `sql_mode` (PAD_CHAR_TO_FULL_LENGTH).
    static let settings = [
        "SET SESSION time_zone = '+00:00'", "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
        "SET SESSION max_statement_time = 0", "SET SESSION TRANSACTION READ ONLY",
    ]

    private static func open(_ login: MySQLLogin) throws(VerifyError) -> MySQLConnection {
        let connection: MySQLConnection
        do {
            connection = try MySQLConnection(login)
        } catch {
            throw VerifyError(
                "cannot connect to MariaDB: \(error.message)",
                hint: "Check the site's [database] settings and that the server accepts the agent's login.")
        }
        try prepare(connection)
        return connection
    }

    private static func prepare(_ connection: MySQLConnection) throws(VerifyError) {
        let packet: Int?
        do {
            for setting in settings { try connection.execute(setting) }
            packet = try connection.query("SELECT @@max_allowed_packet").value(row: 0, column: 0).flatMap { Int($0) }
        } catch {
            throw failure(error, "set the verify session up")
        }
        if let packet, packet < packetFloor {
            throw VerifyError(
                "the server's max_allowed_packet is \(packet) bytes, below the \(packetFloor) verify needs",
                hint: "Raise max_allowed_packet (SET GLOBAL max_allowed_packet = 16777216, the default).")
        }
    }

    public func describe(_ names: [String]?) throws(VerifyError) -> [VerifyTable] {
        let result = try query(
            """
            SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, s.SEQ_IN_INDEX
            FROM information_schema.COLUMNS c
            JOIN information_schema.TABLES t
              ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE = 'BASE TABLE'
            LEFT JOIN information_schema.STATISTICS s
              ON s.TABLE_SCHEMA = c.TABLE_SCHEMA AND s.TABLE_NAME = c.TABLE_NAME AND s.COLUMN_NAME = c.COLUMN_NAME
              AND s.INDEX_NAME = 'PRIMARY'
            WHERE c.TABLE_SCHEMA NOT IN ('mysql', 'sys', 'performance_schema', 'information_schema', 'tandem')
            ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION
            """, "read the catalog")
        return try VerifyCatalog(rows: result.rows).select(names, filter: filter)
    }

    public func boundary(_ table: VerifyTable, after: KeyValue?, rows: Int) throws(VerifyError) -> KeyValue? {
        let layout = try layout(of: table)
        let result = try query(
            "SELECT \(layout.key.map(\.selected).joined(separator: ", ")) FROM \(Self.name(table))"
                + (try Self.predicate(layout.key, KeyRange(after: after, through: nil), table))
                + " ORDER BY \(Self.order(layout.key)) LIMIT 1 OFFSET \(max(rows, 1) - 1)",
            "find a chunk boundary in \(table)")
        guard result.rowCount == 1 else { return nil }
        return Self.key(layout.key, result, row: 0)
    }

    public func checksum(_ table: VerifyTable, _ range: KeyRange) throws(VerifyError) -> ChunkSum {
        let layout = try layout(of: table)
        let flags = "CONCAT(" + table.columns.map { "ISNULL(\(Self.quote($0)))" }.joined(separator: ", ") + ")"
        let row = "MD5(CONCAT_WS(',', \(([flags] + layout.forms).joined(separator: ", "))))"
        let result = try query(
            "SELECT COUNT(*), COALESCE(SUM(CAST(CONV(LEFT(\(row), 16), 16, 10) AS UNSIGNED)), 0) FROM "
                + Self.name(table) + (try Self.predicate(layout.key, range, table)),
            "checksum \(table) \(range)")
        guard let count = result.value(row: 0, column: 0).flatMap(UInt64.init),
            let digest = result.value(row: 0, column: 1)
        else { throw VerifyError.unexpected("MariaDB returned no checksum for \(table)") }
        return ChunkSum(rows: count, digest: digest)
    }

    public func rows(_ table: VerifyTable, _ range: KeyRange, limit: Int) throws(VerifyError) -> [VerifyRow] {
        let layout = try layout(of: table)
        let selected = layout.key.map(\.selected) + layout.forms.map { "MD5(\($0))" }
        let result = try query(
            "SELECT \(selected.joined(separator: ", ")) FROM \(Self.name(table))"
                + (try Self.predicate(layout.key, range, table))
                + " ORDER BY \(Self.order(layout.key)) LIMIT \(max(limit, 0))",
            "read rows of \(table) \(range)")
        return (0..<result.rowCount).map { row in
            VerifyRow(
                key: Self.key(layout.key, result, row: row),
                columns: layout.forms.indices.map { result.value(row: row, column: layout.key.count + $0) })
        }
    }

    public func currentPosition() throws(VerifyError) -> Position? {
        let text = try query("SELECT @@GLOBAL.gtid_binlog_pos", "read the current GTID position")
            .value(row: 0, column: 0)
        do {
            let list = try MariaDBGTIDList(parsing: text ?? "")
            return list.gtids.isEmpty ? nil : .mariadb(list)
        } catch {
            throw VerifyError.unexpected("MariaDB returned \(error)")
        }
    }

    public func close() {
        connection.close()
    }

    // MARK: SQL

    static func quote(_ identifier: String) -> String {
        "`" + identifier.replacing("`", with: "``") + "`"
    }

    /// The table as SQL names it here, quoted.
    public static func name(_ table: VerifyTable) -> String { quote(table.schema) + "." + quote(table.name) }

    private static func order(_ key: [KeyColumn]) -> String { key.map(\.quoted).joined(separator: ", ") }

    private static func key(_ key: [KeyColumn], _ result: MySQLResult, row: Int) -> KeyValue {
        let parts = key.indices.map { result.value(row: row, column: $0) }
        let shown = key.indices.map { key[$0].display(parts[$0]) }
        return KeyValue(parts: parts, display: "(" + shown.joined(separator: ", ") + ")")
    }

    /// The WHERE clause (with its leading space, empty for the whole table) selecting `range`.
    /// Row comparisons are spelled out as ORs of ANDs, the form MariaDB's range optimizer turns
    /// into ranges of the primary key.
    private static func predicate(_ key: [KeyColumn], _ range: KeyRange, _ table: VerifyTable) throws(VerifyError)
        -> String
    {
        var conditions: [String] = []
        for (bound, comparison, inclusive) in [(range.lower, ">", false), (range.upper, "<", true)] {
            guard let bound else { continue }
            var literals: [String] = []
            for (column, part) in zip(key, bound.parts) {
                guard let literal = column.literal(part) else {
                    throw VerifyError(
                        "key \(bound) is not a key of \(table) at this site",
                        hint: "Both sites must run the same engine with the same schema; report this as a bug.")
                }
                literals.append(literal)
            }
            guard literals.count == key.count else {
                throw VerifyError(
                    "key \(bound) has \(bound.parts.count) parts; \(table)'s key has \(key.count)",
                    hint: VerifyError.schemaHint)
            }
            var alternatives: [String] = []
            for position in key.indices {
                let equal = (0..<position).map { "\(key[$0].quoted) = \(literals[$0])" }
                alternatives.append(
                    (equal + ["\(key[position].quoted) \(comparison) \(literals[position])"]).joined(separator: " AND ")
                )
            }
            if inclusive {
                alternatives.append(
                    key.indices.map { "\(key[$0].quoted) = \(literals[$0])" }.joined(separator: " AND "))
            }
            conditions.append("(" + alternatives.map { "(\($0))" }.joined(separator: " OR ") + ")")
        }
        return conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
    }

    /// The table's columns as this site's catalog has them: forms and key encodings follow the
    /// local table's types, whichever site described it.
    private func layout(of table: VerifyTable) throws(VerifyError) -> Layout {
        if let known = layouts[table] { return known }
        let result = try query(
            """
            SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_SET_NAME FROM information_schema.COLUMNS
            WHERE TABLE_SCHEMA = _utf8mb4 \(Self.hex(table.schema)) AND TABLE_NAME = _utf8mb4 \(Self.hex(table.name))
            """, "read the columns of \(table)")
        var types: [String: (dataType: String, charset: String?)] = [:]
        for row in 0..<result.rowCount {
            guard let name = result.value(row: row, column: 0), let type = result.value(row: row, column: 1) else {
                continue
            }
            types[name] = (type.lowercased(), result.value(row: row, column: 2))
        }
        let keyTypes = try VerifyCatalog.local(table.key, of: table, in: types)
        let columnTypes = try VerifyCatalog.local(table.columns, of: table, in: types)
        var key: [KeyColumn] = []
        for (column, (dataType, charset)) in zip(table.key, keyTypes) {
            let encoding: KeyColumn.Encoding
            switch dataType {
            case "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "year": encoding = .number
            case "date", "time", "datetime", "timestamp": encoding = .time
            case "char", "varchar", "tinytext", "text", "mediumtext", "longtext": encoding = .bytes(charset: charset)
            case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob": encoding = .bytes(charset: nil)
            default:
                throw VerifyError(
                    "table \(table) has a key column \(column) of type \(dataType), which verify cannot range over",
                    hint: "Leave the table out of verify (--tables), or key it by integers, strings or times.")
            }
            key.append(KeyColumn(quoted: Self.quote(column), encoding: encoding))
        }
        let forms = zip(table.columns, columnTypes).map { Form(dataType: $1.dataType).sql(Self.quote($0)) }
        let layout = Layout(key: key, forms: forms)
        layouts[table] = layout
        return layout
    }

    private static func hex(_ text: String) -> String { MySQLConnection.hexLiteral(Array(text.utf8)) }

    private func query(_ sql: String, _ what: String) throws(VerifyError) -> MySQLResult {
        if let login, lost {
            connection.close()
            connection = try Self.open(login)
            lost = false
        }
        do {
            return try connection.query(sql)
        } catch {
            lost = error.kind == .connectionLost || error.kind == .closed
            throw Self.failure(error, what)
        }
    }

    private static func failure(_ error: MySQLError, _ what: String) -> VerifyError {
        let hint =
            switch (error.kind, error.code) {
            case (.connection, _), (.connectionLost, _), (.closed, _):
                VerifyError.connectionHint
            case (_, 1146), (_, 1054): VerifyError.schemaHint
            case (_, 1142), (_, 1044): VerifyError.privilegeHint
            default:
                "See the MariaDB server's error log for details."
            }
        return VerifyError("cannot \(what): \(error.message)", hint: hint)
    }
}

/// The bytes of a hex text; only called on text checked to be hex.
private func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    func value(_ digit: UInt8) -> UInt8 { digit <= 57 ? digit - 48 : (digit | 0x20) - 87 }
    return stride(from: 0, to: digits.count - 1, by: 2).map { value(digits[$0]) << 4 | value(digits[$0 + 1]) }
}
