import ApplyKit
import Logging
import MySQLClient

/// The apply session at a MariaDB DR server, set up on a fresh connection: multi-statements on,
/// the server's settings checked (binary log, `read_only`, the apply domain not the server's
/// own), the session variables the applier relies on set (see `MariaDBTarget`, "The session"),
/// and the checkpoint table created at the first start. Every refusal names the setting and the
/// privilege it needs, because that is what the operator has to grant.
struct MariaDBSessionSetup {
    /// The session's SQL mode (see `MariaDBTarget`).
    static let sqlMode = "STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"

    var login: MySQLLogin
    /// The GTID domain of the session's writes.
    var domainID: UInt32
    var foreignKeyChecks: Bool
    var logger: Logger

    /// Connects and sets the session up. `packetLimit` is the largest round the server takes
    /// (its `max_allowed_packet` less room for the protocol), nil when it did not say.
    func open() throws(ApplyError) -> (connection: MySQLConnection, packetLimit: Int?) {
        let connection: MySQLConnection
        do {
            connection = try MySQLConnection(login)
        } catch {
            throw ApplyError(
                .mariadb,
                error.kind == .connectionLost ? .connectionLost : .connection, "cannot connect to the DR server",
                server: MariaDBErrors.server(error))
        }
        func fail(_ error: ApplyError) -> ApplyError {
            connection.close()
            return error
        }
        func run(_ text: String, _ what: String) throws(ApplyError) -> MySQLMultiOutcome {
            do {
                return try connection.executeMultiple(Array(text.utf8), context: what)
            } catch {
                throw fail(ApplyError(.mariadb, .connectionLost, "cannot \(what)", server: MariaDBErrors.server(error)))
            }
        }
        do {
            try connection.setMultiStatements(true)
        } catch {
            throw fail(
                ApplyError(.mariadb, .connection, "cannot enable multi-statements", server: MariaDBErrors.server(error))
            )
        }

        let facts = try run(
            "SELECT @@session.sql_log_bin, @@global.log_bin, @@global.binlog_format, @@global.read_only, @@max_allowed_packet, @@global.gtid_domain_id",
            "read the server settings")
        guard facts.failure == nil, let row = facts.outcomes.first?.result, row.rowCount == 1 else {
            throw fail(
                ApplyError(
                    .mariadb, .connection, "cannot read the server settings",
                    server: facts.failure.map(MariaDBErrors.server)))
        }
        let logsThisSession = row.value(row: 0, column: 0) == "1"
        if row.value(row: 0, column: 1) != "1" {
            logger.warning(
                "mariadb apply: the DR server has no binary log (log_bin off): after a switchover it cannot be shipped from"
            )
        } else if row.value(row: 0, column: 2) != "ROW" {
            logger.warning(
                "mariadb apply: the DR server logs in \(row.value(row: 0, column: 2) ?? "?") format; Tandem capture needs ROW after a switchover"
            )
        }
        if row.value(row: 0, column: 3) == "1" {
            logger.info("mariadb apply: the DR server is read_only; the apply user needs READ_ONLY ADMIN")
        }
        let packetLimit = row.value(row: 0, column: 4).flatMap(Int.init).map { max($0 - 4096, 64 << 10) }
        if row.value(row: 0, column: 5) == String(domainID) {
            throw fail(
                ApplyError(
                    .mariadb,
                    .connection,
                    "the DR server's own gtid_domain_id is \(domainID), the apply domain: its local transactions would be taken for applied ones",
                    hint:
                        "Give the apply sessions a domain no server or application uses (domainID), or change the DR server's gtid_domain_id."
                ))
        }

        // The session, one statement per setting so that a refusal names its setting.
        var settings: [(sql: String, what: String, privilege: String?)] = [
            ("SET SESSION lc_messages = 'en_US'", "lc_messages", nil),
            ("SET SESSION gtid_domain_id = \(domainID)", "gtid_domain_id", "BINLOG REPLAY"),
        ]
        if !logsThisSession { settings.append(("SET SESSION sql_log_bin = 1", "sql_log_bin", "BINLOG ADMIN")) }
        settings += [
            ("SET SESSION sql_mode = '\(Self.sqlMode)'", "sql_mode", nil),
            ("SET SESSION time_zone = '+00:00'", "time_zone", nil),
            ("SET SESSION foreign_key_checks = \(foreignKeyChecks ? 1 : 0)", "foreign_key_checks", nil),
            ("SET SESSION unique_checks = 1", "unique_checks", nil),
            (
                "SET SESSION sql_safe_updates = 0, max_statement_time = 0", "sql_safe_updates and max_statement_time",
                nil
            ),
            (
                "SET SESSION idle_transaction_timeout = 0, idle_write_transaction_timeout = 0, idle_readonly_transaction_timeout = 0",
                "idle transaction timeouts", nil
            ),
            ("SET SESSION autocommit = 0", "autocommit", nil),
        ]
        let setup = try run(settings.map(\.sql).joined(separator: ";"), "set the session up")
        if let error = setup.failure {
            let setting = settings[min(setup.outcomes.count, settings.count - 1)]
            if error.code == 1227 || error.code == 1044 {
                throw fail(
                    ApplyError(
                        .mariadb,
                        .privilege,
                        "cannot set \(setting.what): the apply user lacks the \(setting.privilege ?? "required") privilege",
                        server: MariaDBErrors.server(error),
                        hint: setting.privilege.map {
                            "GRANT \($0) ON *.* TO the apply user (it sets \(setting.what) for its session); see MariaDBSink."
                        }))
            }
            throw fail(
                ApplyError(.mariadb, .connection, "cannot set \(setting.what)", server: MariaDBErrors.server(error)))
        }

        let exists = try run(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'tandem' AND TABLE_NAME = 'apply_checkpoint'",
            "look for the checkpoint table")
        guard exists.failure == nil, let count = exists.outcomes.first?.result?.value(row: 0, column: 0) else {
            throw fail(
                ApplyError(
                    .mariadb, .checkpoint, "cannot look for the checkpoint table",
                    server: exists.failure.map(MariaDBErrors.server)))
        }
        if count == "0" {
            let create = try run(
                """
                CREATE DATABASE IF NOT EXISTS `tandem`;
                CREATE TABLE IF NOT EXISTS `tandem`.`apply_checkpoint` (
                    stream VARCHAR(200) NOT NULL PRIMARY KEY,
                    sequence BIGINT UNSIGNED NOT NULL,
                    position TEXT,
                    commit_time DATETIME(6),
                    applied_at DATETIME(6) NOT NULL
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
                """, "create the checkpoint table")
            if let error = create.failure {
                var failure = ApplyError(
                    .mariadb,
                    .checkpoint, "cannot create the checkpoint table tandem.apply_checkpoint",
                    server: MariaDBErrors.server(error),
                    hint: "Grant the apply user CREATE on `tandem`.*, or create the table as an administrator.")
                if MariaDBErrors.isReadOnlyRefusal(error) {
                    failure.kind = .readOnly
                    failure.message += ": the DR server is read_only and the apply user lacks READ_ONLY ADMIN"
                    failure.fixedHint = MariaDBErrors.readOnlyHint
                }
                throw fail(failure)
            }
        }
        return (connection, packetLimit)
    }
}
