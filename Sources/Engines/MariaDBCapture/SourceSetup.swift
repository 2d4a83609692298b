import CaptureKit
import Foundation
import MariaDBEngine
import MySQLClient
import TandemCore

/// What the capture learns about the primary before it streams.
struct PrimaryFacts: Sendable {
    /// `@@global.binlog_checksum`: what the dump sends and the decoder expects first.
    var checksum: BinlogChecksum
    var serverID: UInt32
    /// Tandem's identity marker of this server (`tandem.server_identity`), nil when absent.
    var identity: String?
    /// `@@gtid_binlog_pos`, read after Tandem's own objects were created.
    var binlogPosition: MariaDBGTIDList
    /// The server's collation table, for the decoder.
    var charsets: MariaDBCharsets
}

/// Checks and prepares the primary, at every start of a capture session (so an operator
/// who fixed a setting or a table and restarts the agent gets the same checks):
///
/// 1. the binlog settings the decoder relies on (`log_bin`, `binlog_format=ROW`,
///    `binlog_row_image=FULL`, `binlog_row_metadata=FULL`), every wrong one named;
/// 2. every captured table has a PRIMARY KEY (the applier finds rows by it), every
///    offending table named;
/// 3. Tandem's own objects in the `tandem` schema: `heartbeat`, `server_identity` and
///    `seed_mark` (a seed's watermarks, `SeedMarkTable`).
///
/// Nothing is created until the checks pass. MariaDB has no `server_uuid`, so the identity
/// of the primary is `server_id` plus a UUID that Tandem stores in
/// `tandem.server_identity` on first start: a different server (another data directory,
/// a rebuilt primary, a wrong host in the config) lacks it or has another one.
///
/// Tandem's objects are created with statements that are written to the binlog (so native
/// MariaDB replicas of the primary get them and keep replicating the heartbeat rows). On the
/// first start they are created before the start position is read, so capture never sees
/// them; when recreated later, the capture recognises exactly these statements
/// (`ownStatements`) and steps over them.
struct SourceSetup {
    let settings: MariaDBCaptureSettings

    static let createSchema = "CREATE DATABASE IF NOT EXISTS `tandem`"
    static let createHeartbeat =
        "CREATE TABLE IF NOT EXISTS `tandem`.`heartbeat` (id INT NOT NULL PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB"
    static let createIdentity =
        "CREATE TABLE IF NOT EXISTS `tandem`.`server_identity` (id INT NOT NULL PRIMARY KEY, uuid CHAR(36) NOT NULL) ENGINE=InnoDB"
    static let createSeedMark = SeedMarkTable.create
    /// The heartbeat, run every `heartbeatIntervalNanoseconds` on the primary.
    static let heartbeat = "REPLACE INTO `tandem`.`heartbeat` (id, at) VALUES (1, NOW(6))"
    /// Schema statements Tandem itself issues; capture steps over them in the stream.
    static let ownStatements: Set<String> = [
        createSchema, createHeartbeat, createIdentity, createSeedMark,
    ]

    /// - Parameter createIdentity: whether a missing identity marker may be created (first
    ///   start); otherwise it is reported missing (nil) and the caller decides.
    func prepare(on connection: MySQLConnection, createIdentity: Bool) throws(CaptureError) -> PrimaryFacts {
        let (checksum, serverID) = try checkBinlogSettings(connection)
        try checkKeys(connection)
        try ensureObjects(connection)
        var identity = try readIdentity(connection)
        if identity == nil, createIdentity {
            let fresh = UUID().uuidString.lowercased()
            try run(
                connection, "INSERT IGNORE INTO `tandem`.`server_identity` (id, uuid) VALUES (1, '\(fresh)')",
                doing: "recording the primary's identity")
            identity = try readIdentity(connection)
        }
        let positionText =
            try query(connection, "SELECT @@GLOBAL.gtid_binlog_pos", doing: "reading gtid_binlog_pos")
            .first?.first ?? nil
        let position: MariaDBGTIDList
        do { position = try MariaDBGTIDList(parsing: positionText ?? "") } catch {
            throw CaptureError(
                .protocolViolation, "the primary reported gtid_binlog_pos '\(positionText ?? "")': \(error)",
                hint: "Report it with the primary's version.")
        }
        return PrimaryFacts(
            checksum: checksum, serverID: serverID, identity: identity, binlogPosition: position,
            charsets: try charsets(connection))
    }

