import MariaDBEngine
import MySQLClient
import TandemCore
import TandemSeed
import TandemVerify

/// The primary's side of a MariaDB seed, on one connection.
///
/// ## A chunk and its mark
/// Each chunk is one transaction: the rows are read with `LOCK IN SHARE MODE` (a locking read
/// sees the latest committed version and holds every row read until the commit), the rows are
/// offered, and the chunk's `SeedMark` is written as the row of `tandem.seed_mark`
/// (`SeedMarkTable`) before the commit. No change to those rows can commit between the read and
/// the mark, so the mark's place in the binlog is where the copied rows are current; capture
/// decodes the row event as the transaction's seed mark and puts the rows in its place.
///
/// ## Values
/// Rows are read over the text protocol, whose text is exact for every type under the session's
/// settings (see `SeedColumn`), and become the very `Value`s and `Relation` the binlog decoder
/// gives for the same row, so the applier writes them back exactly as it would a captured row.
///
/// ## Key order
/// Chunks follow the primary key in the server's order of its columns (their collations), the
/// next one starting after the last key read: `k1 > a OR (k1 = a AND k2 > b) …`, the form
/// MariaDB's range optimizer turns into a range of the primary key. Key parts travel as verify's
/// do (`MariaDBVerifySide`): numbers and times as text, strings and binaries as hex of their bytes.
///
/// Used by one thread at a time.
public final class MariaDBSeedSource: SeedSource {
    private let session: SeedSession
    private let filter: VerifyTableFilter?
    private var layouts: [VerifyTable: Layout] = [:]

    /// What the source knows of one table to copy.
    private struct Layout {
        var relation: Relation
        var columns: [SeedColumn]
        /// Indices into `columns` of the key, in key order.
        var key: [Int]
        var select: String
        var order: String
    }

    /// The session settings the exactness of the text protocol rests on: TIMESTAMP's text
    /// follows `time_zone` (UTC has no ambiguous hour); CHAR's follows `sql_mode`.
    static let settings = [
        "SET SESSION time_zone = '+00:00'", "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
        "SET SESSION max_statement_time = 0", "SET SESSION autocommit = 1",
    ]

    /// Schemas never copied: the server's own and Tandem's (the same rule as capture's).
    static let internalSchemas = ["mysql", "sys", "performance_schema", "information_schema", "tandem"]

    /// Connects to the primary as `login`; `filter` is the pair's table selection (capture's).
    public init(login: MySQLLogin, filter: VerifyTableFilter? = nil) throws(SeedError) {
        self.session = try SeedSession(login: login, site: "primary", settings: Self.settings)
        self.filter = filter
    }

    public func tables(_ names: [String]?) throws(SeedError) -> [SeedTable] {
        let excluded = Self.internalSchemas.map { "'" + $0 + "'" }.joined(separator: ", ")
        let result = try session.query(
            """
            SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, s.SEQ_IN_INDEX, t.TABLE_ROWS,
              t.DATA_LENGTH + t.INDEX_LENGTH
            FROM information_schema.COLUMNS c
            JOIN information_schema.TABLES t
              ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE = 'BASE TABLE'
            LEFT JOIN information_schema.STATISTICS s
              ON s.TABLE_SCHEMA = c.TABLE_SCHEMA AND s.TABLE_NAME = c.TABLE_NAME AND s.COLUMN_NAME = c.COLUMN_NAME
              AND s.INDEX_NAME = 'PRIMARY'
            WHERE c.TABLE_SCHEMA NOT IN (\(excluded))
            ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION
            """, "read the catalog")
        var estimates: [String: (rows: Int64, bytes: Int64)] = [:]
        for row in result.rows {
            let name = (row[0] ?? "") + "." + (row[1] ?? "")
            estimates[name] = (row[4].flatMap { Int64($0) } ?? 0, row[5].flatMap { Int64($0) } ?? 0)
        }
        let catalog = VerifyCatalog(rows: result.rows.map { Array($0.prefix(4)) })
        let replicated = catalog.tables.filter { filter?($0.schema, $0.name) ?? true }
        var chosen: [VerifyTable] = []
        var keyless: [String] = [], unknown: [String] = [], unreplicated: [String] = []
        if let names {
            for name in names {
                if let table = replicated.first(where: { $0.description == name }) {
                    chosen.append(table)
                } else if catalog.tables.contains(where: { $0.description == name }) {
                    unreplicated.append(name)
                } else {
                    unknown.append(name)
                }
            }
        } else {
            chosen = replicated
        }
        keyless = chosen.filter(\.key.isEmpty).map(\.description)
        // A column the seed cannot read is one capture cannot decode either: refused now, before
        // anything is copied, rather than at the table's first chunk.
        var unreadable: [String] = []
        for table in chosen where !table.key.isEmpty {
            do throws(SeedError) { _ = try layout(of: table) } catch { unreadable.append(error.description) }
        }
        guard keyless.isEmpty, unknown.isEmpty, unreplicated.isEmpty, unreadable.isEmpty else {
            var parts: [String] = []
            if !keyless.isEmpty { parts.append("without a primary key: " + keyless.joined(separator: ", ")) }
            if !unknown.isEmpty { parts.append("unknown: " + unknown.joined(separator: ", ")) }
            if !unreplicated.isEmpty {
                parts.append("not replicated by this pair: " + unreplicated.joined(separator: ", "))
            }
            parts += unreadable
            throw SeedError(
                "cannot seed these tables; " + parts.joined(separator: "; "),
                hint:
                    "Name tables as schema.table as the catalog spells them, give each a primary key (a seed copies by key ranges) and replicated column types, or leave them out."
            )
        }
        return chosen.map { table in
            let estimate = estimates[table.description] ?? (0, 0)
            return SeedTable(table: table, estimatedRows: estimate.rows, estimatedBytes: estimate.bytes)
        }
    }

