/// Which tables a site replicates, by schema and table name: the agent's selection, so that
/// verify compares what the pair carries and nothing else.
public typealias VerifyTableFilter = (_ schema: String, _ table: String) -> Bool

/// One site's tables as its catalog lists them, from which every engine answers `describe` the
/// same way: the engines differ in how they read their catalog, not in which tables qualify or
/// in how a request for a table that does not is refused.
public struct VerifyCatalog: Sendable {
    /// One column of one table, as the catalog query returns it.
    public struct Column: Sendable {
        public var schema: String
        public var table: String
        public var name: String
        /// Its place in the primary key (1 for the first key column), nil when it is not a key
        /// column.
        public var keyPosition: Int?

        public init(schema: String, table: String, name: String, keyPosition: Int?) {
            self.schema = schema
            self.table = table
            self.name = name
            self.keyPosition = keyPosition
        }
    }

    /// Every table, in catalog order; a table without a primary key has an empty `key`.
    public private(set) var tables: [VerifyTable] = []

    /// `columns` in table order and, within a table, in the table's column order.
    public init(_ columns: [Column]) {
        var keys: [(position: Int, name: String)] = []
        func finish() {
            guard !tables.isEmpty else { return }
            tables[tables.count - 1].key = keys.sorted { $0.position < $1.position }.map(\.name)
            keys = []
        }
        for column in columns {
            if tables.last?.schema != column.schema || tables.last?.name != column.table {
                finish()
                tables.append(VerifyTable(schema: column.schema, name: column.table, key: [], columns: []))
            }
            tables[tables.count - 1].columns.append(column.name)
            if let position = column.keyPosition { keys.append((position, column.name)) }
        }
        finish()
    }

    /// `VerifySide.describe`: every table that passes `filter` and has a primary key (nil
    /// names), or exactly the tables named as `schema.table`, in the order named.
    public func select(_ names: [String]?, filter: VerifyTableFilter?) throws(VerifyError) -> [VerifyTable] {
        let replicated = tables.filter { filter?($0.schema, $0.name) ?? true }
        guard let names else { return replicated.filter { !$0.key.isEmpty } }
        var selected: [VerifyTable] = []
        for name in names {
            guard let table = replicated.first(where: { $0.description == name }) else {
                let exists = tables.contains { $0.description == name }
                throw VerifyError(
                    exists ? "table \(name) is not replicated by this pair" : "table \(name) does not exist",
                    hint: exists
                        ? "Verify compares the tables the pair replicates; add it to the pair's tables or leave it out."
                        : "Name tables as schema.table, exactly as the catalog spells them (case matters).")
            }
            guard !table.key.isEmpty else {
                throw VerifyError(
                    "table \(name) has no primary key",
                    hint: "Verify splits tables into ranges of their primary key; add one, or leave the table out.")
            }
            selected.append(table)
        }
        return selected
    }
}

extension VerifyCatalog {
    /// The catalog from a query's rows of schema, table, column and key position (NULL for a
    /// column outside the key), in table and column order.
    public init(rows: [[String?]]) {
        self.init(
            rows.map { row in
                Column(
                    schema: row[0] ?? "", table: row[1] ?? "", name: row[2] ?? "",
                    keyPosition: row[3].flatMap { Int($0) })
            })
    }

    /// What this site's copy of `table` has for each of `names`, from what its catalog says of
    /// every column (`local`, by name): the site that described the table may have a different
    /// schema, which is an error naming the table and the column.
    public static func local<Column>(_ names: [String], of table: VerifyTable, in local: [String: Column])
        throws(VerifyError) -> [Column]
    {
        guard !local.isEmpty else {
            throw VerifyError(
                "table \(table) does not exist at this site", hint: "Both sites need the table; seed the DR site.")
        }
        var found: [Column] = []
        for name in names {
            guard let column = local[name] else {
                throw VerifyError("table \(table) has no column \(name) at this site", hint: VerifyError.schemaHint)
            }
            found.append(column)
        }
        return found
    }
}

extension VerifyError {
    /// For a table whose schema differs between the sites.
    public static let schemaHint = "The DR site's schema must be the primary's; seed or alter the DR table."
    /// For a connection that broke.
    public static let connectionHint = "The connection to the database was lost; the request may be retried."
    /// For a statement refused for want of privilege.
    public static let privilegeHint = "Grant the agent's database user SELECT on the tables verify compares."

    /// For what the database returned that the engine cannot read: a bug, not an operator's error.
    public static func unexpected(_ what: String) -> VerifyError {
        VerifyError(what, hint: "Report this as a bug.")
    }
}
