import ApplyKit
import MySQLClient
import TandemCore

/// What apply must know of a DR table, found once per connection, and the checks that it can be
/// applied to safely: it must be a base table (not a view), of a transactional engine (its rows
/// commit together with the checkpoint, or exactly once is lost), and without triggers unless
/// they are allowed (they would fire again for rows the source's triggers already changed).
struct MariaDBTargetTable {
    /// Lower-cased names of the columns the server computes (never written).
    var generated: Set<String>

    /// The three queries of the lookup, in one round: the table's type and engine, its
    /// generated columns, its triggers.
    static func writeLookup(_ name: RelationName, into query: inout SQLWriter) throws(ApplyError) {
        let schema = MariaDBLiteral.string(name.schema)
        let table = MariaDBLiteral.string(name.name)
        query.raw(
            "SELECT t.TABLE_TYPE, t.ENGINE, e.TRANSACTIONS FROM information_schema.TABLES t LEFT JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE WHERE t.TABLE_SCHEMA = "
        )
        try query.literal(schema)
        query.raw(" AND t.TABLE_NAME = ")
        try query.literal(table)
        query.raw(
            ";SELECT LOWER(COLUMN_NAME) FROM information_schema.COLUMNS WHERE IS_GENERATED = 'ALWAYS' AND TABLE_SCHEMA = "
        )
        try query.literal(schema)
        query.raw(" AND TABLE_NAME = ")
        try query.literal(table)
        query.raw(";SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ")
        try query.literal(schema)
        query.raw(" AND EVENT_OBJECT_TABLE = ")
        try query.literal(table)
    }

    /// The table as the lookup's outcome describes it, or the reason apply refuses it.
    /// - Parameter domainID: the apply domain, for the hint on triggers that skip its session.
    init(
        _ name: RelationName, lookup outcome: MySQLMultiOutcome, allowTriggers: Bool, domainID: UInt32,
        _ context: StatementContext
    ) throws(ApplyError) {
        if let error = outcome.failure { throw MariaDBErrors.failure(error, context) }
        guard outcome.outcomes.count == 3, let kind = outcome.outcomes[0].result,
            let generated = outcome.outcomes[1].result, let triggers = outcome.outcomes[2].result
        else {
            throw MariaDBErrors.internalError("the lookup of \(name) returned \(outcome.outcomes.count) results")
        }
        guard kind.rowCount == 1 else {
            throw MariaDBStatementPlanner.failure(
                .statement, "table \(name) does not exist at the DR server", context,
                hint: "Create the table at the DR site (seed it from the source) before applying.")
        }
        let type = kind.value(row: 0, column: 0) ?? ""
        let engine = kind.value(row: 0, column: 1) ?? "none"
        guard type == "BASE TABLE" || type == "SYSTEM VERSIONED" else {
            throw MariaDBStatementPlanner.failure(
                .unsupportedTable, "\(name) is a \(type.lowercased()) at the DR server, not a table", context,
                hint: "Apply into the base table: replicate the table itself, not a view of it.")
        }
        guard kind.value(row: 0, column: 2) == "YES" else {
            throw MariaDBStatementPlanner.failure(
                .unsupportedTable,
                "table \(name) uses the \(engine) engine, which is not transactional: its rows could not commit together with the checkpoint",
                context, hint: "Convert the DR table to InnoDB (ALTER TABLE … ENGINE=InnoDB), then restart the applier."
            )
        }
        if !allowTriggers, let count = triggers.value(row: 0, column: 0), count != "0" {
            throw MariaDBStatementPlanner.failure(
                .unsupportedTable,
                "table \(name) has \(count) trigger(s) at the DR server: they would fire again for rows the source's triggers already changed",
                context,
                hint:
                    "Drop the DR table's triggers, or make them skip Tandem's session (IF @@session.gtid_domain_id <> \(domainID)) and start the applier with triggers allowed."
            )
        }
        self.generated = Set(generated.rows.compactMap { $0.first ?? nil })
    }
}
