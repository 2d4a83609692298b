import PGClient
import TandemCore
import TandemSeed

/// The seed's port on the DR site's PostgreSQL database: what its tables hold, emptying them,
/// and running the primary's schema.
public final class PostgreSQLSeedTarget: SeedTarget {
    private let connection: PGConnection

    public init(conninfo: String) throws(SeedError) {
        do { connection = try PGConnection(conninfo: conninfo) } catch {
            throw SeedError(
                "cannot connect to the DR site's PostgreSQL for the seed: \(error.message)",
                hint: "Check the DR site's [database] settings and that the database accepts the agent's login.")
        }
    }

    public func inspect(_ tables: [RelationName]) throws(SeedError) -> [RelationName: TargetTableState] {
        var states: [RelationName: TargetTableState] = [:]
        for table in tables {
            let name = PostgreSQLSeedSource.name(table.schema, table.name)
            let exists = try run("SELECT to_regclass($1) IS NOT NULL", [name], "look for \(table) at the DR site")
            guard exists.value(row: 0, column: 0) == "t" else {
                states[table] = .missing
                continue
            }
            let rows = try run("SELECT EXISTS (SELECT 1 FROM \(name))", [], "look into \(table) at the DR site")
            states[table] = rows.value(row: 0, column: 0) == "t" ? .holdsRows : .empty
        }
        return states
    }

    public func truncate(_ tables: [RelationName]) throws(SeedError) {
        guard !tables.isEmpty else { return }
        let names = tables.map { PostgreSQLSeedSource.name($0.schema, $0.name) }.joined(separator: ", ")
        _ = try run("TRUNCATE \(names)", [], "empty \(names) at the DR site")
    }

    public func run(script: String) throws(SeedError) {
        // One simple query: the script's statements run in one implicit transaction, all or none.
        do { _ = try connection.exec(script) } catch {
            throw SeedError(
                "the primary's schema failed at the DR site: \(error.message)",
                hint: error.sqlState == "42501"
                    ? Self.privilegeHint
                    : "The DR database must be of a compatible PostgreSQL version with the extensions and roles the tables use; fix it, then run the seed again."
            )
        }
    }

    public func close() {
        connection.close()
    }

    /// SQLSTATE 42501 at the DR site: the seed creates and fills the tables there.
    static let privilegeHint =
        "The DR site's login needs CREATE on the database and schemas and ownership (or TRUNCATE and INSERT) of the seeded tables; grant them, then run the seed again."

    private func run(_ sql: String, _ parameters: [String?], _ what: String) throws(SeedError) -> PGResult {
        do { return try connection.execParams(sql, parameters) } catch {
            throw SeedError(
                "cannot \(what): \(error.message)",
                hint: error.sqlState == "42501" ? Self.privilegeHint : error.hint ?? "See the DR server's log.")
        }
    }
}
