import PGClient
import TandemCore
import TandemVerify

/// Verify's port on a PostgreSQL database: every digest is computed by the server, so a chunk
/// costs one statement and returns one row whatever its size.
///
/// ## The compared form
/// A row's digest is `md5` of `ROW(c1, c2, …)::text`, the record's text form, which quotes
/// every field that needs it and leaves NULL empty, so NULL, `''` and `'NULL'` differ and no
/// two rows share a text. Text output depends only on the value and on a handful of session
/// settings, which the session fixes once (`Session.settings`); everything else about the
/// output (json keeps its input text, jsonb and numeric are canonical) is a function of the
/// value. `md5` rather than `hashtext`: the latter differs between platforms and versions.
///
/// A chunk's digest is the exact sum (`sum(int8)` is numeric) of the first 64 bits of its
/// rows' md5 read as signed integers: order-independent, and a change of any one row moves it.
///
/// ## Key order
/// Text-like keys (type category S) order and compare under `COLLATE "C"`, byte order, which
/// both sites share whatever their databases' locales; other types' orders do not depend on a
/// locale. Where the column already orders by bytes (the default collation of a C or POSIX
/// database) the clause is left out so the primary key's index still serves the range; the
/// order is the same either way, so two sites may differ in this.
///
/// Bounds travel as parameters cast to the key column's own type (`format_type`), so every key
/// type round-trips through its text form.
///
/// Used by one thread at a time.
public final class PostgreSQLVerifySide: VerifySide {
    private var connection: PGConnection
    /// Set when the side opened the connection itself, so that it may open a new one after the
    /// old one was lost (calls may be retried).
    private let conninfo: String?
    private let filter: VerifyTableFilter?
    private var keyColumns: [VerifyTable: [KeyColumn]] = [:]

    /// A key column as this site's catalog has it.
    private struct KeyColumn {
        var quoted: String
        var type: String
        var collatesByBytes: Bool

        /// How the column orders and compares.
        var ordered: String { collatesByBytes ? quoted : quoted + " COLLATE \"C\"" }

        /// Parameter `number` as a value of the column, comparable with `ordered`.
        func parameter(_ number: Int) -> String {
            "$\(number)::" + type + (collatesByBytes ? "" : " COLLATE \"C\"")
        }
    }

    /// Verifies on `connection`, which the side then owns (and closes).
    public init(connection: PGConnection, filter: VerifyTableFilter? = nil) throws(VerifyError) {
        self.connection = connection
        self.conninfo = nil
        self.filter = filter
        try Self.prepare(connection)
    }

    public init(conninfo: String, filter: VerifyTableFilter? = nil) throws(VerifyError) {
        self.connection = try Self.open(conninfo)
        self.conninfo = conninfo
        self.filter = filter
    }

    /// The session settings that make text output a function of the value alone.
    static let settings = [
        "TimeZone = 'UTC'", "DateStyle = 'ISO'", "IntervalStyle = 'postgres'",
        // Any positive value gives the shortest text that reads back as the same float.
        "extra_float_digits = 1", "bytea_output = 'hex'", "lc_monetary = 'C'",
        // format_type then qualifies every type outside pg_catalog, and no user function can
        // stand in for md5.
        "search_path = pg_catalog", "default_transaction_read_only = on",
    ]

    private static func open(_ conninfo: String) throws(VerifyError) -> PGConnection {
        let connection: PGConnection
        do {
            connection = try PGConnection(conninfo: conninfo)
        } catch {
            throw VerifyError(
                "cannot connect to PostgreSQL: \(error.message)",
                hint: "Check the site's [database] settings and that the database accepts the agent's login.")
        }
        try prepare(connection)
        return connection
    }

    private static func prepare(_ connection: PGConnection) throws(VerifyError) {
        do {
            _ = try connection.exec(settings.map { "SET " + $0 }.joined(separator: "; "))
        } catch {
            throw failure(error, "set the verify session up")
        }
    }

    public func describe(_ names: [String]?) throws(VerifyError) -> [VerifyTable] {
        let result = try query(Self.catalogQuery, [], "read the catalog")
        return try VerifyCatalog(rows: result.rows).select(names, filter: filter)
    }

    /// Every user table's columns with their primary key positions, as `VerifyCatalog(rows:)`
    /// reads them (seed describes its tables by the same query, so both see the same tables).
    public static let catalogQuery = """
        SELECT n.nspname, c.relname, a.attname, array_position(i.indkey::int2[], a.attnum)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tandem')
          AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
        ORDER BY n.nspname, c.relname, a.attnum
        """

    public func boundary(_ table: VerifyTable, after: KeyValue?, rows: Int) throws(VerifyError) -> KeyValue? {
        let key = try keyColumns(of: table)
        let range = Self.predicate(key, KeyRange(after: after, through: nil))
        let result = try query(
            "SELECT \(key.map(\.quoted).joined(separator: ", ")) FROM \(Self.name(table))\(range.sql)"
                + " ORDER BY \(key.map(\.ordered).joined(separator: ", ")) LIMIT 1 OFFSET \(max(rows, 1) - 1)",
            range.parameters, "find a chunk boundary in \(table)")
        guard result.rowCount == 1 else { return nil }
        return KeyValue(parts: key.indices.map { result.value(row: 0, column: $0) })
    }

