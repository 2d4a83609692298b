import Foundation
import PGClient
import PostgreSQLEngine
import PostgreSQLVerify
import TandemCore
import TandemSeed
import TandemVerify

/// The seed's port on the primary's PostgreSQL database.
///
/// A chunk is read in one READ COMMITTED transaction: `SELECT … ORDER BY key LIMIT n FOR SHARE`,
/// then `pg_logical_emit_message(true, 'tandem.seed', mark)`, then COMMIT. The share locks keep
/// every row read from changing until the commit, and the transactional message is decoded at
/// the commit's place in the WAL: every change to these rows committed before it precedes the
/// mark in the stream and is already in the rows, every later one follows it. Rows inserted by
/// others meanwhile are not locked; if such an insert commits first, it precedes the mark and
/// reaches the DR site on its own, and the chunk (which did not see it) does not overwrite it.
///
/// Values are read in text form under the session settings the walsender uses for pgoutput
/// (ISO dates, UTC, shortest exact floats, hex bytea) and become `Value`s by the same rule as the
/// capture's (`PgBuiltinType`), so the DR site applies a copied row exactly as it would apply the
/// same row inserted.
///
/// Used by one thread at a time.
public final class PostgreSQLSeedSource: SeedSource {
    private let connection: PGConnection
    private let conninfo: String
    private let password: String?
    private let filter: VerifyTableFilter?
    private var shapes: [RelationName: Shape] = [:]

    /// A table as the chunk query reads it.
    struct Shape {
        var relation: Relation
        var select: String
        /// The key columns' positions in the row and their SQL types (for the bound's casts).
        var key: [(index: Int, type: String)]
    }

    /// `conninfo` without the password, which travels apart (`PGPASSWORD` for pg_dump).
    public init(conninfo: String, password: String?, filter: VerifyTableFilter?) throws(SeedError) {
        self.conninfo = conninfo
        self.password = password
        self.filter = filter
        do {
            connection = try PGConnection(
                conninfo: conninfo, extraKeywords: password.map { [("password", $0)] } ?? [])
            _ = try connection.exec(
                "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; "
                    + "SET extra_float_digits = 1; SET bytea_output = 'hex'; SET search_path = pg_catalog")
        } catch {
            throw SeedError(
                "cannot connect to the primary's PostgreSQL for the seed: \(error.message)",
                hint: "Check the site's [database] settings and that the database accepts the agent's login.")
        }
    }

    public func tables(_ names: [String]?) throws(SeedError) -> [SeedTable] {
        let catalog = try query(PostgreSQLVerifySide.catalogQuery, [], "read the catalog")
        let chosen = try SeedSelection.choose(VerifyCatalog(rows: catalog.rows).tables, names: names, filter: filter)
        return try chosen.map { table throws(SeedError) in
            let size = try query(
                "SELECT greatest(c.reltuples, 0)::int8, pg_total_relation_size(c.oid) FROM pg_class c WHERE c.oid = to_regclass($1)",
                [Self.name(table.schema, table.name)], "estimate the size of \(table)")
            return SeedTable(
                table: table, estimatedRows: size.value(row: 0, column: 0).flatMap { Int64($0) } ?? 0,
                estimatedBytes: size.value(row: 0, column: 1).flatMap { Int64($0) } ?? 0)
        }
    }

    public func schema(for tables: [SeedTable]) throws(SeedError) -> SeedSchema {
        // A dump of single tables creates no schema: the tables' own come first. pg_dump puts
        // primary keys in post-data, but the copy writes over rows by their key (ON CONFLICT),
        // so each primary key moves to the first part; the other indexes and constraints stay
        // in the second, built once over the copied rows.
        let schemas = Set(tables.map(\.table.schema)).sorted().map { "CREATE SCHEMA IF NOT EXISTS \(Self.quote($0));" }
        var keys: [String] = []
        var keyNames: Set<String> = []
        for table in tables {
            let result = try query(
                """
                SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint
                WHERE conrelid = to_regclass($1) AND contype = 'p'
                """, [Self.name(table.table.schema, table.table.name)], "read the primary key of \(table)")
            guard let name = result.value(row: 0, column: 0), let definition = result.value(row: 0, column: 1) else {
                continue
            }
            keys.append(
                "ALTER TABLE ONLY \(Self.name(table.table.schema, table.table.name)) ADD CONSTRAINT \(name) \(definition);"
            )
            keyNames.insert(name)
        }
        return SeedSchema(
            before: (schemas + (try typesUsed(by: tables)) + [try dump(tables, section: "pre-data")] + keys)
                .joined(separator: "\n"),
            after: Self.withoutPrimaryKeys(try dump(tables, section: "post-data"), named: keyNames))
    }

