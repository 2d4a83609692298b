import ApplyKit
import Logging
import MySQLClient
import TandemCodec
import TandemCore

/// One apply session at a MariaDB DR server (10.11): the `TargetSession` the shared `SinkDriver`
/// drives. What to skip, when to commit and how chunks and savepoints go is the driver's
/// (`ApplyProgress`); this type speaks MariaDB: multi-statement rounds, multi-row inserts, the
/// checkpoint row, the GTID domain of its writes.
///
/// ## Exactly once
/// Delivery from the source is at least once: a restarted shipper re-sends, under new batch
/// sequence numbers, transactions it had already sent. What makes the DR copy exact is the
/// checkpoint row in `tandem.apply_checkpoint` (InnoDB), written in the same target transaction
/// as the data it describes, so that after any crash it says precisely what is in the DR server:
/// - every target transaction ends by upserting the checkpoint (the last batch's sequence and the
///   commit position of the last source transaction applied) and then commits; the data and the
///   checkpoint become visible together or not at all. This needs the DR tables to be
///   transactional: tables of other engines (MyISAM, Aria) are refused, as are views;
/// - a source transaction whose commit position is at or before the last one applied
///   (`Position.compare` says `.before` or `.same`) is skipped. A MariaDB position is the GTID
///   state after the transaction (the last GTID of every domain), and the positions of one
///   binlog stream always dominate one another. `.incomparable` (each side ahead in some
///   domain, or each holding a domain the other lacks) never comes from one stream: for a
///   single-domain stream it means the source's domain changed or its binlog was reset and
///   renumbered. Such a transaction is applied (and logged), never guessed away: skipping it
///   could lose data, while a true duplicate fails loudly on its key where the table has one;
/// - after a restart, `checkpoint()` is read back from the DR server, not from memory.
///
/// ## Chunked transactions
/// A large source transaction arrives as chunks (same commit position, index 0…n, the last marked
/// final), possibly spread over several `apply` calls. All chunks commit in one target
/// transaction: when a call ends before the final chunk, the transaction stays open and the call
/// returns the last committed checkpoint; the call that brings the final chunk commits
/// everything. A crash rolls the open transaction back and the caller resumes from the committed
/// checkpoint, before the first chunk. Each chunked transaction runs under `SAVEPOINT
/// tandem_chunk` so that a re-send from chunk 0 undoes only that transaction.
///
/// ## Loops between sites: the GTID domain
/// The session writes with `gtid_domain_id = domainID` (default `defaultDomainID`, 7283), so
/// every transaction this sink commits gets a GTID in that domain in the DR binlog. MariaDB
/// capture at this site skips that domain, so after a switchover the applied rows are not
/// shipped back to where they came from. The domain must therefore be used by nothing else: no
/// application, and not the DR server's own `gtid_domain_id` (checked at connect). Setting the
/// session's domain needs the `BINLOG REPLAY` privilege (or SUPER).
///
/// The writes stay in the DR binlog (`sql_log_bin = 1`): after a switchover, the DR server is
/// the new source and its binlog is what is shipped; the applied history must be in it for
/// the GTID positions to line up. `sql_log_bin` is session-only and on by default; it is set
/// only if the session starts with it off (e.g. through `init_connect`), which needs
/// `BINLOG ADMIN` (or SUPER). The DR server should log in ROW format with full images, like the
/// source (a warning is logged otherwise).
///
/// ## read_only
/// A DR server is normally `read_only = ON` so that applications cannot write to it. On MariaDB
/// 10.11 that does not stop users with the `READ_ONLY ADMIN` privilege, which the apply user
/// needs (SUPER does not include it since 10.11, MDEV-29596; `ALL PRIVILEGES ON *.*` does).
/// Without it, apply fails with `.readOnly`. Note for fencing: `read_only` is no fence against
/// users holding `READ_ONLY ADMIN` (the applier, administrators); a fence must also keep them
/// out (or use `innodb_read_only`/stopping the server).
///
/// ## The session
/// `sql_mode = STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION`: bad values are
/// errors, not silent truncations, and an AUTO_INCREMENT column keeps an explicit 0 (without
/// the mode, 0 means "next number"); no `NO_ZERO_DATE`, so zero dates replicate as they are.
/// `time_zone = '+00:00'`: instants are written as UTC calendar times. `unique_checks` stays on
/// (off lets InnoDB skip secondary-index uniqueness, which would hide a diverged copy).
/// `foreign_key_checks` is on by default: MariaDB does *not* binlog the rows that `ON DELETE /
/// ON UPDATE CASCADE` or `SET NULL` change, so the DR server must perform those actions itself,
/// as a native replica does; with the checks off, children of a deleted parent would stay
/// behind. Turn them off (`foreignKeyChecks: false`) only for sources without cascading keys
/// whose sessions sometimes write with the checks off. Triggers cannot be switched off for a
/// session, and the rows a source trigger changed are already in the binlog, so a DR table with
/// triggers is refused unless `allowTriggers` (for triggers that skip Tandem's session, e.g.
/// `IF @@session.gtid_domain_id <> 7283`). Generated columns are never written.
/// `lc_messages = en_US`: an UPDATE's "Rows matched" count is read from the server's info text.
/// autocommit off; no idle-transaction timeouts (a chunked transaction stays open between calls),
/// no statement time limit, no `sql_safe_updates` (a source TRUNCATE is a DELETE without WHERE).
///
/// ## Round trips
/// Statements go to the server in rounds: many statements in one `COM_QUERY` (multi-statements;
/// safe because every value is an escaped or hex literal and every identifier backtick-quoted),
/// and consecutive inserts into one table with the same columns as one multi-row INSERT. Each
/// statement's outcome is checked: an UPDATE must *match* exactly one row (MariaDB's affected
/// count only counts changed rows, so an update writing identical values would look like a
/// missing row), a DELETE must delete one. When a multi-row INSERT fails, its rows are re-sent
/// one by one (the failed statement was rolled back on its own) so the error names the row.
/// One round may be in flight while the next is prepared (the DR server's single session is
/// what bounds apply); its outcomes are read and checked before anything after it is sent, so
/// nothing runs past a failure. A call commits every `rowsPerCommit` rows at a batch boundary.
///
/// Privileges: SELECT, INSERT, UPDATE, DELETE on the replicated schemas; CREATE, SELECT, INSERT,
/// UPDATE on `tandem` (CREATE only at the first start); BINLOG REPLAY; READ_ONLY ADMIN when the
/// DR server is read_only; BINLOG ADMIN only if `sql_log_bin` starts off.
///
/// Used by one thread at a time (the applier's apply thread).
public final class MariaDBTarget: TargetSession {