    /// Refuses, naming every wrong setting, unless the binlog is on and row-based with full
    /// images and full metadata (column names and the primary key come from the metadata).
    private func checkBinlogSettings(_ connection: MySQLConnection) throws(CaptureError) -> (BinlogChecksum, UInt32) {
        let row =
            try query(
                connection,
                "SELECT @@GLOBAL.log_bin, @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image, @@GLOBAL.binlog_row_metadata, @@GLOBAL.binlog_checksum, @@GLOBAL.server_id",
                doing: "reading the binlog settings"
            ).first ?? []
        func value(_ index: Int) -> String { (index < row.count ? row[index] : nil)?.uppercased() ?? "?" }
        var problems: [String] = []
        var fixes: [String] = []
        if value(0) != "1" && value(0) != "ON" {
            problems.append("log_bin is OFF (the binlog is off)")
            fixes.append("set log_bin (and server_id) in the server's configuration and restart MariaDB")
        }
        for (index, name) in [(1, "binlog_format"), (2, "binlog_row_image"), (3, "binlog_row_metadata")] {
            let wanted = index == 1 ? "ROW" : "FULL"
            if value(index) != wanted {
                problems.append("\(name) = \(value(index)), capture needs \(wanted)")
                fixes.append("SET GLOBAL \(name) = \(wanted) and put \(name) = \(wanted) in the server's configuration")
            }
        }
        guard problems.isEmpty else {
            throw CaptureError(
                .sourceSetup, "the primary's binlog is not usable for capture: " + problems.joined(separator: "; "),
                hint: fixes.joined(separator: "; ") + ", then restart the agent.")
        }
        let checksum: BinlogChecksum
        switch value(4) {
        case "NONE": checksum = .none
        case "CRC32": checksum = .crc32
        default:
            throw CaptureError(
                .sourceSetup, "binlog_checksum = \(value(4)) is not supported",
                hint: "SET GLOBAL binlog_checksum = CRC32 (or NONE).")
        }
        guard let serverID = UInt32(value(5)) else {
            throw CaptureError(
                .protocolViolation, "the primary reported server_id '\(value(5))'",
                hint: "Report it with the primary's version.")
        }
        return (checksum, serverID)
    }

    /// Every captured table needs a PRIMARY KEY: the applier finds the row an UPDATE or
    /// DELETE changes by it, and without one a batch could change the wrong rows.
    private func checkKeys(_ connection: MySQLConnection) throws(CaptureError) {
        let excluded = MariaDBCaptureSettings.internalSchemas.sorted().map { "'\($0)'" }.joined(separator: ", ")
        let rows = try query(
            connection,
            """
            SELECT t.TABLE_SCHEMA, t.TABLE_NAME FROM information_schema.TABLES t
            WHERE t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND t.TABLE_SCHEMA NOT IN (\(excluded))
              AND NOT EXISTS (SELECT 1 FROM information_schema.TABLE_CONSTRAINTS c
                              WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME
                                AND c.CONSTRAINT_TYPE = 'PRIMARY KEY')
            ORDER BY 1, 2
            """, doing: "checking primary keys")
        var bad: [String] = []
        for row in rows {
            guard row.count == 2, let schema = row[0], let table = row[1] else { continue }
            if settings.captures(schema: schema, table: table) { bad.append("\(schema).\(table)") }
        }
        guard bad.isEmpty else {
            let names = bad.prefix(20).joined(separator: ", ") + (bad.count > 20 ? " and \(bad.count - 20) more" : "")
            throw CaptureError(
                .sourceSetup, "table\(bad.count == 1 ? "" : "s") without a primary key: \(names)",
                hint: "Add a primary key to each, or exclude them in [tables], then restart the agent.")
        }
    }

    /// Creates what is missing of the `tandem` schema. Existing objects are left alone
    /// (MariaDB would write even a no-op `IF NOT EXISTS` to the binlog).
    private func ensureObjects(_ connection: MySQLConnection) throws(CaptureError) {
        let present = Set(
            try query(
                connection,
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'tandem'",
                doing: "looking up the tandem schema"
            ).compactMap { $0.first ?? nil })
        let schemaExists =
            !(try query(
                connection,
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'tandem'",
                doing: "looking up the tandem schema"
            ).isEmpty)
        if !schemaExists { try run(connection, Self.createSchema, doing: "creating the tandem schema") }
        if !present.contains("heartbeat") {
            try run(connection, Self.createHeartbeat, doing: "creating tandem.heartbeat")
        }
        if !present.contains("server_identity") {
            try run(connection, Self.createIdentity, doing: "creating tandem.server_identity")
        }
        if !present.contains("seed_mark") {
            try run(connection, Self.createSeedMark, doing: "creating tandem.seed_mark")
        }
    }