    /// The statements that create the types the tables' columns use and a dump of single tables
    /// leaves out: enums, domains, composite and range types, and what those use in turn
    /// (array elements, domain bases, composite attributes, range subtypes), dependencies first;
    /// a type of an extension becomes `CREATE EXTENSION IF NOT EXISTS`. Each is skipped at a DR
    /// site that has it already (a seed continued, or of other tables).
    private func typesUsed(by tables: [SeedTable]) throws(SeedError) -> [String] {
        // The names as a JSON array: a string list with no quoting rules of its own to get wrong.
        let names = String(
            decoding: (try? JSONEncoder().encode(tables.map { Self.name($0.table.schema, $0.table.name) })) ?? Data(),
            as: UTF8.self)
        // Every name printed in full: format_type qualifies whatever is not on the search path.
        do { _ = try connection.exec("SET search_path = pg_catalog") } catch {
            throw Self.failure(error, "read the tables' types")
        }
        defer { _ = try? connection.exec("RESET search_path") }
        let result = try query(Self.typesQuery, [names], "read the types the tables use")
        var schemas: [String] = []
        var statements: [String] = []
        for row in 0..<result.rowCount {
            guard let statement = result.value(row: row, column: 0), !statements.contains(statement) else { continue }
            statements.append(statement)
            let schema = result.value(row: row, column: 2) ?? "public"
            if result.value(row: row, column: 3) == "f", !schemas.contains(schema) { schemas.append(schema) }
        }
        return schemas.map { "CREATE SCHEMA IF NOT EXISTS \(Self.quote($0));" } + statements
    }

    /// One row per statement, in the order to run them (see `typesUsed`).
    static let typesQuery = """
        WITH RECURSIVE used(oid, depth) AS (
          SELECT a.atttypid, 0 FROM pg_attribute a
          WHERE a.attrelid IN (SELECT to_regclass(n) FROM json_array_elements_text($1::json) AS n)
            AND a.attnum > 0 AND NOT a.attisdropped
          UNION ALL
          SELECT c.child, u.depth + 1 FROM used u JOIN pg_type t ON t.oid = u.oid
          CROSS JOIN LATERAL (
            SELECT t.typelem WHERE t.typelem <> 0
            UNION ALL SELECT t.typbasetype WHERE t.typbasetype <> 0
            UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid
            UNION ALL SELECT a.atttypid FROM pg_attribute a
              WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
          ) AS c(child)
          WHERE u.depth < 32
        ), types AS (
          SELECT t.oid, max(u.depth) AS depth FROM used u JOIN pg_type t ON t.oid = u.oid
          JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
          GROUP BY t.oid
        )
        SELECT CASE
            WHEN e.extname IS NOT NULL THEN format('CREATE EXTENSION IF NOT EXISTS %I;', e.extname)
            ELSE format('DO $tandem$ BEGIN %s EXCEPTION WHEN duplicate_object THEN NULL; END $tandem$;',
              CASE t.typtype
              WHEN 'e' THEN format('CREATE TYPE %s AS ENUM (%s);', t.oid::regtype,
                (SELECT string_agg(quote_literal(l.enumlabel), ', ' ORDER BY l.enumsortorder)
                 FROM pg_enum l WHERE l.enumtypid = t.oid))
              WHEN 'd' THEN format('CREATE DOMAIN %s AS %s%s%s%s;', t.oid::regtype, format_type(t.typbasetype, t.typtypmod),
                CASE WHEN t.typdefaultbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(t.typdefaultbin, 0)
                  WHEN t.typdefault IS NOT NULL THEN ' DEFAULT ' || t.typdefault ELSE '' END,
                CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END,
                coalesce((SELECT string_agg(' CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid), ''
                  ORDER BY k.conname) FROM pg_constraint k WHERE k.contypid = t.oid), ''))
              WHEN 'c' THEN format('CREATE TYPE %s AS (%s);', t.oid::regtype,
                (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', '
                   ORDER BY a.attnum)
                 FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped))
              WHEN 'r' THEN format('CREATE TYPE %s AS RANGE (SUBTYPE = %s);', t.oid::regtype,
                (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid))
              END)
          END, types.depth, n.nspname, e.extname IS NOT NULL
        FROM types JOIN pg_type t ON t.oid = types.oid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        LEFT JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
        LEFT JOIN pg_extension e ON e.oid = d.refobjid
        LEFT JOIN pg_class rel ON rel.oid = t.typrelid
        WHERE (e.extname IS NOT NULL OR t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND rel.relkind = 'c'))
        ORDER BY e.extname IS NULL, types.depth DESC, t.oid
        """

