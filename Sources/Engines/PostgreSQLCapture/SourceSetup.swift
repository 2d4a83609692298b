import CaptureKit
import Foundation
import PGClient
import TandemCore

/// Checks and prepares the primary before streaming: `wal_level`, the publication,
/// that every published table has a usable key, the slot, and that the cluster is
/// the one this capture started on.
///
/// Runs at every start, so an operator who fixes a table and restarts the agent
/// gets the same checks, and a slot dropped behind Tandem's back is noticed.
struct SourceSetup {
    let settings: PostgreSQLCaptureSettings

    /// Returns the slot's `confirmed_flush_lsn`: where streaming resumes.
    func prepare(on connection: PGConnection) throws(CaptureError) -> LSN {
        try checkWalLevel(connection)
        try ensurePublication(connection)
        try checkKeys(connection)
        return try ensureSlot(connection)
    }

    private func checkWalLevel(_ connection: PGConnection) throws(CaptureError) {
        let level = try query(connection, "SHOW wal_level", doing: "reading wal_level").first?.first ?? nil
        guard level == "logical" else {
            throw CaptureError(
                .sourceSetup, "the primary runs with wal_level = \(level ?? "?"), logical decoding needs 'logical'",
                hint: "Set wal_level = logical in postgresql.conf and restart PostgreSQL.")
        }
    }

    private func ensurePublication(_ connection: PGConnection) throws(CaptureError) {
        let name = settings.publicationName
        let quoted = try quote(connection, name)
        let exists = try query(
            connection, "SELECT puballtables FROM pg_publication WHERE pubname = $1", [name],
            doing: "looking up publication \(name)")
        guard let filter = settings.tableFilter else {
            if exists.isEmpty {
                try run(
                    connection, "CREATE PUBLICATION \(quoted) FOR ALL TABLES", doing: "creating publication \(name)")
            } else if exists[0][0] != "t" {
                throw CaptureError(
                    .sourceSetup,
                    "publication \(name) exists but is not FOR ALL TABLES while [tables] selects every table",
                    hint: "DROP PUBLICATION \(name) and restart the agent, or list the tables in [tables].")
            }
            return
        }
        let candidates = try query(
            connection,
            """
            SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tandem') AND n.nspname NOT LIKE 'pg\\_%'
            ORDER BY 1, 2
            """, doing: "listing tables")
        var tables: [String] = []
        for row in candidates {
            guard let schema = row[0], let table = row[1], filter(schema, table) else { continue }
            tables.append("\(try quote(connection, schema)).\(try quote(connection, table))")
        }
        let list = tables.joined(separator: ", ")
        if exists.isEmpty {
            try run(
                connection,
                tables.isEmpty ? "CREATE PUBLICATION \(quoted)" : "CREATE PUBLICATION \(quoted) FOR TABLE \(list)",
                doing: "creating publication \(name)")
        } else if exists[0][0] == "t" {
            throw CaptureError(
                .sourceSetup, "publication \(name) is FOR ALL TABLES while [tables] selects only some",
                hint: "DROP PUBLICATION \(name) and restart the agent; Tandem recreates it with the selected tables.")
        } else if !tables.isEmpty {
            // Tables created since the last start join here; tables the operator excluded leave.
            try run(connection, "ALTER PUBLICATION \(quoted) SET TABLE \(list)", doing: "updating publication \(name)")
        }
    }

    /// A published table without a key (or usable replica identity) makes the primary
    /// refuse its own UPDATEs and DELETEs; better to stop here and name it.
    private func checkKeys(_ connection: PGConnection) throws(CaptureError) {
        let rows = try query(
            connection,
            """
            SELECT p.schemaname, p.tablename, c.relreplident,
                   EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
                   EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)
            FROM pg_publication_tables p
            JOIN pg_namespace n ON n.nspname = p.schemaname
            JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
            WHERE p.pubname = $1 ORDER BY 1, 2
            """, [settings.publicationName], doing: "checking replica identities")
        var bad: [String] = []
        for row in rows {
            let identity = row[2] ?? "d"
            let usable = identity == "f" || (identity == "d" && row[3] == "t") || (identity == "i" && row[4] == "t")
            if !usable { bad.append("\(row[0] ?? "?").\(row[1] ?? "?")") }
        }
        guard bad.isEmpty else {
            let names = bad.prefix(20).joined(separator: ", ") + (bad.count > 20 ? " and \(bad.count - 20) more" : "")
            throw CaptureError(
                .sourceSetup,
                "table\(bad.count == 1 ? "" : "s") without a primary key or usable replica identity: \(names)",
                hint:
                    "Add a primary key, or ALTER TABLE … REPLICA IDENTITY FULL (or USING INDEX a unique index), or exclude the table in [tables]."
            )
        }
    }

