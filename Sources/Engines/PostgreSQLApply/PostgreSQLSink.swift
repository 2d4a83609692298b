import Logging
import PGClient
import TandemAgent
import TandemCodec
import TandemCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Applies Tandem batches to a PostgreSQL DR database.
///
/// ## Exactly once
/// Delivery from the source is at least once: a restarted shipper re-sends, under new batch
/// sequence numbers, transactions it had already sent. What makes the DR copy exact is the
/// checkpoint row `tandem.apply_checkpoint`, written in the same target transaction as the
/// data it describes, so that after any crash it says precisely what is in the DR database:
/// - every target transaction ends by upserting the checkpoint (the last batch's sequence and
///   the commit position of the last source transaction applied) and then commits; the data
///   and the checkpoint become visible together or not at all;
/// - a source transaction whose commit position is at or before the last one applied is
///   skipped. Positions of one stream are ordered (`Position.compare`), so "at or before" means
///   "already in the DR database"; an incomparable position is applied, never guessed away;
/// - after a restart, `checkpoint()` is read back from the DR database, not from memory.
///
/// ## Chunked transactions
/// A large source transaction arrives as chunks (same commit position, index 0…n, the last
/// marked final), possibly spread over several batches and several `apply` calls. All chunks
/// commit in one target transaction: when a call ends before the final chunk, the target
/// transaction stays open and the call returns the last committed checkpoint; the call that
/// brings the final chunk commits everything with its last batch's sequence. A crash rolls the
/// open transaction back and the caller resumes from the committed checkpoint, which is before
/// the first chunk. Each chunked transaction runs under a savepoint so that, if the shipper
/// restarts and re-sends it from chunk 0, only that transaction is undone and re-applied.
///
/// ## Loops between sites
/// The session is bound to the replication origin `tandem_<stream>`, so every row this sink
/// writes carries that origin in the DR database's WAL; PostgreSQL capture at this site sees it
/// (pgoutput's Origin message) and does not ship the rows back. Holding the origin also keeps a
/// second applier for the same stream out: PostgreSQL lets one session hold an origin at a time.
/// `session_replication_role = replica` keeps the DR tables' ordinary triggers and foreign-key
/// checks from firing, as native logical replication does: the source already ran them.
///
/// Used by one thread at a time (the applier's apply thread), as `BatchSink` requires.
public final class PostgreSQLSink: BatchSink, @unchecked Sendable {
    // @unchecked: every member is used only from the one thread `BatchSink` allows.

    /// Every origin Tandem's appliers use starts with this, so capture can recognise them.
    public static let originPrefix = "tandem_"