    private func readIdentity(_ connection: MySQLConnection) throws(CaptureError) -> String? {
        try query(
            connection, "SELECT uuid FROM `tandem`.`server_identity` WHERE id = 1",
            doing: "reading the primary's identity"
        ).first?.first ?? nil
    }

    private func charsets(_ connection: MySQLConnection) throws(CaptureError) -> MariaDBCharsets {
        var names: [UInt32: String] = [:]
        for row in try query(
            connection, "SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS",
            doing: "reading the collations")
        {
            if row.count == 2, let id = row[0].flatMap({ UInt32($0) }), let name = row[1] { names[id] = name }
        }
        return MariaDBCharsets(charsetNames: names)
    }

    // MARK: Helpers

    private func query(_ connection: MySQLConnection, _ sql: String, doing what: String) throws(CaptureError)
        -> [[String?]]
    {
        do { return try connection.query(sql).rows } catch { throw CaptureError.database(error, doing: what) }
    }

    private func run(_ connection: MySQLConnection, _ sql: String, doing what: String) throws(CaptureError) {
        do { try connection.execute(sql) } catch { throw CaptureError.database(error, doing: what) }
    }
}

extension SourceSetup {
    /// The start-up check: what `prepare` would refuse of the binlog settings, and the
    /// replication privileges the binlog dump needs, every problem at once; creates nothing.
    func check(on connection: MySQLConnection) -> [CaptureError] {
        var problems: [CaptureError] = []
        do { _ = try checkBinlogSettings(connection) } catch { problems.append(error) }
        do { problems += try checkPrivileges(connection) } catch { problems.append(error) }
        return problems
    }

    /// REPLICATION SLAVE for the dump, and BINLOG MONITOR (REPLICATION CLIENT before 10.5) for
    /// the binlog position, as granted globally to the user the server logged in.
    private func checkPrivileges(_ connection: MySQLConnection) throws(CaptureError) -> [CaptureError] {
        let granted = Set(
            try query(
                connection,
                """
                SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES
                WHERE GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''',
                                       SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')
                """, doing: "reading the capture user's privileges"
            ).compactMap { $0.first ?? nil }.map { $0.uppercased() })
        guard !granted.isEmpty else { return [] }
        var missing: [String] = []
        if granted.isDisjoint(with: ["REPLICATION SLAVE", "REPLICATION REPLICA"]) {
            missing.append("REPLICATION SLAVE")
        }
        if granted.isDisjoint(with: ["BINLOG MONITOR", "REPLICATION CLIENT", "SUPER"]) {
            missing.append("BINLOG MONITOR (REPLICATION CLIENT before MariaDB 10.5)")
        }
        guard !missing.isEmpty else { return [] }
        let user = settings.primary.user
        return [
            CaptureError(
                .sourceSetup, "the capture user \(user) lacks \(missing.joined(separator: " and "))",
                hint:
                    "GRANT \(missing.map { $0.components(separatedBy: " (")[0] }.joined(separator: ", ")) ON *.* TO the capture user on the primary."
            )
        ]
    }
}

extension MariaDBSource {
    /// The start-up check of the primary for capture: it answers, takes the credentials, and
    /// has the binlog settings and privileges capture needs. Creates nothing. `.connection`
    /// errors mean nothing answered (down, starting, a wrong address); every other one needs
    /// the operator.
    public static func check(settings: MariaDBCaptureSettings) -> [CaptureError] {
        let connection: MySQLConnection
        do {
            connection = try settings.controlConnection()
        } catch {
            return [refusal(error)]
        }
        defer { connection.close() }
        return SourceSetup(settings: settings).check(on: connection)
    }

    /// A failed login, told apart from a server that did not answer
    /// (`MySQLError.serverDidNotAnswer`).
    static func refusal(_ error: MySQLError) -> CaptureError {
        if MySQLError.serverDidNotAnswer(code: error.code) {
            return CaptureError(
                .connection, "connecting to the primary: \(error.description)",
                hint: "Check that MariaDB is up and that [database] host and port point at it; the agent waits for it.")
        }
        return CaptureError(
            .sourceSetup, "connecting to the primary: the server refused the connection: \(error.description)",
            hint: "Check [database] user, password and database, and that the user may log in from this host.")
    }
}
