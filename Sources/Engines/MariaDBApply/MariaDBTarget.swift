import ApplyKit
import Logging
import MySQLClient
import TandemCodec
import TandemCore

/// The applier's sink for a MariaDB DR server: the shared `SinkDriver` on a `MariaDBTarget`.
public typealias MariaDBSink = SinkDriver<MariaDBTarget>

extension SinkDriver where Session == MariaDBTarget {
    /// Connects, prepares the session, creates the checkpoint table if it is missing and reads
    /// the checkpoint. The parameters are `MariaDBTarget`'s.
    public convenience init(
        host: String? = "127.0.0.1", port: Int = 3306, user: String, password: String?, database: String? = nil,
        unixSocket: String? = nil, stream: StreamID, domainID: UInt32 = MariaDBTarget.defaultDomainID,
        foreignKeyChecks: Bool = true, allowTriggers: Bool = false, logger: Logger
    ) throws(ApplyError) {
        try self.init(
            session: MariaDBTarget(
                host: host, port: port, user: user, password: password, database: database, unixSocket: unixSocket,
                stream: stream, domainID: domainID, foreignKeyChecks: foreignKeyChecks, allowTriggers: allowTriggers,
                logger: logger),
            stream: stream, logger: logger)
    }

    /// See `MariaDBTarget.defaultDomainID`.
    public static var defaultDomainID: UInt32 { MariaDBTarget.defaultDomainID }

