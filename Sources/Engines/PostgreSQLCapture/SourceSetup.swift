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