    /// `CREATE DATABASE IF NOT EXISTS` for each database (with its default charset) and each
    /// table's own `SHOW CREATE TABLE`, after a `USE` of its database so that foreign keys name
    /// the same tables; foreign key checks are off for the script, so tables may come in any
    /// order. `after` stays empty: secondary indexes are not split off, because the copy is
    /// applied row by row among the live changes (not bulk-loaded), and a UNIQUE index missing
    /// during the copy would change which row `INSERT … ON DUPLICATE KEY UPDATE` finds.
    public func schema(for tables: [SeedTable]) throws(SeedError) -> SeedSchema {
        var statements = ["SET SESSION foreign_key_checks = 0"]
        var databases: [String] = []
        for table in tables where !databases.contains(table.table.schema) { databases.append(table.table.schema) }
        for database in databases {
            let result = try session.query(
                "SHOW CREATE DATABASE IF NOT EXISTS \(SeedSQL.quote(database))", "read the definition of \(database)")
            guard let create = result.value(row: 0, column: 1) else {
                throw SeedError("MariaDB returned no definition of database \(database)", hint: Self.bugHint)
            }
            statements.append(create)
        }
        for table in tables {
            let result = try session.query(
                "SHOW CREATE TABLE \(SeedSQL.name(schema: table.table.schema, table: table.table.name))",
                "read the definition of \(table)")
            guard let create = result.value(row: 0, column: 1) else {
                throw SeedError("MariaDB returned no definition of table \(table)", hint: Self.bugHint)
            }
            statements.append("USE \(SeedSQL.quote(table.table.schema))")
            statements.append(create)
        }
        statements.append("SET SESSION foreign_key_checks = 1")
        return SeedSchema(before: statements.joined(separator: ";\n") + ";\n", after: "")
    }

    public func readChunk(
        _ table: SeedTable, after: KeyValue?, rows: Int, mark: SeedMark, offer: ([RowChange]) -> Void
    ) throws(SeedError) -> CopyChunk {
        let layout = try layout(of: table.table)
        let limit = max(rows, 1)
        let sql =
            layout.select + (try predicate(layout, after, table)) + " ORDER BY \(layout.order) LIMIT \(limit)"
            + " LOCK IN SHARE MODE"
        try session.execute("START TRANSACTION", "start the chunk's transaction")
        let chunk: CopyChunk
        do throws(SeedError) {
            let result = try session.query(sql, "read a chunk of \(table)")
            chunk = try Self.chunk(result, layout, table, asked: limit)
            offer(chunk.rows)
            try session.execute(SeedMarkTable.write(mark), "write \(mark) into tandem.seed_mark")
        } catch {
            session.rollback()
            throw error
        }
        // A failed COMMIT leaves the outcome unknown when the connection went; otherwise the
        // transaction is still open and is rolled back.
        do throws(SeedError) {
            try session.execute("COMMIT", "commit the chunk of \(table) under \(mark)")
        } catch {
            session.rollback()
            throw error
        }
        return chunk
    }

    public func close() {
        session.close()
    }

    // MARK: Reading

