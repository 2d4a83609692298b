import MySQLClient
import TandemCore
import TandemSeed

/// The DR site's side of a MariaDB seed, on one connection at the DR database: what each table
/// holds, emptying tables, and the schema scripts of `MariaDBSeedSource.schema(for:)`.
///
/// Its writes go into the GTID domain `domainID` when given (the applier's): the DR site's own
/// capture, after a switchover, never ships them back. Foreign key checks are off for the
/// session, so a table others reference can be emptied and tables created in any order.
///
/// Used by one thread at a time.
public final class MariaDBSeedTarget: SeedTarget {
    private let session: SeedSession

    public init(login: MySQLLogin, domainID: UInt32? = nil) throws(SeedError) {
        var settings = ["SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'", "SET SESSION foreign_key_checks = 0"]
        if let domainID { settings.append("SET SESSION gtid_domain_id = \(domainID)") }
        self.session = try SeedSession(login: login, site: "DR", settings: settings)
    }

    public func inspect(_ tables: [RelationName]) throws(SeedError) -> [RelationName: TargetTableState] {
        guard !tables.isEmpty else { return [:] }
        let wanted = tables.map {
            "(TABLE_SCHEMA = \(SeedSQL.string($0.schema)) AND TABLE_NAME = \(SeedSQL.string($0.name)))"
        }
        let result = try session.query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND ("
                + wanted.joined(separator: " OR ") + ")", "look the tables up")
        let present = Set(result.rows.map { RelationName(schema: $0[0] ?? "", name: $0[1] ?? "") })
        var states: [RelationName: TargetTableState] = [:]
        for table in tables {
            guard present.contains(table) else {
                states[table] = .missing
                continue
            }
            let rows = try session.query(
                "SELECT EXISTS (SELECT 1 FROM \(SeedSQL.name(schema: table.schema, table: table.name)))",
                "look into \(table)")
            states[table] = rows.value(row: 0, column: 0) == "1" ? .holdsRows : .empty
        }
        return states
    }

    public func truncate(_ tables: [RelationName]) throws(SeedError) {
        for table in tables {
            try session.execute(
                "TRUNCATE TABLE \(SeedSQL.name(schema: table.schema, table: table.name))", "empty \(table)")
        }
    }

    /// Runs the statements of `script` in one round trip; the first that fails stops the script
    /// and is named (by number and text) in the error.
    public func run(script: String) throws(SeedError) {
        let connection = try session.open()
        let outcome: MySQLMultiOutcome
        do {
            try connection.setMultiStatements(true)
            outcome = try connection.executeMultiple(Array(script.utf8), context: "seed schema")
            try connection.setMultiStatements(false)
        } catch {
            session.lost(error)
            throw session.failure(error, "run the schema script")
        }
        if let failure = outcome.failure {
            let statement = Self.statement(script, at: outcome.outcomes.count)
            throw SeedError(
                "statement \(outcome.outcomes.count + 1) of the schema script failed at the DR site: \(failure.message)"
                    + (statement.map { " (\($0))" } ?? ""),
                hint: "Create the table at the DR site by hand, or drop what is in the way, then run the seed again.")
        }
    }

    public func close() {
        session.close()
    }

    /// The opening of the `index`th statement of a script Tandem wrote (one per line break after
    /// a `;`), for the error message only.
    private static func statement(_ script: String, at index: Int) -> String? {
        let statements = script.split(separator: ";\n", omittingEmptySubsequences: true)
        guard index < statements.count else { return nil }
        let text = statements[index].split(separator: "\n").first.map(String.init) ?? ""
        return text.count > 120 ? String(text.prefix(120)) + "…" : text
    }
}