    private func ensureSlot(_ connection: PGConnection) throws(CaptureError) -> LSN {
        let name = settings.slotName
        let rows = try query(
            connection,
            "SELECT plugin, database = current_database(), confirmed_flush_lsn, wal_status, slot_type FROM pg_replication_slots WHERE slot_name = $1",
            [name], doing: "looking up slot \(name)")
        let state = try CaptureState.load(directory: settings.stateDirectory, slot: name)
        guard let row = rows.first else {
            if state != nil {
                throw CaptureError(
                    .reseedRequired, "replication slot \(name) no longer exists on the primary",
                    hint:
                        "Changes made since it was dropped are lost to the DR copy: re-seed the DR site, then remove \(CaptureState.path(directory: settings.stateDirectory, slot: name)) and restart."
                )
            }
            let created = try query(
                connection, "SELECT lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')", [name],
                doing: "creating slot \(name)")
            guard let text = created.first?[0] ?? nil, let lsn = try? LSN(parsing: text) else {
                throw CaptureError(
                    .sourceSetup, "slot \(name) was created but reported no LSN", hint: "Check the primary's log.")
            }
            return lsn
        }
        guard row[4] == "logical", row[0] == "pgoutput", row[1] == "t" else {
            throw CaptureError(
                .sourceSetup, "slot \(name) exists but is not a pgoutput logical slot of this database",
                hint:
                    "Drop it (SELECT pg_drop_replication_slot('\(name)')) if it is not in use, or change the pair name."
            )
        }
        if row[3] == "lost" {
            throw CaptureError(
                .reseedRequired,
                "replication slot \(name) was invalidated (wal_status = lost): the WAL it needed is gone",
                hint: "Raise max_slot_wal_keep_size, then re-seed the DR site and recreate the slot.")
        }
        guard let text = row[2], let lsn = try? LSN(parsing: text) else {
            throw CaptureError(
                .sourceSetup, "slot \(name) has no confirmed_flush_lsn",
                hint: "Drop and recreate the slot, then re-seed.")
        }
        return lsn
    }

    // MARK: Helpers

    private func query(_ connection: PGConnection, _ sql: String, _ params: [String?] = [], doing what: String)
        throws(CaptureError) -> [[String?]]
    {
        do {
            let result = params.isEmpty ? try connection.exec(sql) : try connection.execParams(sql, params)
            return (0..<result.rowCount).map { row in
                (0..<result.columnCount).map { result.value(row: row, column: $0) }
            }
        } catch {
            throw CaptureError.database(error, doing: what)
        }
    }

    private func run(_ connection: PGConnection, _ sql: String, doing what: String) throws(CaptureError) {
        _ = try query(connection, sql, doing: what)
    }

    private func quote(_ connection: PGConnection, _ name: String) throws(CaptureError) -> String {
        do { return try connection.escapeIdentifier(name) } catch {
            throw CaptureError.database(error, doing: "quoting \(name)")
        }
    }
}

extension SourceSetup {
    /// The start-up check: what `prepare` would refuse, found without creating anything, every
    /// problem at once (the privilege to create the publication and the slot rather than
    /// creating them).
    func check(on connection: PGConnection) -> [CaptureError] {
        var problems: [CaptureError] = []
        do { try checkWalLevel(connection) } catch { problems.append(error) }
        do { problems += try checkPrivileges(connection) } catch { problems.append(error) }
        return problems
    }