    private static func chunk(_ result: MySQLResult, _ layout: Layout, _ table: SeedTable, asked: Int)
        throws(SeedError) -> CopyChunk
    {
        var changes: [RowChange] = []
        changes.reserveCapacity(result.rowCount)
        var bytes = 0
        for row in result.rawRows {
            guard row.count == layout.columns.count else {
                throw SeedError("MariaDB returned \(row.count) columns for \(table)", hint: bugHint)
            }
            var values: [Value] = []
            values.reserveCapacity(row.count)
            for (column, raw) in zip(layout.columns, row) {
                bytes += raw?.count ?? 0
                guard let value = column.value(raw) else {
                    throw SeedError(
                        "a value of \(table).\(column.name) (\(column.column.nativeType)) cannot be read: "
                            + String(decoding: (raw ?? []).prefix(64), as: UTF8.self),
                        hint: bugHint)
                }
                values.append(value)
            }
            changes.append(RowChange(relation: layout.relation, kind: .copy, new: values))
        }
        var last: KeyValue?
        if let row = result.rawRows.last {
            let columns = layout.key.map { layout.columns[$0] }
            let raws = layout.key.map { row[$0] }
            last = KeyValue(
                parts: zip(columns, raws).map { $0.keyPart($1) },
                display: "(" + zip(columns, raws).map { $0.display($1) }.joined(separator: ", ") + ")")
        }
        return CopyChunk(rows: changes, last: last, bytes: bytes, exhausted: result.rowCount < asked)
    }

    /// The WHERE clause (with its leading space; empty from the start) of the rows after `after`.
    private func predicate(_ layout: Layout, _ after: KeyValue?, _ table: SeedTable) throws(SeedError) -> String {
        guard let after else { return "" }
        let key = layout.key.map { layout.columns[$0] }
        guard after.parts.count == key.count else {
            throw SeedError(
                "key \(after) has \(after.parts.count) parts; \(table)'s primary key has \(key.count)",
                hint: "The table changed since the seed started; run the seed again.")
        }
        var literals: [String] = []
        for (column, part) in zip(key, after.parts) {
            guard let literal = column.literal(part) else {
                throw SeedError("key \(after) is not a key of \(table)", hint: Self.bugHint)
            }
            literals.append(literal)
        }
        let alternatives = key.indices.map { position in
            let equal = (0..<position).map { "\(SeedSQL.quote(key[$0].name)) = \(literals[$0])" }
            return "("
                + (equal + ["\(SeedSQL.quote(key[position].name)) > \(literals[position])"])
                .joined(separator: " AND ") + ")"
        }
        return " WHERE " + alternatives.joined(separator: " OR ")
    }

    private func layout(of table: VerifyTable) throws(SeedError) -> Layout {
        if let known = layouts[table] { return known }
        let result = try session.query(
            """
            SELECT \(SeedColumn.catalogColumns) FROM information_schema.COLUMNS
            WHERE TABLE_SCHEMA = \(SeedSQL.string(table.schema)) AND TABLE_NAME = \(SeedSQL.string(table.name))
            ORDER BY ORDINAL_POSITION
            """, "read the columns of \(table)")
        var columns: [SeedColumn] = []
        for row in result.rows {
            let name = row[0] ?? ""
            let facts = SeedColumn.Facts(
                name: name, dataType: row[1] ?? "", columnType: row[2] ?? "", charset: row[3],
                octetLength: row[4].flatMap { Int($0) }, precision: row[5].flatMap { Int($0) },
                scale: row[6].flatMap { Int($0) }, datetimePrecision: row[7].flatMap { Int($0) },
                nullable: row[8] == "YES", isKey: table.key.contains(name))
            do throws(SeedColumn.Unsupported) {
                columns.append(try SeedColumn(facts))
            } catch {
                throw SeedError(
                    "column \(table).\(name) cannot be seeded: \(error.reason)",
                    hint: "Capture cannot replicate it either; change the column's type or leave the table out.")
            }
        }
        guard columns.map(\.name) == table.columns else {
            throw SeedError(
                "table \(table) changed since the seed described it (columns \(columns.map(\.name)))",
                hint: "Run the seed again.")
        }
        var key: [Int] = []
        for name in table.key {
            guard let index = columns.firstIndex(where: { $0.name == name }), columns[index].keyEncoding != nil else {
                throw SeedError(
                    "table \(table) has a key column \(name) the seed cannot range over",
                    hint: "Key the table by integers, strings or times, or leave it out.")
            }
            key.append(index)
        }
        let layout = Layout(
            relation: Relation(
                name: RelationName(schema: table.schema, name: table.name), columns: columns.map(\.column)),
            columns: columns, key: key,
            select: "SELECT \(columns.map(\.selected).joined(separator: ", ")) FROM "
                + SeedSQL.name(schema: table.schema, table: table.name),
            order: key.map { SeedSQL.quote(columns[$0].name) }.joined(separator: ", "))
        layouts[table] = layout
        return layout
    }

    static let bugHint = "This is a bug in Tandem's MariaDB seed; report it with the server's version."
}