    /// The GTID domain of the sink's writes unless configured otherwise. Chosen to be unlikely
    /// in any installation; applications (and the DR server's own `gtid_domain_id`) must not use
    /// it, or their transactions would be taken for applied ones and not shipped after a
    /// switchover.
    public static let defaultDomainID: UInt32 = 7283

    public let stream: StreamID
    public let domainID: UInt32
    public let foreignKeyChecks: Bool
    public let allowTriggers: Bool
    private let setup: MariaDBSessionSetup
    private let logger: Logger

    private let link = MariaDBConnectionLink()
    private var connection: MySQLConnection? {
        get { link.connection }
        set { link.connection = newValue }
    }
    /// What is known of each DR table on this connection.
    private var tables: [RelationName: MariaDBTargetTable] = [:]
    /// The statements written and sent, not yet settled.
    private var round: MariaDBRound

    /// The session's settings; `connect()` (called by the driver) opens it.
    ///
    /// - Parameters:
    ///   - host: `nil` or `"localhost"` connects over the Unix socket (`unixSocket`).
    ///   - database: the session's default database (optional; statements name their schema).
    ///   - domainID: the GTID domain of the sink's writes; see the type's documentation.
    ///   - foreignKeyChecks: keep the DR server's foreign keys (and their cascades) active.
    ///   - allowTriggers: apply to DR tables that have triggers (they must skip this session).
    public init(
        host: String? = "127.0.0.1", port: Int = 3306, user: String, password: String?, database: String? = nil,
        unixSocket: String? = nil, stream: StreamID, domainID: UInt32 = MariaDBTarget.defaultDomainID,
        foreignKeyChecks: Bool = true, allowTriggers: Bool = false, logger: Logger
    ) {
        self.stream = stream
        self.domainID = domainID
        self.foreignKeyChecks = foreignKeyChecks
        self.allowTriggers = allowTriggers
        self.setup = MariaDBSessionSetup(
            login: MySQLLogin(
                host: host, port: port, user: user, password: password, database: database, unixSocket: unixSocket),
            domainID: domainID, foreignKeyChecks: foreignKeyChecks, logger: logger)
        self.logger = logger
        self.round = MariaDBRound(link: link, logger: logger)
    }

    deinit {
        link.connection?.close()
    }