    /// `postData` without the statements that add the primary keys `names` (pg_dump writes each
    /// as `ALTER TABLE ONLY t` and, on the next line, `ADD CONSTRAINT name PRIMARY KEY (…);`).
    static func withoutPrimaryKeys(_ postData: String, named names: Set<String>) -> String {
        let lines = postData.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var kept: [String] = []
        var index = 0
        while index < lines.count {
            if index + 1 < lines.count, lines[index].hasPrefix("ALTER TABLE "),
                names.contains(where: {
                    lines[index + 1].trimmingCharacters(in: .whitespaces).hasPrefix("ADD CONSTRAINT \($0) PRIMARY KEY ")
                })
            {
                index += 2
                continue
            }
            kept.append(lines[index])
            index += 1
        }
        return kept.joined(separator: "\n")
    }

    public func readChunk(
        _ table: SeedTable, after: KeyValue?, rows: Int, mark: SeedMark, offer: ([RowChange]) -> Void
    ) throws(SeedError) -> CopyChunk {
        let shape = try shape(of: table)
        var sql = shape.select
        var parameters: [String?] = []
        if let after {
            let columns = shape.key.map { Self.quote(shape.relation.columns[$0.index].name) }
            let bounds = shape.key.enumerated().map { "$\($0.offset + 1)::\($0.element.type)" }
            sql += " WHERE (\(columns.joined(separator: ", "))) > (\(bounds.joined(separator: ", ")))"
            parameters = after.parts
        }
        sql +=
            " ORDER BY \(shape.key.map { Self.quote(shape.relation.columns[$0.index].name) }.joined(separator: ", "))"
            + " LIMIT \(max(rows, 1)) FOR SHARE"
        do {
            _ = try connection.exec("BEGIN ISOLATION LEVEL READ COMMITTED")
        } catch {
            throw Self.failure(error, "start the chunk transaction of \(table)")
        }
        var committed = false
        defer { if !committed { _ = try? connection.exec("ROLLBACK") } }
        let result: PGResult
        do { result = try connection.execParams(sql, parameters) } catch {
            throw Self.failure(error, "read a chunk of \(table)")
        }
        var changes: [RowChange] = []
        changes.reserveCapacity(result.rowCount)
        var bytes = 0
        for row in 0..<result.rowCount {
            var values: [Value] = []
            values.reserveCapacity(shape.relation.columns.count)
            for (index, column) in shape.relation.columns.enumerated() {
                guard let text = result.value(row: row, column: index) else {
                    values.append(.null)
                    continue
                }
                bytes += text.utf8.count
                guard let value = PgBuiltinType.value(text: text, typeOID: column.nativeTypeID) else {
                    throw SeedError(
                        "\(table).\(column.name) holds a value Tandem cannot read as \(column.nativeType): \(text.prefix(80))",
                        hint: "Report it, with the column's type.")
                }
                values.append(value)
            }
            changes.append(RowChange(relation: shape.relation, kind: .copy, new: values))
        }
        let last =
            result.rowCount == 0
            ? nil
            : KeyValue(parts: shape.key.map { result.value(row: result.rowCount - 1, column: $0.index) })
        offer(changes)
        do {
            _ = try connection.execParams(
                "SELECT pg_logical_emit_message(true, $1, $2)", [SeedMark.messagePrefix, mark.text])
            _ = try connection.exec("COMMIT")
            committed = true
        } catch {
            throw Self.failure(error, "commit the chunk of \(table)")
        }
        return CopyChunk(rows: changes, last: last, bytes: bytes, exhausted: result.rowCount < max(rows, 1))
    }

    public func close() {
        connection.close()
    }

    // MARK: catalog and SQL