    /// The server-side id of the apply session (for `KILL` in tests and operator diagnostics);
    /// nil while disconnected.
    public var connectionID: UInt? { session.connectionID }
}

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

    /// The session's SQL mode (see the type's documentation).
    public static let sqlMode = "STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"

    /// Statements per round, bytes per round, and rows / bytes per multi-row INSERT: bounds on
    /// the SQL held in memory and sent in one packet (the round is further capped by the DR
    /// server's `max_allowed_packet`).
    static let roundStatements = 500
    static let roundBytes = 4 << 20
    static let insertRows = 1000
    static let insertBytes = 1 << 20

    public let stream: StreamID
    public let domainID: UInt32
    public let foreignKeyChecks: Bool
    public let allowTriggers: Bool
    private let host: String?
    private let port: Int
    private let user: String
    private let password: String?
    private let database: String?
    private let unixSocket: String?
    private let logger: Logger

    /// The connection, shared with the escaping closure of `sql` (which must reach the current
    /// connection without retaining the sink).
    private let link = ConnectionLink()
    private var connection: MySQLConnection? {
        get { link.connection }
        set { link.connection = newValue }
    }
    /// What is known of each DR table on this connection.
    private var tables: [RelationName: TargetTable] = [:]
    /// The SQL of the current round, not yet sent, and what each statement in it must report.
    private var sql: SQLWriter
    private var pending: [PendingStatement] = []
    /// The round sent and not yet read (see `flushRound(wait:)`).
    private var inFlight: [PendingStatement]?
    /// Inserts gathered for one multi-row INSERT, not yet written into the round.
    private var insertRun: InsertRun?
    /// The largest round: the server's `max_allowed_packet` less room for the protocol.
    private var packetLimit = 16 << 20

    private final class ConnectionLink {
        var connection: MySQLConnection?
    }

    private struct TargetTable {
        /// Lower-cased names of the columns the server computes.
        var generated: Set<String>
    }

    private typealias PendingStatement = StatementRound<InsertRun>.Statement

    private struct InsertRun {
        var table: RelationName
        var columns: [String]
        var rows: [[MariaDBLiteral]] = []
        var contexts: [StatementContext] = []
        var bytes = 0
    }

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
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.unixSocket = unixSocket
        self.stream = stream
        self.domainID = domainID
        self.foreignKeyChecks = foreignKeyChecks
        self.allowTriggers = allowTriggers
        self.logger = logger
        let link = self.link
        self.sql = SQLWriter { (text: String, bytes: inout [UInt8]) throws(ApplyError) in
            guard let connection = link.connection else {
                throw ApplyError(.mariadb, .connectionLost, "the DR connection is closed")
            }
            do throws(MySQLError) {
                try connection.appendEscaped(text, to: &bytes)
            } catch {
                throw ApplyError(
                    .mariadb, error.kind == .closed ? .connectionLost : .value, "cannot escape a text value",
                    server: MariaDBTarget.server(error))
            }
        }
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
        let fresh = try open()
        connection = fresh
        return "\(fresh.target), \(fresh.serverInfo), gtid domain \(domainID)"
    }

    /// Closes the connection. An open (chunked, uncommitted) target transaction is rolled back by
    /// the server; the driver reconnects on its next call and starts from the committed checkpoint.
    public func close() {
        connection?.close()
        connection = nil
        resetConnectionState()
    }

    /// Opens the target transaction the next statements and the checkpoint go into.
    public func begin() throws(ApplyError) {
        try enqueue(StatementContext(what: "begin")) { sql throws(ApplyError) in sql.raw("START TRANSACTION") }
    }

    public func savepoint(_ step: SavepointStep, _ context: StatementContext) throws(ApplyError) {
        try enqueue(context) { sql throws(ApplyError) in
            switch step {
            case .set: sql.raw("SAVEPOINT tandem_chunk")
            case .rollBack: sql.raw("ROLLBACK TO SAVEPOINT tandem_chunk")
            case .release: sql.raw("RELEASE SAVEPOINT tandem_chunk")
            }
        }
    }

    public func flush() throws(ApplyError) {
        try closeInsertRun()
        try flushRound()
    }

    // MARK: Applying

    public func apply(_ changes: [RowChange], _ call: StatementContext) throws(ApplyError) {
        let batch = call.batch
        let position = call.position
        var index = changes.startIndex
        while index < changes.endIndex {
            let change = changes[index]
            guard change.isTruncate else {
                try applyRow(change, batch: batch, position: position)
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

    private func applyRow(_ change: RowChange, batch: UInt64?, position: Position?) throws(ApplyError) {
        let context = StatementContext(
            what: Self.verbName(change.kind), batch: batch, position: position, table: change.relation.name,
            change: change)
        let target = try targetTable(change.relation.name, context)
        let planned: PlannedRow
        do {
            planned = try MariaDBStatementPlanner.plan(change, generated: target.generated)
        } catch {
            throw failure(.value, error.message, context)
        }
        switch planned.verb {
        case .insert:
            try addInsert(planned, context)
        case .update, .delete, .check:
            let expectation: StatementExpectation =
                switch planned.verb {
                case .update: .matchedOne
                case .delete: .affected(1)
                default: .returnedOne
                }
            try enqueue(context, expectation) { sql throws(ApplyError) in
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
            try enqueue(StatementContext(what: "truncate", batch: batch, position: position)) {
                sql throws(ApplyError) in
                sql.raw("SET SESSION foreign_key_checks = 0")
            }
        }
        for name in unique {
            try enqueue(StatementContext(what: "truncate", batch: batch, position: position, table: name)) {
                sql throws(ApplyError) in
                MariaDBStatementPlanner.writeDeleteAll(name, into: &sql)
            }
        }
        if toggle {
            try enqueue(StatementContext(what: "truncate", batch: batch, position: position)) {
                sql throws(ApplyError) in
                sql.raw("SET SESSION foreign_key_checks = 1")
            }
        }
    }

    /// Adds an insert to the current run, or starts a new run when the table or the columns
    /// differ or the run is full.
    private func addInsert(_ row: PlannedRow, _ context: StatementContext) throws(ApplyError) {
        var size = 4
        for value in row.values {
            switch value {
            case .plain(let text): size += text.utf8.count + 2
            case .string(let text): size += text.utf8.count * 2 + 4
            case .binary(let bytes): size += bytes.count * 2 + 5
            }
        }
        if let run = insertRun,
            run.table != row.table || run.columns != row.assigned || run.rows.count >= Self.insertRows
                || run.bytes + size > Self.insertBytes
        {
            try closeInsertRun()
        }
        if insertRun == nil { insertRun = InsertRun(table: row.table, columns: row.assigned) }
        insertRun?.rows.append(row.values)
        insertRun?.contexts.append(context)
        insertRun?.bytes += size
    }

    /// Writes the gathered inserts into the round as one statement.
    private func closeInsertRun() throws(ApplyError) {
        guard let run = insertRun else { return }
        insertRun = nil
        var context = run.contexts[0]
        if run.rows.count > 1 { context.change = nil }
        try enqueue(context, .affected(UInt64(run.rows.count)), insert: run) { sql throws(ApplyError) in
            try MariaDBStatementPlanner.writeInsert(run.table, columns: run.columns, rows: run.rows, into: &sql)
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
                throw failure(.value, "commit time: \(error.reason)", context)
            }
        }
        let position: MariaDBLiteral =
            checkpoint.lastApplied.map { MariaDBLiteral.string($0.storedText) } ?? .plain("NULL")
        let streamName = checkpoint.stream.rawValue
        try enqueue(context) { sql throws(ApplyError) in
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
        try flushRound()
        try enqueue(StatementContext(what: "commit", batch: lastBatch, position: checkpoint.appliedPosition)) {
            sql throws(ApplyError) in sql.raw("COMMIT")
        }
        try flushRound()
    }

    // MARK: Rounds

    /// Appends one statement to the round (ending the insert run before it, unless it is that
    /// run), and sends the round when it is full.
    private func enqueue(
        _ context: StatementContext, _ expectation: StatementExpectation = .nothing, insert: InsertRun? = nil,
        _ write: (inout SQLWriter) throws(ApplyError) -> Void
    ) throws(ApplyError) {
        if insert == nil { try closeInsertRun() }
        let start = sql.count
        if !pending.isEmpty { sql.raw(";") }
        let bodyStart = sql.count
        do {
            try write(&sql)
        } catch {
            _ = sql.cut(from: start)
            throw located(error, context)
        }
        let size = sql.count - bodyStart
        let limit = min(Self.roundBytes, packetLimit)
        if size > packetLimit {
            _ = sql.cut(from: start)
            throw failure(
                .value,
                "the \(context.what) statement needs \(size) bytes, more than the DR server's max_allowed_packet allows",
                context,
                hint:
                    "Raise max_allowed_packet at the DR server (SET GLOBAL max_allowed_packet) above the largest row, then restart the applier."
            )
        }
        if !pending.isEmpty && sql.count > limit {
            // Too big for this round: send what is there, start the next round with it.
            let body = sql.cut(from: bodyStart)
            _ = sql.cut(from: start)
            try flushRound(wait: false)
            sql.bytes.append(contentsOf: body)
        }
        pending.append(PendingStatement(context: context, expectation: expectation, tag: insert))
        if pending.count >= Self.roundStatements || sql.count >= limit {
            try flushRound(wait: false)
        }
    }

    /// Sends the round. With `wait`, also reads and checks its outcomes before returning;
    /// without, it stays in flight while the caller prepares the next round (the server works
    /// while this side plans and escapes: apply is bound by the DR server's one session, and
    /// it would otherwise idle between rounds). Either way the round before it is settled
    /// first, so at most one round is in flight and a failure is found before anything after
    /// it is sent.
    private func flushRound(wait: Bool = true) throws(ApplyError) {
        try settle()
        guard !pending.isEmpty else { return }
        let statements = pending
        let text = sql.bytes
        pending.removeAll(keepingCapacity: true)
        sql.reset()
        let connection = try requireConnection(statements[0].context)
        do {
            try connection.sendMultiple(text, context: "apply round of \(statements.count) statements")
        } catch {
            throw lost(error, statements[0].context)
        }
        inFlight = statements
        if wait { try settle() }
    }

    /// Reads the outcomes of the round in flight, if any, and checks every statement's. The
    /// first failure is thrown (the connection is idle again); the caller rolls back.
    private func settle() throws(ApplyError) {
        guard let statements = inFlight else { return }
        inFlight = nil
        let connection = try requireConnection(statements[0].context)
        let outcome: MySQLMultiOutcome
        do {
            outcome = try connection.readMultiple(
                context: "apply round of \(statements.count) statements",
                statements: statements.count)
        } catch {
            throw lost(error, statements[0].context)
        }
        var outcomes = outcome.outcomes.map { result in
            StatementOutcome.done(
                affected: result.affectedRows, matched: result.matchedRows, returned: result.result?.rowCount ?? 0)
        }
        if outcome.failure != nil { outcomes.append(.failed) }
        switch StatementRound<InsertRun>.check(outcomes, of: statements) {
        case nil:
            return
        case .refused(let index)?:
            throw pinpoint(statements[index], outcome.failure!, connection)
        case .matchedUnknown(let index)?:
            throw failure(
                .statement,
                "the server did not report how many rows the update matched (info: \(outcome.outcomes[index].info ?? "none"))",
                statements[index].context)
        case .rowCount(let index, let count)?:
            if let run = statements[index].tag {
                throw failure(
                    .statement, "the insert of \(run.rows.count) rows inserted \(count)", statements[index].context)
            }
            throw failure(
                .rowMismatch, "\(statements[index].context.what) matched \(count) rows where exactly 1 must exist",
                statements[index].context)
        case .outcomeCount(let got, let expected)?:
            if let error = outcome.failure { throw failure(error, statements[statements.count - 1].context) }
            throw internalError("the round returned \(got) outcomes for \(expected) statements")
        }
    }

    /// The error for a failed statement. For a multi-row INSERT, its rows are sent again one per
    /// statement to find the row the server refuses: the failed statement was rolled back on its
    /// own (InnoDB undoes a failed statement), so the rows before the culprit insert as before
    /// and the culprit fails the same way. Not for deadlocks, which roll back the whole
    /// transaction, nor for a lost connection.
    private func pinpoint(_ statement: PendingStatement, _ error: MySQLError, _ connection: MySQLConnection)
        -> ApplyError
    {
        let original = failure(error, statement.context)
        guard let run = statement.tag, run.rows.count > 1, error.kind == .query, error.code != 1213 else {
            return original
        }
        var probe = sql.fresh()
        do {
            for (index, row) in run.rows.enumerated() {
                if index > 0 { probe.raw(";") }
                try MariaDBStatementPlanner.writeInsert(run.table, columns: run.columns, rows: [row], into: &probe)
            }
            let outcome = try connection.executeMultiple(probe.bytes, context: "pinpoint a failed insert")
            if let again = outcome.failure, outcome.outcomes.count < run.contexts.count {
                return failure(again, run.contexts[outcome.outcomes.count])
            }
        } catch {
            logger.warning("mariadb apply: could not find the failing row of a multi-row insert: \(error)")
        }
        return original
    }

    // MARK: DR tables

    /// What the DR server has for `name`, looked up once per connection: it must be a
    /// transactional base table, and without triggers unless they are allowed. The lookup waits
    /// for the round in flight, then runs ahead of the unsent round, which does not depend on it.
    private func targetTable(_ name: RelationName, _ context: StatementContext) throws(ApplyError)
        -> TargetTable
    {
        if let known = tables[name] { return known }
        try settle()
        let connection = try requireConnection(context)
        var query = sql.fresh()
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
        let outcome: MySQLMultiOutcome
        do {
            outcome = try connection.executeMultiple(query.bytes, context: "look up \(name)")
        } catch {
            throw lost(error, context)
        }
        if let error = outcome.failure { throw failure(error, context) }
        guard outcome.outcomes.count == 3, let kind = outcome.outcomes[0].result,
            let generated = outcome.outcomes[1].result, let triggers = outcome.outcomes[2].result
        else {
            throw internalError("the lookup of \(name) returned \(outcome.outcomes.count) results")
        }
        guard kind.rowCount == 1 else {
            throw failure(
                .statement, "table \(name) does not exist at the DR server", context,
                hint: "Create the table at the DR site (seed it from the source) before applying.")
        }
        let type = kind.value(row: 0, column: 0) ?? ""
        let engine = kind.value(row: 0, column: 1) ?? "none"
        guard type == "BASE TABLE" || type == "SYSTEM VERSIONED" else {
            throw failure(
                .unsupportedTable, "\(name) is a \(type.lowercased()) at the DR server, not a table", context,
                hint: "Apply into the base table: replicate the table itself, not a view of it.")
        }
        guard kind.value(row: 0, column: 2) == "YES" else {
            throw failure(
                .unsupportedTable,
                "table \(name) uses the \(engine) engine, which is not transactional: its rows could not commit together with the checkpoint",
                context, hint: "Convert the DR table to InnoDB (ALTER TABLE … ENGINE=InnoDB), then restart the applier."
            )
        }
        if !allowTriggers, let count = triggers.value(row: 0, column: 0), count != "0" {
            throw failure(
                .unsupportedTable,
                "table \(name) has \(count) trigger(s) at the DR server: they would fire again for rows the source's triggers already changed",
                context,
                hint:
                    "Drop the DR table's triggers, or make them skip Tandem's session (IF @@session.gtid_domain_id <> \(domainID)) and start the applier with triggers allowed."
            )
        }
        let target = TargetTable(generated: Set(generated.rows.compactMap { $0.first ?? nil }))
        tables[name] = target
        return target
    }

    // MARK: Errors and recovery

    private func failure(
        _ kind: ApplyError.Kind, _ message: String, _ context: StatementContext, hint: String? = nil
    ) -> ApplyError {
        ApplyError(
            .mariadb,
            kind, message, batchSequence: context.batch, commitPosition: context.position, table: context.table,
            key: context.change.flatMap(MariaDBStatementPlanner.keyDescription), hint: hint)
    }

    private func failure(_ error: MySQLError, _ context: StatementContext) -> ApplyError {
        var result = failure(.statement, "\(context.what) failed", context)
        switch error.kind {
        case .connectionLost, .closed, .client:
            result.kind = .connectionLost
        case .connection, .query:
            if Self.isReadOnlyRefusal(error) {
                result.kind = .readOnly
                result.message =
                    "\(context.what) refused: the DR server is read_only and the apply user lacks the READ_ONLY ADMIN privilege"
                result.fixedHint = Self.readOnlyHint
            }
        }
        result.server = Self.server(error)
        return result
    }

    /// A connection-level failure: the connection is dropped (the server rolls back whatever it
    /// held), and the next call reconnects.
    private func lost(_ error: MySQLError, _ context: StatementContext) -> ApplyError {
        connection?.close()
        connection = nil
        return failure(error, context)
    }

    static let readOnlyHint =
        "The DR server is read_only: grant the apply user READ_ONLY ADMIN (GRANT READ_ONLY ADMIN ON *.* TO …); since MariaDB 10.11 SUPER no longer includes it."

    /// Connector/C's error as the shared shape, with the remedy for its error number.
    static func server(_ error: MySQLError) -> ServerError {
        ServerError(
            code: "\(error.code)/\(error.sqlState)", sqlState: error.sqlState, number: error.code,
            message: error.message,
            remedy: remedy(number: error.code),
            connectionLost: error.kind == .connectionLost || error.kind == .closed || error.kind == .client)
    }

    /// What an operator does about a statement the DR server refused, by error number.
    static func remedy(number: UInt32) -> String? {
        switch number {
        case 1146:
            return "Create the table at the DR site (seed it from the source) before applying."
        case 1054:
            return "The DR table lacks a column the source sends; align the DR table definition with the source."
        case 1062, 1451, 1452, 1216, 1217, 4025:
            return
                "The DR copy has diverged from the source (a conflicting row); re-seed this table or remove the conflicting row, then restart the applier."
        case 1142, 1143, 1044, 1227:
            return
                "The apply user lacks a privilege at the DR server; grant it (SELECT, INSERT, UPDATE, DELETE on the replicated schemas)."
        case 1153:
            return
                "A statement exceeds the DR server's max_allowed_packet; raise it (SET GLOBAL max_allowed_packet) above the largest row."
        case 1205, 1213:
            return
                "Another session at the DR server holds locks on these rows; find it (SHOW PROCESSLIST) and restart the applier."
        case 1264, 1265, 1292, 1366, 1406, 1048:
            return
                "A DR column's type does not accept the source's value; align the DR table definition with the source."
        default:
            return nil
        }
    }

    /// ER_OPTION_PREVENTS_STATEMENT (1290) names the option; only `--read-only` is meant here.
    static func isReadOnlyRefusal(_ error: MySQLError) -> Bool {
        error.code == 1290 && (error.message.contains("read-only") || error.message.contains("read_only"))
    }

    /// Fills in where an error without a location happened (an escaping failure while writing a
    /// statement), keeping what it says.
    private func located(_ error: ApplyError, _ context: StatementContext) -> ApplyError {
        guard error.batchSequence == nil, error.table == nil else { return error }
        var result = failure(error.kind, error.message, context, hint: error.fixedHint)
        result.server = error.server
        return result
    }

    private func internalError(_ message: String) -> ApplyError {
        ApplyError(.mariadb, .statement, "internal error: " + message)
    }

    private func requireConnection(_ context: StatementContext) throws(ApplyError) -> MySQLConnection {
        guard let connection, connection.isOpen else {
            throw failure(.connectionLost, "the DR connection is closed", context)
        }
        return connection
    }

    /// Ends the open target transaction without committing and forgets everything that depended
    /// on it. When the connection cannot be brought back to a clean idle state it is closed
    /// (which rolls back too) and the next call reconnects.
    public func rollBack() {
        pending.removeAll()
        sql.reset()
        insertRun = nil
        tables.removeAll()
        let roundInFlight = inFlight != nil
        inFlight = nil
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

    private func resetConnectionState() {
        inFlight = nil
        pending.removeAll()
        sql.reset()
        insertRun = nil
        tables.removeAll()
    }

    // MARK: Connection and checkpoint

    private func open() throws(ApplyError) -> MySQLConnection {
        let connection: MySQLConnection
        do {
            connection = try MySQLConnection(
                host: host, port: port, user: user, password: password, database: database, unixSocket: unixSocket)
        } catch {
            throw ApplyError(
                .mariadb,
                error.kind == .connectionLost ? .connectionLost : .connection, "cannot connect to the DR server",
                server: Self.server(error))
        }
        func fail(_ error: ApplyError) -> ApplyError {
            connection.close()
            return error
        }
        func run(_ text: String, _ what: String) throws(ApplyError) -> MySQLMultiOutcome {
            do {
                return try connection.executeMultiple(Array(text.utf8), context: what)
            } catch {
                throw fail(ApplyError(.mariadb, .connectionLost, "cannot \(what)", server: Self.server(error)))
            }
        }
        do {
            try connection.setMultiStatements(true)
        } catch {
            throw fail(ApplyError(.mariadb, .connection, "cannot enable multi-statements", server: Self.server(error)))
        }

        let facts = try run(
            "SELECT @@session.sql_log_bin, @@global.log_bin, @@global.binlog_format, @@global.read_only, @@max_allowed_packet, @@global.gtid_domain_id",
            "read the server settings")
        guard facts.failure == nil, let row = facts.outcomes.first?.result, row.rowCount == 1 else {
            throw fail(
                ApplyError(
                    .mariadb, .connection, "cannot read the server settings", server: facts.failure.map(Self.server)))
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
        if let packet = row.value(row: 0, column: 4).flatMap(Int.init) { packetLimit = max(packet - 4096, 64 << 10) }
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
                        server: Self.server(error),
                        hint: setting.privilege.map {
                            "GRANT \($0) ON *.* TO the apply user (it sets \(setting.what) for its session); see MariaDBSink."
                        }))
            }
            throw fail(ApplyError(.mariadb, .connection, "cannot set \(setting.what)", server: Self.server(error)))
        }

        let exists = try run(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'tandem' AND TABLE_NAME = 'apply_checkpoint'",
            "look for the checkpoint table")
        guard exists.failure == nil, let count = exists.outcomes.first?.result?.value(row: 0, column: 0) else {
            throw fail(
                ApplyError(
                    .mariadb, .checkpoint, "cannot look for the checkpoint table",
                    server: exists.failure.map(Self.server)))
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
                    server: Self.server(error),
                    hint: "Grant the apply user CREATE on `tandem`.*, or create the table as an administrator.")
                if Self.isReadOnlyRefusal(error) {
                    failure.kind = .readOnly
                    failure.message += ": the DR server is read_only and the apply user lacks READ_ONLY ADMIN"
                    failure.fixedHint = Self.readOnlyHint
                }
                throw fail(failure)
            }
        }
        return connection
    }

    /// Reads the checkpoint row. Outside an open target transaction the read's own transaction
    /// is ended at once, so no snapshot stays open between calls.
    public func readCheckpoint(inTransaction: Bool) throws(ApplyError) -> SinkCheckpoint {
        try flushRound()
        let connection = try requireConnection(StatementContext(what: "checkpoint read"))
        var query = sql.fresh()
        query.raw("SELECT sequence, position FROM `tandem`.`apply_checkpoint` WHERE stream = ")
        try query.literal(.string(stream.rawValue))
        if !inTransaction { query.raw(";ROLLBACK") }
        let outcome: MySQLMultiOutcome
        do {
            outcome = try connection.executeMultiple(query.bytes, context: "read the checkpoint")
        } catch {
            throw lost(error, StatementContext(what: "checkpoint read"))
        }
        guard outcome.failure == nil, let result = outcome.outcomes.first?.result else {
            throw ApplyError(
                .mariadb, .checkpoint, "cannot read the checkpoint", server: outcome.failure.map(Self.server))
        }
        guard result.rowCount > 0 else { return .empty }
        guard let text = result.value(row: 0, column: 0), let sequence = UInt64(text) else {
            throw ApplyError(.mariadb, .checkpoint, "the checkpoint's sequence is not a batch number")
        }
        guard let positionText = result.value(row: 0, column: 1) else {
            return SinkCheckpoint(sequence: sequence, position: nil)
        }
        do {
            return SinkCheckpoint(sequence: sequence, position: try Position(storedText: positionText))
        } catch {
            throw ApplyError(
                .mariadb,
                .checkpoint, "the checkpoint's position does not parse: \(error)",
                hint:
                    "A checkpoint written before positions were stored with their engine holds the bare position: put the source engine's name and a space in front (for example UPDATE tandem.apply_checkpoint SET position = CONCAT('postgresql ', position)), then restart the applier."
            )
        }
    }

    private static func verbName(_ kind: RowChange.Kind) -> String {
        switch kind {
        case .insert: "insert"
        case .update: "update"
        case .delete: "delete"
        case .truncate: "truncate"
        }
    }
}