    /// The server-side id of the apply session (for `KILL` in tests and operator diagnostics);
    /// nil while disconnected.
    public var connectionID: UInt? {
        guard let connection, connection.isOpen else { return nil }
        return connection.connectionID
    }

    // MARK: TargetSession

    public var engine: DatabaseEngine { .mariadb }

    public var isConnected: Bool { connection?.isOpen ?? false }

    public func connect() throws(ApplyError) -> String {
        close()
        let (fresh, packetLimit) = try setup.open()
        connection = fresh
        if let packetLimit { round.packetLimit = packetLimit }
        return "\(fresh.target), \(fresh.serverInfo), gtid domain \(domainID)"
    }

    /// Closes the connection. An open (chunked, uncommitted) target transaction is rolled back by
    /// the server; the driver reconnects on its next call and starts from the committed checkpoint.
    public func close() {
        connection?.close()
        connection = nil
        round.discard()
        tables.removeAll()
    }

    /// Opens the target transaction the next statements and the checkpoint go into.
    public func begin() throws(ApplyError) {
        try round.enqueue(StatementContext(what: "begin")) { sql throws(ApplyError) in sql.raw("START TRANSACTION") }
    }

    public func savepoint(_ step: SavepointStep, _ context: StatementContext) throws(ApplyError) {
        try round.enqueue(context) { sql throws(ApplyError) in sql.raw(step.sql) }
    }

    public func flush() throws(ApplyError) {
        try round.closeInsertRun()
        try round.flush()
    }

    // MARK: Applying

    public func apply(_ changes: [RowChange], _ call: StatementContext) throws(ApplyError) {
        let batch = call.batch
        let position = call.position
        var index = changes.startIndex
        while index < changes.endIndex {
            let change = changes[index]
            guard change.isTruncate else {
                try applyRow(change, call)
                index += 1
                continue
            }
            // A run of truncates (one source TRUNCATE of several tables): the tables may
            // reference each other, so the foreign keys are off while they are emptied together.
            var end = index
            while end < changes.endIndex && changes[end].isTruncate { end += 1 }
            try truncate(changes[index..<end].map(\.relation.name), batch: batch, position: position)
            index = end
        }
    }

    private func applyRow(_ change: RowChange, _ call: StatementContext) throws(ApplyError) {
        let context = StatementContext(applying: change, in: call)
        let target = try targetTable(change.relation.name, context)
        let planned = try MariaDBStatementPlanner.planned(context) { () throws(RowPlanError) in
            try MariaDBStatementPlanner.plan(change, generated: target.generated)
        }
        switch planned.verb {
        case .insert, .copy:
            try round.addInsert(planned, context)
        case .update, .delete, .check:
            try round.enqueue(context, planned.expectation) { sql throws(ApplyError) in
                try MariaDBStatementPlanner.writeRow(planned, into: &sql)
            }
        }
    }

    private func truncate(_ names: [RelationName], batch: UInt64?, position: Position?) throws(ApplyError) {
        var unique: [RelationName] = []
        for name in names where !unique.contains(name) { unique.append(name) }
        for name in unique {
            _ = try targetTable(name, StatementContext(what: "truncate", batch: batch, position: position, table: name))
        }
        let toggle = foreignKeyChecks && unique.count > 1
        if toggle {
            try round.enqueue(StatementContext(what: "truncate", batch: batch, position: position)) {
                sql throws(ApplyError) in
                sql.raw("SET SESSION foreign_key_checks = 0")
            }
        }
        for name in unique {
            try round.enqueue(StatementContext(what: "truncate", batch: batch, position: position, table: name)) {
                sql throws(ApplyError) in
                MariaDBStatementPlanner.writeDeleteAll(name, into: &sql)
            }
        }
        if toggle {
            try round.enqueue(StatementContext(what: "truncate", batch: batch, position: position)) {
                sql throws(ApplyError) in
                sql.raw("SET SESSION foreign_key_checks = 1")
            }
        }
    }