    /// The table's columns as the capture describes them (`PgOutputDecoder.relation`): names,
    /// built-in types by OID, others by their qualified name, key = the primary key.
    private func shape(of table: SeedTable) throws(SeedError) -> Shape {
        if let known = shapes[table.name] { return known }
        let result = try query(
            """
            SELECT a.attname, a.atttypid::int8, a.atttypmod, format_type(a.atttypid, a.atttypmod),
              CASE WHEN tn.nspname = 'pg_catalog' THEN t.typname ELSE tn.nspname || '.' || t.typname END,
              coalesce(a.attnum = ANY (i.indkey::int2[]), false), NOT a.attnotnull
            FROM pg_attribute a
            JOIN pg_type t ON t.oid = a.atttypid
            JOIN pg_namespace tn ON tn.oid = t.typnamespace
            LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
            WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """, [Self.name(table.table.schema, table.table.name)], "read the columns of \(table)")
        var columns: [Column] = []
        var types: [String] = []
        for row in 0..<result.rowCount {
            guard let name = result.value(row: row, column: 0),
                let oid = result.value(row: row, column: 1).flatMap(UInt32.init),
                let modifier = result.value(row: row, column: 2).flatMap(Int32.init),
                let type = result.value(row: row, column: 3)
            else { continue }
            let builtin = PgBuiltinType.lookup(oid, typeModifier: modifier)
            columns.append(
                Column(
                    name: name, type: builtin?.type ?? .other,
                    nativeType: builtin?.name ?? result.value(row: row, column: 4) ?? "oid \(oid)", nativeTypeID: oid,
                    isKey: result.value(row: row, column: 5) == "t",
                    isNullable: result.value(row: row, column: 6) == "t"))
            types.append(type)
        }
        var key: [(index: Int, type: String)] = []
        for name in table.table.key {
            guard let index = columns.firstIndex(where: { $0.name == name }) else {
                throw SeedError("the key column \(name) of \(table) is gone", hint: "Run the seed again.")
            }
            key.append((index, types[index]))
        }
        let shape = Shape(
            relation: Relation(name: table.name, columns: columns),
            select: "SELECT " + columns.map { Self.quote($0.name) }.joined(separator: ", ") + " FROM "
                + Self.name(table.table.schema, table.table.name),
            key: key)
        shapes[table.name] = shape
        return shape
    }

    /// One section of `pg_dump --schema-only` for `tables`, without psql meta-commands (newer
    /// pg_dump writes `\restrict` lines, which only psql understands).
    private func dump(_ tables: [SeedTable], section: String) throws(SeedError) -> String {
        var arguments = ["--schema-only", "--section=\(section)", "--no-owner", "--no-privileges", "-d", conninfo]
        for table in tables { arguments += ["-t", Self.name(table.table.schema, table.table.name)] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.pgDump())
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        if let password { environment["PGPASSWORD"] = password }
        process.environment = environment
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch {
            throw SeedError(
                "cannot run pg_dump for the schema: \(error.localizedDescription)",
                hint: "Install the PostgreSQL client tools of the server's version (apt-get install postgresql-client)."
            )
        }
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: stderr, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
            throw SeedError(
                "pg_dump of the schema (\(section)) failed: \(message)",
                hint: "pg_dump must be at least the server's version and may read the tables' definitions.")
        }
        return String(decoding: stdout, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("\\") }.joined(separator: "\n")
    }

    /// The newest pg_dump installed (Debian keeps one per major version), else the one on PATH.
    static func pgDump() -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init)
            .sorted()
        for version in versions.reversed()
        where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/pg_dump") {
            return "\(root)/\(version)/bin/pg_dump"
        }
        return "/usr/bin/pg_dump"
    }

    static func quote(_ identifier: String) -> String {
        "\"" + identifier.replacing("\"", with: "\"\"") + "\""
    }

    static func name(_ schema: String, _ table: String) -> String { quote(schema) + "." + quote(table) }

    private func query(_ sql: String, _ parameters: [String?], _ what: String) throws(SeedError) -> PGResult {
        do { return try connection.execParams(sql, parameters) } catch { throw Self.failure(error, what) }
    }

    static func failure(_ error: PGError, _ what: String) -> SeedError {
        let hint =
            switch (error.kind, error.sqlState) {
            case (.connection, _), (.connectionLost, _), (.closed, _):
                "Check that the primary's database is up; the seed reads the chunk again once it is."
            case (_, "42501"): "Grant the agent's login SELECT on the table (the seed reads it under share locks)."
            default: error.hint ?? "See the PostgreSQL server log for details."
            }
        return SeedError("cannot \(what): \(error.message)", hint: hint)
    }
}