    /// The replication origin of `stream`: the prefix and the stream name. Stream names are
    /// already restricted to `A-Z a-z 0-9 . _ -`; anything else is replaced by `_` defensively.
    public static func originName(for stream: StreamID) -> String {
        let safe = stream.rawValue.unicodeScalars.map { scalar -> Character in
            let ok = (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z")
                || (scalar >= "0" && scalar <= "9") || scalar == "." || scalar == "_" || scalar == "-"
            return ok ? Character(scalar) : "_"
        }
        return originPrefix + String(safe)
    }

    /// Statements per pipeline round, and parameter bytes per round: bounds on the results and
    /// the data queued between two syncs.
    static let roundStatements = 1000
    /// Row changes after which the target transaction is committed at the next batch boundary.
    static let rowsPerCommit = 5000
    static let roundBytes = 8 << 20
    /// Prepared statements kept per connection before they are all dropped and re-prepared.
    static let statementCacheLimit = 4096

    public let stream: StreamID
    public let originName: String
    private let conninfo: String
    private let maskedConninfo: String
    private let logger: Logger
    private let originWait: Duration
    private let decoder: BatchDecoder

    private var connection: PGConnection?
    /// The committed checkpoint, the open target transaction and what each batch, transaction
    /// and chunk must do (skip, savepoints, when to commit): the engine-neutral part of apply.
    private var progress = ApplyProgress()
    /// Prepared statements of this connection, by shape.
    private var statements: [StatementShape: String] = [:]
    private var statementCounter = 0
    /// What is known of each DR table on this connection.
    private var targets: [RelationName: TargetTable] = [:]
    /// Commands sent in the current pipeline round, in order, awaiting their results.
    private var pending: [PendingCommand] = []
    private var pendingBytes = 0

    private struct TargetTable {
        var partitioned: Bool
    }

    /// Where a command came from, for the error that names it.
    private struct CommandContext {
        var what: String
        var batch: UInt64?
        var position: Position?
        var table: RelationName?
        var change: RowChange?
    }

    private enum Expectation {
        case nothing
        /// The command must report exactly one row affected (UPDATE, DELETE, INSERT).
        case oneRowAffected
        /// The query must return exactly one row.
        case oneRowReturned
    }

    private struct PendingCommand {
        var context: CommandContext
        var expectation: Expectation
    }

    /// Connects, prepares the session and reads the checkpoint.
    ///
    /// - Parameter originWait: how long to keep trying while the stream's replication origin
    ///   is held by another session (typically the backend of a previous, just-killed applier
    ///   that has not exited yet) before failing with `.originBusy`.
    public init(conninfo: String, stream: StreamID, logger: Logger, originWait: Duration = .seconds(5)) throws {
        self.stream = stream
        self.originName = Self.originName(for: stream)
        self.conninfo = conninfo
        self.maskedConninfo = PGConninfo.masked(conninfo)
        self.logger = logger
        self.originWait = originWait
        do {
            self.decoder = try BatchDecoder()
        } catch {
            throw PostgreSQLApplyError(.connection, "cannot set up the batch decoder: \(error)")
        }
        let connection = try connect()
        self.connection = connection
        progress.reset(committed: try readCheckpoint(connection))
        let committed = progress.committed
        logger.info(
            "postgresql apply: stream \(stream) connected (\(maskedConninfo)), origin \(originName), checkpoint batch \(committed.sequence) at \(committed.position.map { "\($0)" } ?? "-")"
        )
    }

    deinit {
        connection?.close()
    }

    /// Closes the connection. An open (chunked, uncommitted) target transaction is rolled back
    /// by the server; a later call reconnects and starts from the committed checkpoint.
    public func close() {
        connection?.close()
        connection = nil
        resetConnectionState()
    }

    // MARK: BatchSink

    public func checkpoint() throws -> SinkCheckpoint {
        let connection = try connected()
        let committed = try readCheckpoint(connection)
        progress.reread(committed: committed)
        return committed
    }

    public func apply(_ batches: [SinkBatch]) throws -> SinkCheckpoint {
        guard let first = batches.first else { return progress.committed }
        do {
            if !progress.continuesOpen(first: first.sequence) {
                // The caller started over (from the committed checkpoint) rather than
                // continuing the open transaction: what it held is about to come again.
                logger.warning(
                    "postgresql apply: batch \(first.sequence) does not continue the open transaction (through batch \(progress.open?.lastFed ?? 0)); rolling it back to resume from the checkpoint (batch \(progress.committed.sequence))"
                )
                rollBack()
            }
            let connection = try connected()
            let begin: Bool
            do throws(ApplyProgress.OrderError) {
                begin = try progress.startCall(batches.map(\.sequence))
            } catch {
                throw PostgreSQLApplyError(order: error)
            }
            if begin {
                try send(connection, .query("BEGIN", []), CommandContext(what: "begin"))
            }
            for (index, item) in batches.enumerated() {
                let batch = try decode(item)
                for transaction in batch.transactions {
                    try apply(transaction, batch: item.sequence, connection)
                }
                progress.fed(item.sequence)
                // Commit at a batch boundary once the target transaction is large: a row updated
                // many times in one transaction leaves a chain of versions that only a commit lets
                // PostgreSQL prune, and every further update of it walks that chain (pgbench's
                // branches: apply slowed down 4x with 30 000 transactions per commit).
                if progress.commitDue(rowsPerCommit: Self.rowsPerCommit, moreBatchesFollow: index < batches.count - 1) {
                    try flushRound(connection)
                    try commit(connection)
                    progress.didCommit()
                    try send(connection, .query("BEGIN", []), CommandContext(what: "begin"))
                    progress.begin()
                }
            }
            guard progress.canCommit else {
                // Inside a chunked transaction: its chunks commit together, in a later call.
                try flushRound(connection)
                return progress.committed
            }
            try commit(connection)
            return progress.didCommit()
        } catch let error as PostgreSQLApplyError {
            rollBack()
            throw error
        } catch {
            rollBack()
            throw PostgreSQLApplyError(.statement, "unexpected failure: \(error)")
        }
    }

    // MARK: Applying

    private func decode(_ item: SinkBatch) throws(PostgreSQLApplyError) -> Batch {
        let batch: Batch
        do {
            batch = try decoder.decode(item.frame)
        } catch {
            throw PostgreSQLApplyError(.sequence, "the frame does not decode: \(error)", batchSequence: item.sequence)
        }
        guard batch.stream == stream else {
            throw PostgreSQLApplyError(
                .sequence, "the batch belongs to stream \(batch.stream), not \(stream)", batchSequence: item.sequence)
        }
        guard batch.sequence == item.sequence else {
            throw PostgreSQLApplyError(
                .sequence, "the frame carries batch number \(batch.sequence)", batchSequence: item.sequence)
        }
        return batch
    }

    /// Applies one source transaction (or one chunk of it) inside the open target transaction,
    /// or skips it when the DR database already has it.
    private func apply(_ transaction: Transaction, batch: UInt64, _ connection: PGConnection)
        throws(PostgreSQLApplyError)
    {
        let position = transaction.commitPosition
        let chunk = transaction.chunk
        let admission: ApplyProgress.Admission
        do throws(ApplyProgress.OrderError) {
            let incomparable: Bool
            (admission, incomparable) = try progress.admit(position, chunk: chunk, batch: batch)
            if incomparable {
                logger.warning(
                    "postgresql apply: transaction \(position) is not comparable with the last applied position \(progress.open?.appliedPosition.map { "\($0)" } ?? "-"); applying it"
                )
            }
        } catch {
            throw PostgreSQLApplyError(order: error)
        }
        guard case .apply(let savepoint) = admission else { return }
        switch savepoint {
        case .set:
            try send(
                connection, .query("SAVEPOINT tandem_chunk", []),
                CommandContext(what: "savepoint", batch: batch, position: position))
        case .rollBack(let undone):
            // The shipper restarted and sends this transaction again from its start.
            logger.warning(
                "postgresql apply: transaction \(position) starts again at chunk 0 in batch \(batch); undoing its \(undone) chunk(s) applied so far"
            )
            try send(
                connection, .query("ROLLBACK TO SAVEPOINT tandem_chunk", []),
                CommandContext(what: "savepoint rollback", batch: batch, position: position))
        case nil:
            break
        }

        try apply(transaction.changes, batch: batch, position: position, connection)

        if progress.applied(position, chunk: chunk, commitTime: transaction.commitTime, rows: transaction.changes.count) {
            try send(
                connection, .query("RELEASE SAVEPOINT tandem_chunk", []),
                CommandContext(what: "savepoint release", batch: batch, position: position))
        }
    }

    private func apply(_ changes: [RowChange], batch: UInt64, position: Position, _ connection: PGConnection)
        throws(PostgreSQLApplyError)
    {
        var truncates: [RelationName] = []
        var truncateOptions = (cascade: false, restartIdentity: false)
        func flushTruncates() throws(PostgreSQLApplyError) {
            guard !truncates.isEmpty else { return }
            try truncate(
                truncates, cascade: truncateOptions.cascade, restartIdentity: truncateOptions.restartIdentity,
                batch: batch, position: position, connection)
            truncates.removeAll()
        }
        for change in changes {
            if case .truncate(let cascade, let restartIdentity) = change.kind {
                if !truncates.isEmpty
                    && (truncateOptions.cascade != cascade || truncateOptions.restartIdentity != restartIdentity)
                {
                    try flushTruncates()
                }
                truncateOptions = (cascade, restartIdentity)
                if !truncates.contains(change.relation.name) { truncates.append(change.relation.name) }
                continue
            }
            try flushTruncates()
            if let sequence = SequenceValues.values(of: change) {
                try advanceSequence(sequence, batch: batch, position: position, connection)
                continue
            }
            try applyRow(change, batch: batch, position: position, connection)
        }
        try flushTruncates()
    }

    private func applyRow(_ change: RowChange, batch: UInt64, position: Position, _ connection: PGConnection)
        throws(PostgreSQLApplyError)
    {
        let context = CommandContext(
            what: Self.verbName(change.kind), batch: batch, position: position, table: change.relation.name,
            change: change)
        let target = try targetTable(change.relation.name, context, connection)
        let planned: PlannedStatement
        do {
            planned = try StatementPlanner.plan(change, partitioned: target.partitioned)
        } catch {
            throw failure(.value, error.message, context)
        }
        let name = try statementName(for: planned.shape, context, connection)
        let expectation: Expectation = planned.shape.verb == .check ? .oneRowReturned : .oneRowAffected
        try send(connection, .execute(name, planned.parameters), context, expectation)
    }

    /// Moves the DR site's sequence forward to at least the source's value, never back.
    /// `setval` is not transactional: a rollback after it leaves the sequence ahead,
    /// which is harmless (ids are only skipped), so it needs no undo. A sequence missing
    /// at the DR site is passed over; `tandem verify` is where such drift is reported.
    private func advanceSequence(
        _ sequence: (schema: String, name: String, lastValue: Int64), batch: UInt64, position: Position,
        _ connection: PGConnection
    ) throws(PostgreSQLApplyError) {
        let context = CommandContext(what: "sequence", batch: batch, position: position,
                                     table: RelationName(schema: sequence.schema, name: sequence.name))
        try send(
            connection,
            .query(
                """
                SELECT setval(format('%I.%I', s.schemaname, s.sequencename)::regclass, $3::bigint)
                FROM pg_sequences s
                WHERE s.schemaname = $1 AND s.sequencename = $2
                  AND coalesce(s.last_value, s.start_value - s.increment_by) < $3::bigint
                """,
                [sequence.schema, sequence.name, String(sequence.lastValue)]),
            context)
    }

    private func truncate(
        _ tables: [RelationName], cascade: Bool, restartIdentity: Bool, batch: UInt64, position: Position,
        _ connection: PGConnection
    ) throws(PostgreSQLApplyError) {
        var described: [(name: RelationName, partitioned: Bool)] = []
        for table in tables {
            let context = CommandContext(what: "truncate", batch: batch, position: position, table: table)
            described.append((table, try targetTable(table, context, connection).partitioned))
        }
        let context = CommandContext(
            what: "truncate", batch: batch, position: position, table: tables.count == 1 ? tables[0] : nil)
        let sql: String
        do {
            sql = try StatementPlanner.truncateSQL(
                described, cascade: cascade, restartIdentity: restartIdentity, quote: connection.escapeIdentifier)
        } catch {
            throw failure(error, context)
        }
        try send(connection, .query(sql, []), context)
    }

    /// Writes the checkpoint, records the origin's progress and commits.
    ///
    /// The COMMIT goes out only after every earlier result has been read and checked: a row
    /// count is checked here, not by the server, so a COMMIT pipelined behind an UPDATE that
    /// matched no row would commit before the mismatch is seen.
    private func commit(_ connection: PGConnection) throws(PostgreSQLApplyError) {
        guard let state = progress.open, let checkpoint = progress.pendingCheckpoint else {
            throw internalError("no open transaction to commit")
        }
        let lastBatch = checkpoint.sequence
        let context = CommandContext(what: "checkpoint", batch: lastBatch, position: state.appliedPosition)
        var commitTime: String?
        if let last = state.lastApplied {
            do {
                commitTime = try PostgreSQLValueText.parameter(.timestampWithZone(last.commitTime))
            } catch {
                throw failure(.value, "commit time: \(error.reason)", context)
            }
        }
        try send(
            connection,
            .query(
                """
                INSERT INTO tandem.apply_checkpoint AS c (stream, sequence, position, commit_time, applied_at)
                VALUES ($1, $2, $3, $4, clock_timestamp())
                ON CONFLICT (stream) DO UPDATE SET sequence = excluded.sequence,
                    position = coalesce(excluded.position, c.position),
                    commit_time = coalesce(excluded.commit_time, c.commit_time),
                    applied_at = excluded.applied_at
                """,
                [stream.rawValue, String(lastBatch), state.lastApplied.map { Self.storedText($0.position) }, commitTime]),
            context, .oneRowAffected)
        if let last = state.lastApplied, case .postgresql(let lsn) = last.position, let commitTime {
            // Shown in pg_replication_origin_status.remote_lsn once this transaction commits.
            try send(
                connection,
                .query("SELECT pg_replication_origin_xact_setup($1::pg_lsn, $2::timestamptz)", [lsn.description, commitTime]),
                CommandContext(what: "origin progress", batch: lastBatch, position: last.position))
        }
        try flushRound(connection)
        try send(connection, .query("COMMIT", []), CommandContext(what: "commit", batch: lastBatch, position: state.appliedPosition))
        try flushRound(connection)
    }

    // MARK: Statements and the pipeline

    private enum Command {
        case prepare(String, String, Int)
        case execute(String, [String?])
        case query(String, [String?])
    }

    private func send(
        _ connection: PGConnection, _ command: Command, _ context: CommandContext,
        _ expectation: Expectation = .nothing
    ) throws(PostgreSQLApplyError) {
        do {
            if !connection.isInPipelineMode { try connection.enterPipelineMode() }
            switch command {
            case .prepare(let name, let sql, let count):
                try connection.sendPrepare(name: name, sql: sql, parameterCount: count)
                pendingBytes += sql.utf8.count
            case .execute(let name, let parameters):
                try connection.sendPrepared(name: name, parameters: parameters)
                for parameter in parameters { pendingBytes += parameter?.utf8.count ?? 0 }
            case .query(let sql, let parameters):
                try connection.sendQuery(sql, parameters: parameters)
                pendingBytes += sql.utf8.count
            }
        } catch {
            throw failure(error, context)
        }
        pending.append(PendingCommand(context: context, expectation: expectation))
        if pending.count >= Self.roundStatements || pendingBytes >= Self.roundBytes {
            try flushRound(connection)
        }
    }

    /// Ends the pipeline round and checks every command's result. The first failure is thrown
    /// after the whole round is read (so the connection is idle again); the caller rolls back.
    private func flushRound(_ connection: PGConnection) throws(PostgreSQLApplyError) {
        guard connection.isInPipelineMode else { return }
        var first: PostgreSQLApplyError?
        do {
            try connection.pipelineSync()
            for command in pending {
                switch try connection.nextPipelineOutcome() {
                case .skipped:
                    continue
                case .failure(let error):
                    if first == nil { first = failure(error, command.context) }
                case .success(let result):
                    guard first == nil else { continue }
                    let count: Int?
                    switch command.expectation {
                    case .nothing: continue
                    case .oneRowAffected: count = result.commandTuples
                    case .oneRowReturned: count = result.rowCount
                    }
                    if count != 1 {
                        first = failure(
                            .rowMismatch,
                            "\(command.context.what) matched \(count.map(String.init) ?? "no") rows where exactly 1 must exist",
                            command.context)
                    }
                }
            }
            try connection.awaitPipelineSync()
            try connection.exitPipelineMode()
        } catch {
            throw failure(error, pending.first?.context ?? CommandContext(what: "pipeline"))
        }
        pending.removeAll(keepingCapacity: true)
        pendingBytes = 0
        if let first { throw first }
    }

    /// The prepared statement for `shape`, preparing it (in the current round) on first use.
    private func statementName(for shape: StatementShape, _ context: CommandContext, _ connection: PGConnection)
        throws(PostgreSQLApplyError) -> String
    {
        if let name = statements[shape] { return name }
        if statements.count >= Self.statementCacheLimit {
            try send(connection, .query("DEALLOCATE ALL", []), CommandContext(what: "statement cache reset"))
            statements.removeAll()
        }
        statementCounter += 1
        let name = "tandem_apply_\(statementCounter)"
        let sql: String
        do {
            sql = try StatementPlanner.sql(for: shape, quote: connection.escapeIdentifier)
        } catch {
            throw failure(error, context)
        }
        try send(connection, .prepare(name, sql, shape.parameterCount), context)
        statements[shape] = name
        return name
    }

    /// What the DR database has for `name`, looked up once per connection. The lookup needs
    /// an idle connection, so it ends the current round first.
    private func targetTable(_ name: RelationName, _ context: CommandContext, _ connection: PGConnection)
        throws(PostgreSQLApplyError) -> TargetTable
    {
        if let known = targets[name] { return known }
        try flushRound(connection)
        let result: PGResult
        do {
            result = try connection.execParams(
                """
                SELECT c.relkind FROM pg_catalog.pg_class c
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relname = $2
                """, [name.schema, name.name])
        } catch {
            throw failure(error, context)
        }
        guard result.rowCount == 1, let kind = result.value(row: 0, column: 0) else {
            throw failure(
                .statement, "relation \(name) does not exist at the DR database", context,
                hint: "Create the table at the DR site (seed it from the source) before applying.")
        }
        let table = TargetTable(partitioned: kind == "p")
        targets[name] = table
        return table
    }

    // MARK: Errors and recovery

    private func failure(
        _ kind: PostgreSQLApplyError.Kind, _ message: String, _ context: CommandContext, hint: String? = nil
    ) -> PostgreSQLApplyError {
        PostgreSQLApplyError(
            kind, message, batchSequence: context.batch, commitPosition: context.position, table: context.table,
            key: context.change.flatMap(StatementPlanner.keyDescription), hint: hint)
    }

    private func failure(_ error: PGError, _ context: CommandContext) -> PostgreSQLApplyError {
        var result = failure(
            error.kind == .connectionLost || error.kind == .closed ? .connectionLost : .statement,
            "\(context.what) failed", context)
        if error.kind == .invalidArgument { result.kind = .value }
        result.server = error
        return result
    }

    private func internalError(_ message: String) -> PostgreSQLApplyError {
        PostgreSQLApplyError(.statement, "internal error: " + message)
    }

    /// Ends the open target transaction without committing and forgets everything that
    /// depended on it. When the connection cannot be brought back to a clean idle state it is
    /// closed (which rolls back too) and the next call reconnects.
    private func rollBack() {
        progress.abandon()
        pending.removeAll()
        pendingBytes = 0
        // Statements prepared in a failed round may never have been created; start afresh.
        let hadStatements = !statements.isEmpty
        statements.removeAll()
        targets.removeAll()
        guard let connection else { return }
        var clean = connection.abandonPipeline()
        if clean && connection.isInTransaction { clean = (try? connection.exec("ROLLBACK")) != nil }
        if clean && hadStatements { clean = (try? connection.exec("DEALLOCATE ALL")) != nil }
        if !clean {
            logger.warning("postgresql apply: closing the DR connection after a failure; the next call reconnects")
            connection.close()
            self.connection = nil
        }
    }

    private func resetConnectionState() {
        progress.abandon()
        pending.removeAll()
        pendingBytes = 0
        statements.removeAll()
        targets.removeAll()
    }

    // MARK: Connection and checkpoint

    /// The connection, reconnecting if it was lost. A new session has no open transaction, so
    /// the checkpoint is read again: it is the only truth after a lost connection (a COMMIT in
    /// flight may or may not have happened).
    private func connected() throws(PostgreSQLApplyError) -> PGConnection {
        if let connection, connection.isHealthy { return connection }
        if let connection {
            connection.close()
            logger.warning("postgresql apply: the DR connection was lost; reconnecting")
        }
        connection = nil
        resetConnectionState()
        let fresh = try connect()
        connection = fresh
        progress.reset(committed: try readCheckpoint(fresh))
        return fresh
    }

    private func connect() throws(PostgreSQLApplyError) -> PGConnection {
        let connection: PGConnection
        do {
            connection = try PGConnection(conninfo: conninfo)
        } catch {
            throw PostgreSQLApplyError(.connection, "cannot connect to the DR database", server: error)
        }
        func step(_ what: String, _ body: () throws(PGError) -> Void) throws(PostgreSQLApplyError) {
            do {
                try body()
            } catch {
                connection.close()
                throw PostgreSQLApplyError(
                    error.kind == .connectionLost ? .connectionLost : .connection, what, server: error,
                    hint: error.sqlState == "42501"
                        ? "The apply user needs superuser, or privileges for session_replication_role, the replication origin functions and the tandem schema."
                        : nil)
            }
        }
        try step("cannot set the session up for apply") { () throws(PGError) in
            // replica: the DR tables' triggers and foreign keys do not fire (the source ran them).
            // No idle-in-transaction timeout: a chunked transaction stays open between calls.
            // Notices (TRUNCATE … CASCADE) would go to the agent's stderr, not its log.
            // Generic plans: every statement finds its row by key, so the plan never depends on
            // the values, and re-planning each execution (the custom-plan default) is wasted work.
            _ = try connection.exec(
                """
                SET session_replication_role = replica; SET idle_in_transaction_session_timeout = 0;
                SET client_min_messages = warning; SET plan_cache_mode = force_generic_plan
                """)
        }
        try step("cannot create the checkpoint table tandem.apply_checkpoint") { () throws(PGError) in
            let missing = try connection.exec("SELECT to_regclass('tandem.apply_checkpoint') IS NULL")
            if missing.value(row: 0, column: 0) == "t" {
                _ = try connection.exec(
                    """
                    CREATE SCHEMA IF NOT EXISTS tandem;
                    CREATE TABLE IF NOT EXISTS tandem.apply_checkpoint (
                        stream text PRIMARY KEY,
                        sequence bigint NOT NULL,
                        position text,
                        commit_time timestamptz,
                        applied_at timestamptz NOT NULL DEFAULT now())
                    """)
            }
        }
        try step("cannot create the replication origin \(originName)") { () throws(PGError) in
            let absent = try connection.execParams("SELECT pg_replication_origin_oid($1) IS NULL", [originName])
            if absent.value(row: 0, column: 0) == "t" {
                do throws(PGError) {
                    _ = try connection.execParams("SELECT pg_replication_origin_create($1)", [originName])
                } catch {
                    // Created meanwhile by another session: as good as ours.
                    guard error.sqlState == "23505" else { throw error }
                }
            }
        }
        let deadline = ContinuousClock.now.advanced(by: originWait)
        while true {
            do {
                _ = try connection.execParams("SELECT pg_replication_origin_session_setup($1)", [originName])
                break
            } catch where error.sqlState == "55006" {
                if ContinuousClock.now < deadline {
                    usleep(100_000)
                    continue
                }
                connection.close()
                throw PostgreSQLApplyError(
                    .originBusy,
                    "the replication origin \(originName) is in use by another session (another applier for stream \(stream)?)",
                    server: error)
            } catch {
                connection.close()
                throw PostgreSQLApplyError(
                    error.kind == .connectionLost ? .connectionLost : .connection,
                    "cannot bind the session to the replication origin \(originName)", server: error)
            }
        }
        return connection
    }

    private func readCheckpoint(_ connection: PGConnection) throws(PostgreSQLApplyError) -> SinkCheckpoint {
        let result: PGResult
        do {
            result = try connection.execParams(
                "SELECT sequence, position FROM tandem.apply_checkpoint WHERE stream = $1", [stream.rawValue])
        } catch {
            throw PostgreSQLApplyError(
                error.kind == .connectionLost ? .connectionLost : .checkpoint, "cannot read the checkpoint",
                server: error)
        }
        guard result.rowCount > 0 else { return .empty }
        guard let text = result.value(row: 0, column: 0), let sequence = UInt64(text) else {
            throw PostgreSQLApplyError(.checkpoint, "the checkpoint's sequence is not a batch number")
        }
        guard let positionText = result.value(row: 0, column: 1) else {
            return SinkCheckpoint(sequence: sequence, position: nil)
        }
        do {
            return SinkCheckpoint(sequence: sequence, position: try Self.parseStoredPosition(positionText))
        } catch {
            throw PostgreSQLApplyError(.checkpoint, "the checkpoint's position does not parse: \(error)")
        }
    }

    /// A position in its engine's own text form, as `Position(engine:parsing:)` reads it (for
    /// MySQL the GTID set alone: the binlog file and offset are an operator's convenience).
    static func storedText(_ position: Position) -> String {
        switch position {
        case .mysql(let mysql): mysql.gtidSet.description
        default: position.description
        }
    }

    /// Reads back a position stored in its engine's own text form. The forms do not overlap:
    /// an LSN has a `/`, a MySQL GTID set a `:` (after each server UUID), a MariaDB GTID list
    /// only digits, `-` and `,`.
    static func parseStoredPosition(_ text: String) throws(PositionError) -> Position {
        if text.contains("/") { return try Position(engine: .postgresql, parsing: text) }
        if text.contains(":") { return try Position(engine: .mysql, parsing: text) }
        return try Position(engine: .mariadb, parsing: text)
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