    public func checksum(_ table: VerifyTable, _ range: KeyRange) throws(VerifyError) -> ChunkSum {
        let key = try keyColumns(of: table)
        let row = "ROW(" + table.columns.map(Self.quote).joined(separator: ", ") + ")::text"
        let predicate = Self.predicate(key, range)
        let result = try query(
            "SELECT count(*), coalesce(sum(('x' || left(md5(\(row)), 16))::bit(64)::int8), 0) FROM \(Self.name(table))"
                + predicate.sql, predicate.parameters, "checksum \(table) \(range)")
        guard let count = result.value(row: 0, column: 0).flatMap(UInt64.init),
            let digest = result.value(row: 0, column: 1)
        else { throw VerifyError.unexpected("PostgreSQL returned no checksum for \(table)") }
        return ChunkSum(rows: count, digest: digest)
    }

    public func rows(_ table: VerifyTable, _ range: KeyRange, limit: Int) throws(VerifyError) -> [VerifyRow] {
        let key = try keyColumns(of: table)
        let digests = table.columns.map { "md5(\(Self.quote($0))::text)" }
        let predicate = Self.predicate(key, range)
        let result = try query(
            "SELECT \((key.map(\.quoted) + digests).joined(separator: ", ")) FROM \(Self.name(table))\(predicate.sql)"
                + " ORDER BY \(key.map(\.ordered).joined(separator: ", ")) LIMIT \(max(limit, 0))",
            predicate.parameters, "read rows of \(table) \(range)")
        return (0..<result.rowCount).map { row in
            VerifyRow(
                key: KeyValue(parts: key.indices.map { result.value(row: row, column: $0) }),
                columns: table.columns.indices.map { result.value(row: row, column: key.count + $0) })
        }
    }

    public func currentPosition() throws(VerifyError) -> Position? {
        let result = try query("SELECT pg_current_wal_lsn()", [], "read the current WAL position")
        guard let text = result.value(row: 0, column: 0) else { return nil }
        do {
            return .postgresql(try LSN(parsing: text))
        } catch {
            throw VerifyError.unexpected("PostgreSQL returned \(error)")
        }
    }

    public func close() {
        connection.close()
    }

    // MARK: SQL

    /// `identifier` quoted as `quote_ident` would, except that it always quotes: always correct,
    /// and no keyword list to keep up to date.
    static func quote(_ identifier: String) -> String {
        "\"" + identifier.replacing("\"", with: "\"\"") + "\""
    }

    /// The table as SQL names it here, quoted.
    public static func name(_ table: VerifyTable) -> String { quote(table.schema) + "." + quote(table.name) }

    /// The WHERE clause (with its leading space, empty for the whole table) selecting `range`, and
    /// its parameters. Row comparison, which the primary key's index serves.
    private static func predicate(_ key: [KeyColumn], _ range: KeyRange) -> (sql: String, parameters: [String?]) {
        var conditions: [String] = []
        var parameters: [String?] = []
        for (bound, comparison) in [(range.lower, ">"), (range.upper, "<=")] {
            guard let bound else { continue }
            let placeholders = key.indices.map { key[$0].parameter(parameters.count + $0 + 1) }
            conditions.append(
                "(\(key.map(\.ordered).joined(separator: ", "))) \(comparison) (\(placeholders.joined(separator: ", ")))"
            )
            parameters += bound.parts
        }
        return (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "), parameters)
    }

    /// The key's columns as this site's catalog has them: types and collations are the local
    /// table's, whichever site described it.
    private func keyColumns(of table: VerifyTable) throws(VerifyError) -> [KeyColumn] {
        if let known = keyColumns[table] { return known }
        let result = try query(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod),
              t.typcategory <> 'S' OR (a.attcollation = 100 AND d.datlocprovider = 'c' AND d.datcollate IN ('C', 'POSIX'))
            FROM pg_attribute a
            JOIN pg_type t ON t.oid = a.atttypid
            JOIN pg_database d ON d.datname = current_database()
            WHERE a.attrelid = to_regclass(quote_ident($1) || '.' || quote_ident($2)) AND a.attnum > 0
              AND NOT a.attisdropped
            """, [table.schema, table.name], "read the key columns of \(table)")
        var columns: [String: KeyColumn] = [:]
        for row in 0..<result.rowCount {
            guard let name = result.value(row: row, column: 0), let type = result.value(row: row, column: 1) else {
                continue
            }
            columns[name] = KeyColumn(
                quoted: Self.quote(name), type: type, collatesByBytes: result.value(row: row, column: 2) == "t")
        }
        let key = try VerifyCatalog.local(table.key, of: table, in: columns)
        keyColumns[table] = key
        return key
    }

    private func query(_ sql: String, _ parameters: [String?], _ what: String) throws(VerifyError) -> PGResult {
        if let conninfo, !connection.isHealthy {
            connection.close()
            connection = try Self.open(conninfo)
        }
        do {
            return try connection.execParams(sql, parameters)
        } catch {
            throw Self.failure(error, what)
        }
    }

    private static func failure(_ error: PGError, _ what: String) -> VerifyError {
        let hint =
            switch (error.kind, error.sqlState) {
            case (.connection, _), (.connectionLost, _), (.closed, _):
                VerifyError.connectionHint
            case (_, "42P01"), (_, "42703"), (_, "42804"): VerifyError.schemaHint
            case (_, "42501"): VerifyError.privilegeHint
            default:
                error.hint ?? "See the PostgreSQL server log for details."
            }
        return VerifyError("cannot \(what): \(error.message)", hint: hint)
    }
}