    /// REPLICATION (for the slot and the stream), and what creating the publication needs when
    /// it does not exist yet: superuser for FOR ALL TABLES, CREATE on the database otherwise.
    /// A free slot when the slot does not exist yet.
    private func checkPrivileges(_ connection: PGConnection) throws(CaptureError) -> [CaptureError] {
        let row =
            try query(
                connection,
                """
                SELECT r.rolreplication OR r.rolsuper, r.rolsuper, current_user,
                       has_database_privilege(current_database(), 'CREATE'),
                       EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1),
                       EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $2),
                       (SELECT count(*) FROM pg_replication_slots) < current_setting('max_replication_slots')::int
                FROM pg_roles r WHERE r.rolname = current_user
                """, [settings.publicationName, settings.slotName], doing: "reading the capture user's privileges"
            ).first ?? []
        guard row.count == 7 else { return [] }
        let user = row[2] ?? "?"
        var problems: [CaptureError] = []
        if row[0] != "t" {
            problems.append(
                CaptureError(
                    .sourceSetup, "the capture user \(user) lacks the REPLICATION attribute",
                    hint: "ALTER ROLE \(user) REPLICATION on the primary (and allow it in pg_hba.conf)."))
        }
        if row[4] != "t" {
            if settings.tableFilter == nil, row[1] != "t" {
                problems.append(
                    CaptureError(
                        .sourceSetup,
                        "publication \(settings.publicationName) does not exist and creating it FOR ALL TABLES needs a superuser",
                        hint:
                            "Create it as a superuser (CREATE PUBLICATION \(settings.publicationName) FOR ALL TABLES), or list the tables in [tables]."
                    ))
            } else if row[3] != "t" {
                problems.append(
                    CaptureError(
                        .sourceSetup,
                        "the capture user \(user) may not create publication \(settings.publicationName) (no CREATE on the database)",
                        hint: "GRANT CREATE ON DATABASE to \(user), or create the publication as its owner."))
            }
        }
        if row[5] != "t", row[6] != "t" {
            problems.append(
                CaptureError(
                    .sourceSetup,
                    "replication slot \(settings.slotName) does not exist and every slot allowed by max_replication_slots is taken",
                    hint:
                        "Raise max_replication_slots in postgresql.conf and restart PostgreSQL, or drop an unused slot."
                ))
        }
        return problems
    }
}

extension PostgreSQLSource {
    /// The start-up check of the primary for capture: it answers, takes the credentials on a
    /// normal and on a replication connection (pg_hba.conf has a separate `replication` rule),
    /// and has the settings and privileges capture needs. Creates nothing. `.connection` errors
    /// mean nothing answered (down, starting, a wrong address); every other one needs the
    /// operator.
    public static func check(settings: PostgreSQLCaptureSettings) -> [CaptureError] {
        // Asked first: a server that starts meanwhile fails the login as "starting up" and must
        // count as not answering, not as a refusal.
        let ping = PGConnection.ping(conninfo: settings.conninfo)
        let connection: PGConnection
        do { connection = try PGConnection(conninfo: settings.conninfo) } catch {
            return [refusal(error, ping: ping, doing: "connecting to the primary")]
        }
        defer { connection.close() }
        var problems = SourceSetup(settings: settings).check(on: connection)
        do {
            let replication = try ReplicationStream(conninfo: settings.conninfo)
            replication.close()
        } catch  where error.kind == .connection {
            // The server answered the normal connection: this is a refusal, not an outage.
            problems.append(
                CaptureError(
                    .sourceSetup, error.description,
                    hint:
                        "pg_hba.conf needs a `replication` line for this user and host (a `host all` line does not cover it), and the user needs REPLICATION."
                ))
        } catch {
            problems.append(error)
        }
        return problems
    }

    /// A failed login, told apart from a database that did not answer (`ping`, taken before
    /// the login).
    static func refusal(_ error: PGError, ping: PGConnection.Ping, doing what: String) -> CaptureError {
        switch ping {
        case .noResponse, .rejecting:
            return CaptureError(
                .connection, "\(what): \(error.description)",
                hint:
                    "Check that PostgreSQL is up and that [database] host and port point at it; the agent waits for it."
            )
        case .accepting, .noAttempt:
            return CaptureError(
                .sourceSetup, "\(what): the server refused the connection: \(error.description)",
                hint:
                    "Check [database] user, password and database, and that pg_hba.conf lets this user connect from this host."
            )
        }
    }
}