    /// Writes the checkpoint and commits.
    ///
    /// The COMMIT goes out only after every earlier outcome has been read and checked: row
    /// counts are checked here, not by the server, so a COMMIT sent in the same round as an
    /// UPDATE that matched no row would commit before the mismatch is seen.
    public func commit(_ checkpoint: CheckpointRow) throws(ApplyError) {
        let lastBatch = checkpoint.sequence
        let context = StatementContext(what: "checkpoint", batch: lastBatch, position: checkpoint.appliedPosition)
        var commitTime = MariaDBLiteral.plain("NULL")
        if let time = checkpoint.lastCommitTime {
            do {
                commitTime = try MariaDBValueText.literal(.timestampWithZone(time))
            } catch {
                throw MariaDBStatementPlanner.failure(.value, "commit time: \(error.reason)", context)
            }
        }
        let position: MariaDBLiteral =
            checkpoint.lastApplied.map { MariaDBLiteral.string($0.storedText) } ?? .plain("NULL")
        let streamName = checkpoint.stream.rawValue
        try round.enqueue(context) { sql throws(ApplyError) in
            sql.raw(
                "INSERT INTO `tandem`.`apply_checkpoint` (stream, sequence, position, commit_time, applied_at) VALUES ("
            )
            try sql.literal(.string(streamName))
            sql.raw(", \(lastBatch), ")
            try sql.literal(position)
            sql.raw(", ")
            try sql.literal(commitTime)
            sql.raw(
                """
                , NOW(6)) ON DUPLICATE KEY UPDATE sequence = VALUES(sequence), \
                position = COALESCE(VALUES(position), position), \
                commit_time = COALESCE(VALUES(commit_time), commit_time), applied_at = VALUES(applied_at)
                """)
        }
        try round.flush()
        try round.enqueue(StatementContext(what: "commit", batch: lastBatch, position: checkpoint.appliedPosition)) {
            sql throws(ApplyError) in sql.raw("COMMIT")
        }
        try round.flush()
    }

    /// Ends the open target transaction without committing and forgets everything that depended
    /// on it. When the connection cannot be brought back to a clean idle state it is closed
    /// (which rolls back too) and the next call reconnects.
    public func rollBack() {
        let roundInFlight = round.discard()
        tables.removeAll()
        guard let connection else { return }
        var clean = connection.isOpen
        if clean && roundInFlight {
            // Its outcomes must be read before the connection takes another command.
            do { _ = try connection.readMultiple(context: "discard a round") } catch { clean = false }
        }
        if clean {
            do {
                let outcome = try connection.executeMultiple(Array("ROLLBACK".utf8), context: "ROLLBACK")
                if outcome.failure != nil { clean = false }
            } catch {
                clean = false
            }
        }
        if !clean {
            logger.warning("mariadb apply: closing the DR connection after a failure; the next call reconnects")
            connection.close()
            self.connection = nil
        }
    }

    // MARK: DR tables

    /// What the DR server has for `name`, looked up once per connection: it must be a
    /// transactional base table, and without triggers unless they are allowed. The lookup waits
    /// for the round in flight, then runs ahead of the unsent round, which does not depend on it.
    private func targetTable(_ name: RelationName, _ context: StatementContext) throws(ApplyError)
        -> MariaDBTargetTable
    {
        if let known = tables[name] { return known }
        try round.settle()
        let connection = try round.requireConnection(context)
        var query = round.sql.fresh()
        try MariaDBTargetTable.writeLookup(name, into: &query)
        let outcome: MySQLMultiOutcome
        do {
            outcome = try connection.executeMultiple(query.bytes, context: "look up \(name)")
        } catch {
            throw round.lost(error, context)
        }
        let target = try MariaDBTargetTable(
            name, lookup: outcome, allowTriggers: allowTriggers, domainID: domainID, context)
        tables[name] = target
        return target
    }

    /// Reads the checkpoint row. Outside an open target transaction the read's own transaction
    /// is ended at once, so no snapshot stays open between calls.
    public func readCheckpoint(inTransaction: Bool) throws(ApplyError) -> SinkCheckpoint {
        try round.flush()
        let connection = try round.requireConnection(StatementContext(what: "checkpoint read"))
        var query = round.sql.fresh()
        query.raw("SELECT sequence, position FROM `tandem`.`apply_checkpoint` WHERE stream = ")
        try query.literal(.string(stream.rawValue))
        if !inTransaction { query.raw(";ROLLBACK") }
        let outcome: MySQLMultiOutcome
        do {
            outcome = try connection.executeMultiple(query.bytes, context: "read the checkpoint")
        } catch {
            throw round.lost(error, StatementContext(what: "checkpoint read"))
        }
        guard outcome.failure == nil, let result = outcome.outcomes.first?.result else {
            throw ApplyError(
                .mariadb, .checkpoint, "cannot read the checkpoint", server: outcome.failure.map(MariaDBErrors.server))
        }
        return try checkpoint(
            stored: result.rowCount > 0 ? (result.value(row: 0, column: 0), result.value(row: 0, column: 1)) : nil)
    }
}
