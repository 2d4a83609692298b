import ApplyKit
import Logging
import PGClient
import TandemCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The applier's sink for a PostgreSQL DR database: the shared `SinkDriver` on a
/// `PostgreSQLTarget` session.
public typealias PostgreSQLSink = SinkDriver<PostgreSQLTarget>

extension SinkDriver where Session == PostgreSQLTarget {
    /// Connects, prepares the session and reads the checkpoint.
    ///
    /// - Parameter originWait: how long to keep trying while the stream's replication origin
    ///   is held by another session (typically the backend of a previous, just-killed applier
    ///   that has not exited yet) before failing with `.originBusy`.
    public convenience init(conninfo: String, stream: StreamID, logger: Logger, originWait: Duration = .seconds(5))
        throws(ApplyError)
    {
        try self.init(
            session: PostgreSQLTarget(conninfo: conninfo, stream: stream, logger: logger, originWait: originWait),
            stream: stream, logger: logger)
    }

    /// See `PostgreSQLTarget.originPrefix`.
    public static var originPrefix: String { PostgreSQLTarget.originPrefix }

    /// See `PostgreSQLTarget.originName(for:)`.
    public static func originName(for stream: StreamID) -> String { PostgreSQLTarget.originName(for: stream) }

    /// The replication origin this sink's session is bound to.
    public var originName: String { session.originName }
}

/// One apply session at a PostgreSQL DR database: the `TargetSession` the shared `SinkDriver`
/// drives. What to skip, when to commit and how chunks and savepoints go is the driver's
/// (`ApplyProgress`); this type speaks PostgreSQL: pipelined prepared statements, the
/// checkpoint row, the replication origin.
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
/// Used by one thread at a time (the applier's apply thread).
public final class PostgreSQLTarget: TargetSession {
    /// Every origin Tandem's appliers use starts with this, so capture can recognise them.
    public static let originPrefix = "tandem_"

    /// The replication origin of `stream`: the prefix and the stream name. Stream names are
    /// already restricted to `A-Z a-z 0-9 . _ -`; anything else is replaced by `_` defensively.
    public static func originName(for stream: StreamID) -> String {
        let safe = stream.rawValue.unicodeScalars.map { scalar -> Character in
            let ok =
                (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z")
                || (scalar >= "0" && scalar <= "9") || scalar == "." || scalar == "_" || scalar == "-"
            return ok ? Character(scalar) : "_"
        }
        return originPrefix + String(safe)
    }

    /// Statements per pipeline round, and parameter bytes per round: bounds on the results and
    /// the data queued between two syncs.
    static let roundStatements = 1000
    static let roundBytes = 8 << 20
    /// Prepared statements kept per connection before they are all dropped and re-prepared.
    static let statementCacheLimit = 4096

    public var engine: DatabaseEngine { .postgresql }
    public let stream: StreamID
    public let originName: String
    private let conninfo: String
    private let maskedConninfo: String
    private let logger: Logger
    private let originWait: Duration

    private var connection: PGConnection?
    /// Prepared statements of this connection, by shape.
    private var statements: [StatementShape: String] = [:]
    private var statementCounter = 0
    /// What is known of each DR table on this connection.
    private var targets: [RelationName: TargetTable] = [:]
    /// Commands sent in the current pipeline round, in order, awaiting their results.
    private var round = StatementRound<Never>()
    private var pendingBytes = 0

    private struct TargetTable {
        var partitioned: Bool
    }

    public init(conninfo: String, stream: StreamID, logger: Logger, originWait: Duration = .seconds(5)) {
        self.stream = stream
        self.originName = Self.originName(for: stream)
        self.conninfo = conninfo
        self.maskedConninfo = PGConninfo.masked(conninfo)
        self.logger = logger
        self.originWait = originWait
    }

    deinit {
        connection?.close()
    }

    // MARK: TargetSession

    public var isConnected: Bool { connection?.isHealthy ?? false }

    public func connect() throws(ApplyError) -> String {
        close()
        connection = try open()
        return "\(maskedConninfo), origin \(originName)"
    }

    public func close() {
        connection?.close()
        connection = nil
        resetConnectionState()
    }

    public func begin() throws(ApplyError) {
        try send(.query("BEGIN", []), StatementContext(what: "begin"))
    }

    public func savepoint(_ step: SavepointStep, _ context: StatementContext) throws(ApplyError) {
        try send(.query(step.sql, []), context)
    }

    public func flush() throws(ApplyError) {
        try closeCopyRun()
        try flushRound()
    }

    /// Writes the checkpoint, records the origin's progress and commits.
    ///
    /// The COMMIT goes out only after every earlier result has been read and checked: a row
    /// count is checked here, not by the server, so a COMMIT pipelined behind an UPDATE that
    /// matched no row would commit before the mismatch is seen.
    public func commit(_ checkpoint: CheckpointRow) throws(ApplyError) {
        let context = StatementContext(
            what: "checkpoint", batch: checkpoint.sequence, position: checkpoint.appliedPosition)
        var commitTime: String?
        if let time = checkpoint.lastCommitTime {
            do {
                commitTime = try PostgreSQLValueText.parameter(.timestampWithZone(time))
            } catch {
                throw StatementPlanner.failure(.value, "commit time: \(error.reason)", context)
            }
        }
        try send(
            .query(
                """
                INSERT INTO tandem.apply_checkpoint AS c (stream, sequence, position, commit_time, applied_at)
                VALUES ($1, $2, $3, $4, clock_timestamp())
                ON CONFLICT (stream) DO UPDATE SET sequence = excluded.sequence,
                    position = coalesce(excluded.position, c.position),
                    commit_time = coalesce(excluded.commit_time, c.commit_time),
                    applied_at = excluded.applied_at
                """,
                [
                    checkpoint.stream.rawValue, String(checkpoint.sequence), checkpoint.lastApplied?.storedText,
                    commitTime,
                ]),
            context, .affected(1))
        if case .postgresql(let lsn)? = checkpoint.lastApplied, let commitTime {
            // Shown in pg_replication_origin_status.remote_lsn once this transaction commits.
            try send(
                .query(
                    "SELECT pg_replication_origin_xact_setup($1::pg_lsn, $2::timestamptz)",
                    [lsn.description, commitTime]),
                StatementContext(what: "origin progress", batch: checkpoint.sequence, position: checkpoint.lastApplied))
        }
        try flushRound()
        try send(
            .query("COMMIT", []),
            StatementContext(what: "commit", batch: checkpoint.sequence, position: checkpoint.appliedPosition))
        try flushRound()
    }

    /// Ends the open target transaction without committing and forgets everything that
    /// depended on it. When the connection cannot be brought back to a clean idle state it is
    /// closed (which rolls back too) and the next call reconnects.
    public func rollBack() {
        copyRun = nil
        if let copying {
            // Its answer is read and dropped, so that the connection is idle for the rollback.
            self.copying = nil
            _ = try? connection?.finishCopyIn(copying.sql)
        }
        _ = round.take()
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

    // MARK: Applying

    public func apply(_ changes: [RowChange], _ call: StatementContext) throws(ApplyError) {
        let batch = call.batch
        let position = call.position
        var truncates: [RelationName] = []
        var truncateOptions = (cascade: false, restartIdentity: false)
        func flushTruncates() throws(ApplyError) {
            guard !truncates.isEmpty else { return }
            try truncate(
                truncates, cascade: truncateOptions.cascade, restartIdentity: truncateOptions.restartIdentity,
                batch: batch, position: position)
            truncates.removeAll()
        }
        for change in changes {
            if case .truncate(let cascade, let restartIdentity) = change.kind {
                // Copied rows gathered before the truncate go out before it.
                try closeCopyRun()
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
                try closeCopyRun()
                try advanceSequence(sequence, batch: batch, position: position)
                continue
            }
            try applyRow(change, call)
        }
        try flushTruncates()
        try closeCopyRun()
    }

    private func applyRow(_ change: RowChange, _ call: StatementContext) throws(ApplyError) {
        let context = StatementContext(applying: change, in: call)
        if let parameters = continuesCopyRun(change) {
            try addCopy(parameters, key: change.relation.keyColumnIndices, shape: nil, context)
            return
        }
        let target = try targetTable(change.relation.name, context)
        let planned = try StatementPlanner.planned(context) { () throws(RowPlanError) in
            try StatementPlanner.plan(change, partitioned: target.partitioned)
        }
        if planned.shape.verb == .copy {
            let key = change.relation.keyColumnIndices.map { index in
                planned.shape.assigned.firstIndex(of: change.relation.columns[index].name)
            }
            try addCopy(planned.parameters, key: key, shape: planned.shape, context)
            return
        }
        try closeCopyRun()
        let name = try statementName(for: planned.shape, context)
        try send(.execute(name, planned.parameters), context, planned.expectation)
    }

    // MARK: Runs of copied rows

    /// Copied rows of one shape gathered to be written together: the initial copy arrives as
    /// chunks of rows of one table, and one statement per row would bound the seed by the
    /// round trips of the pipeline rather than by the DR server's load rate.
    private struct CopyRun {
        var shape: StatementShape
        var parameters: [String?] = []
        var contexts: [StatementContext] = []
        /// Hashes of the keys in the run: a key seen twice ends it, since one upsert may not
        /// touch a row twice (and one COPY would refuse the second). A hash collision only ends
        /// a run early.
        var keys: Set<Int> = []
        var bytes = 0
    }

    private var copyRun: CopyRun?

    /// Rows per multi-row upsert: bounded by the protocol's 65 535 parameters per statement,
    /// and kept to a few fixed sizes so that a table's statements stay prepared.
    static func copyRunRows(columns: Int) -> Int { max(1, min(200, 60_000 / max(1, columns))) }

    /// A run is written once it holds this many rows or parameter bytes (a seed chunk is
    /// usually one run).
    static let copyRunLimit = (rows: 10_000, bytes: 8 << 20)
    /// A run goes in as a COPY from this many rows on; a shorter one (a chunk's tail) as upserts.
    static let copyMinimumRows = 16

    /// The parameters of a copied row that continues the open run without planning: a row of
    /// the run's table with every column sent, as the run's first row had (a seed chunk's rows
    /// after its first). One batch describes a table once, so the table's name is its shape.
    /// Nil sends the row through the planner, which also names any value it cannot carry.
    private func continuesCopyRun(_ change: RowChange) -> [String?]? {
        guard case .copy = change.kind, let run = copyRun, run.shape.table == change.relation.name,
            let values = change.new, values.count == run.shape.assigned.count,
            values.count == change.relation.columns.count
        else { return nil }
        var parameters: [String?] = []
        parameters.reserveCapacity(values.count)
        for value in values {
            if case .unchanged = value { return nil }
            guard let text = try? PostgreSQLValueText.parameter(value) else { return nil }
            parameters.append(text)
        }
        return parameters
    }

    /// Adds a copied row to the run of `shape` (nil: the open run's, as `continuesCopyRun`
    /// found); `key` are the positions of the key columns in `parameters`.
    private func addCopy(_ parameters: [String?], key: [Int?], shape: StatementShape?, _ context: StatementContext)
        throws(ApplyError)
    {
        var hasher = Hasher()
        for index in key { hasher.combine(index.flatMap { parameters[$0] }) }
        let key = hasher.finalize()
        let shape = shape ?? copyRun!.shape
        if let run = copyRun, run.keys.contains(key) || run.shape != shape {
            try closeCopyRun()
        }
        if copyRun == nil { copyRun = CopyRun(shape: shape) }
        copyRun!.parameters.append(contentsOf: parameters)
        copyRun!.contexts.append(context)
        copyRun!.keys.insert(key)
        for parameter in parameters { copyRun!.bytes += parameter?.utf8.count ?? 0 }
        if copyRun!.contexts.count >= Self.copyRunLimit.rows || copyRun!.bytes >= Self.copyRunLimit.bytes {
            try closeCopyRun()
        }
    }

    /// Writes the gathered copied rows.
    ///
    /// A run of a chunk's size goes in by `COPY` under a savepoint: the DR server's fastest
    /// load path. It is right whenever no row of the run is at the DR site yet, which is the
    /// rule during a seed (each key range is copied once, into a table that started empty).
    /// The exception is a row the change stream already brought (inserted at the primary into
    /// a range not yet copied): the COPY then fails on the key, the savepoint undoes it alone,
    /// and the run is written again as upserts, which write over what the key finds.
    private func closeCopyRun() throws(ApplyError) {
        guard let run = copyRun else { return }
        copyRun = nil
        if run.contexts.count >= Self.copyMinimumRows {
            try startCopy(run)
        } else {
            try upsert(run)
        }
    }

    /// A COPY sent and not yet answered. Its run is kept until the answer, so that a key already
    /// there can still be written as upserts; nothing else is sent on the connection meanwhile
    /// (`send` and `flushRound` wait for it first), which keeps the source's order, and the
    /// COMMIT comes only after it. The wait is what lets the next rows be decoded and planned
    /// while the DR server loads these.
    private var copying: (run: CopyRun, sql: String, context: StatementContext)?

    private func startCopy(_ run: CopyRun) throws(ApplyError) {
        var context = run.contexts[0]
        context.change = nil
        context.what = "copy of \(run.contexts.count) rows"
        try flushRound()
        let connection = try requireConnection(context)
        do {
            let sql = try StatementPlanner.copySQL(for: run.shape, quote: connection.escapeIdentifier)
            let data = StatementPlanner.copyText(run.parameters, columns: run.shape.parameterCount)
            _ = try connection.exec("SAVEPOINT tandem_copy")
            try connection.startCopyIn(sql, data: data)
            copying = (run, sql, context)
        } catch {
            throw failure(error, context)
        }
    }

    /// Waits for the COPY in flight. A key already there rolls the COPY back (alone, by its
    /// savepoint) and writes its run as upserts instead.
    private func finishCopy() throws(ApplyError) {
        guard let (run, sql, context) = copying else { return }
        copying = nil
        let connection = try requireConnection(context)
        let written: Int?
        do {
            written = try connection.finishCopyIn(sql).commandTuples
            _ = try connection.exec("RELEASE SAVEPOINT tandem_copy")
        } catch  where error.sqlState == "23505" && error.kind == .query {
            do {
                _ = try connection.exec("ROLLBACK TO SAVEPOINT tandem_copy")
                _ = try connection.exec("RELEASE SAVEPOINT tandem_copy")
            } catch {
                throw failure(error, context)
            }
            logger.debug("postgresql apply: \(context.what) met a row already there; written as upserts instead")
            try upsert(run)
            return
        } catch {
            throw failure(error, context)
        }
        guard written == run.contexts.count else {
            throw StatementPlanner.failure(.rowMismatch, "\(context.what) wrote \(written ?? 0) rows", context)
        }
    }

    /// The run as multi-row upserts of a fixed size, the rest one statement per row, so that
    /// only two statements per table are prepared. PostgreSQL counts each upserted row once
    /// (none for `DO NOTHING` on a row that is there).
    private func upsert(_ run: CopyRun) throws(ApplyError) {
        let rows = run.contexts.count
        let width = run.shape.parameterCount
        let piece = Self.copyRunRows(columns: run.shape.assigned.count)
        var first = 0
        if piece > 1 {
            var shape = run.shape
            shape.rows = piece
            while rows - first >= piece {
                var context = run.contexts[first]
                context.change = nil
                context.what = "copy of \(piece) rows"
                let name = try statementName(for: shape, context)
                let parameters = Array(run.parameters[(first * width)..<((first + piece) * width)])
                try send(.execute(name, parameters), context, .affectedAtMost(UInt64(piece)))
                first += piece
            }
        }
        guard first < rows else { return }
        let name = try statementName(for: run.shape, run.contexts[first])
        for index in first..<rows {
            let parameters = Array(run.parameters[(index * width)..<((index + 1) * width)])
            try send(.execute(name, parameters), run.contexts[index], .affectedAtMost(1))
        }
    }

    /// Moves the DR site's sequence forward to at least the source's value, never back.
    /// `setval` is not transactional: a rollback after it leaves the sequence ahead,
    /// which is harmless (ids are only skipped), so it needs no undo. A sequence missing
    /// at the DR site is passed over; `tandem verify` is where such drift is reported.
    private func advanceSequence(
        _ sequence: (schema: String, name: String, lastValue: Int64), batch: UInt64?, position: Position?
    ) throws(ApplyError) {
        let context = StatementContext(
            what: "sequence", batch: batch, position: position,
            table: RelationName(schema: sequence.schema, name: sequence.name))
        try send(
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
        _ tables: [RelationName], cascade: Bool, restartIdentity: Bool, batch: UInt64?, position: Position?
    ) throws(ApplyError) {
        var described: [(name: RelationName, partitioned: Bool)] = []
        for table in tables {
            let context = StatementContext(what: "truncate", batch: batch, position: position, table: table)
            described.append((table, try targetTable(table, context).partitioned))
        }
        let context = StatementContext(
            what: "truncate", batch: batch, position: position, table: tables.count == 1 ? tables[0] : nil)
        let connection = try requireConnection(context)
        let sql: String
        do {
            sql = try StatementPlanner.truncateSQL(
                described, cascade: cascade, restartIdentity: restartIdentity, quote: connection.escapeIdentifier)
        } catch {
            throw failure(error, context)
        }
        try send(.query(sql, []), context)
    }

    // MARK: Statements and the pipeline

    private enum Command {
        case prepare(String, String, Int)
        case execute(String, [String?])
        case query(String, [String?])
    }

    private func requireConnection(_ context: StatementContext) throws(ApplyError) -> PGConnection {
        guard let connection else {
            throw StatementPlanner.failure(.connectionLost, "the DR connection is closed", context)
        }
        return connection
    }

    private func send(_ command: Command, _ context: StatementContext, _ expectation: StatementExpectation = .nothing)
        throws(ApplyError)
    {
        try finishCopy()
        let connection = try requireConnection(context)
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
        round.add(context, expectation)
        if round.count >= Self.roundStatements || pendingBytes >= Self.roundBytes {
            try flushRound()
        }
    }

    /// Ends the pipeline round and checks every command's result (`StatementRound.check`). The
    /// whole round is read first, so the connection is idle again; the driver rolls back.
    private func flushRound() throws(ApplyError) {
        try finishCopy()
        guard let connection, connection.isInPipelineMode else { return }
        let sent = round.take()
        pendingBytes = 0
        var outcomes: [StatementOutcome] = []
        var refusals: [Int: PGError] = [:]
        do {
            try connection.pipelineSync()
            for index in sent.indices {
                switch try connection.nextPipelineOutcome() {
                case .skipped:
                    outcomes.append(.skipped)
                case .failure(let error):
                    refusals[index] = error
                    outcomes.append(.failed)
                case .success(let result):
                    let count = UInt64(result.commandTuples ?? 0)
                    outcomes.append(.done(affected: count, matched: nil, returned: result.rowCount))
                }
            }
            try connection.awaitPipelineSync()
            try connection.exitPipelineMode()
        } catch {
            throw failure(error, sent.first?.context ?? StatementContext(what: "pipeline"))
        }
        switch StatementRound<Never>.check(outcomes, of: sent) {
        case nil:
            return
        case .refused(let index)?:
            throw failure(refusals[index]!, sent[index].context)
        case .rowCount(let index, let count)?:
            throw StatementPlanner.failure(
                .rowMismatch, "\(sent[index].context.what) matched \(count) rows where exactly 1 must exist",
                sent[index].context)
        case .matchedUnknown(let index)?:
            throw StatementPlanner.failure(
                .statement, "internal error: no row count for \(sent[index].context.what)", sent[index].context)
        case .outcomeCount(let got, let expected)?:
            throw StatementPlanner.failure(
                .statement, "internal error: the pipeline returned \(got) outcomes for \(expected) commands",
                sent.first?.context ?? StatementContext(what: "pipeline"))
        }
    }

    /// The prepared statement for `shape`, preparing it (in the current round) on first use.
    private func statementName(for shape: StatementShape, _ context: StatementContext)
        throws(ApplyError) -> String
    {
        if let name = statements[shape] { return name }
        if statements.count >= Self.statementCacheLimit {
            try send(.query("DEALLOCATE ALL", []), StatementContext(what: "statement cache reset"))
            statements.removeAll()
        }
        statementCounter += 1
        let name = "tandem_apply_\(statementCounter)"
        let connection = try requireConnection(context)
        let sql: String
        do {
            sql = try StatementPlanner.sql(for: shape, quote: connection.escapeIdentifier)
        } catch {
            throw failure(error, context)
        }
        try send(.prepare(name, sql, shape.parameterCount), context)
        statements[shape] = name
        return name
    }

    /// What the DR database has for `name`, looked up once per connection. The lookup needs
    /// an idle connection, so it ends the current round first.
    private func targetTable(_ name: RelationName, _ context: StatementContext)
        throws(ApplyError) -> TargetTable
    {
        if let known = targets[name] { return known }
        try flushRound()
        let connection = try requireConnection(context)
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
            throw StatementPlanner.failure(
                .statement, "relation \(name) does not exist at the DR database", context,
                hint: "Create the table at the DR site (seed it from the source) before applying.")
        }
        let table = TargetTable(partitioned: kind == "p")
        targets[name] = table
        return table
    }

    // MARK: Errors and recovery

    private func failure(_ error: PGError, _ context: StatementContext) -> ApplyError {
        var result = StatementPlanner.failure(
            error.kind == .connectionLost || error.kind == .closed ? .connectionLost : .statement,
            "\(context.what) failed", context)
        if error.kind == .invalidArgument { result.kind = .value }
        result.server = Self.server(error)
        return result
    }

    /// libpq's error as the shared shape, with the remedy for its SQLSTATE.
    static func server(_ error: PGError) -> ServerError {
        ServerError(
            code: error.sqlState, sqlState: error.sqlState, message: error.message, detail: error.detail,
            hint: error.hint, remedy: remedy(sqlState: error.sqlState),
            connectionLost: error.kind == .connectionLost || error.kind == .closed)
    }

    /// What an operator does about a statement the DR database refused, by SQLSTATE.
    static func remedy(sqlState: String?) -> String? {
        switch sqlState ?? "" {
        case "42P01":
            return "Create the table at the DR site (seed it from the source) before applying."
        case "42703":
            return "The DR table lacks a column the source sends; align the DR table definition with the source."
        case "42501":
            return "The apply user lacks a privilege at the DR database; grant it (or apply as a superuser)."
        case "42804", "42883":
            return "A DR column's type differs from the source's; align the DR table definition with the source."
        case let state where state.hasPrefix("23"):
            return
                "The DR copy has diverged from the source (a conflicting row); re-seed this table or remove the conflicting row, then restart the applier."
        case let state where state.hasPrefix("22"):
            return
                "A DR column's type does not accept the source's value; align the DR table definition with the source."
        default:
            return nil
        }
    }

    private func resetConnectionState() {
        copyRun = nil
        copying = nil
        _ = round.take()
        pendingBytes = 0
        statements.removeAll()
        targets.removeAll()
    }

    // MARK: Connection and checkpoint

    private func open() throws(ApplyError) -> PGConnection {
        let connection: PGConnection
        do {
            connection = try PGConnection(conninfo: conninfo)
        } catch {
            throw ApplyError(.postgresql, .connection, "cannot connect to the DR database", server: Self.server(error))
        }
        func step(_ what: String, _ body: () throws(PGError) -> Void) throws(ApplyError) {
            do {
                try body()
            } catch {
                connection.close()
                throw ApplyError(
                    .postgresql, error.kind == .connectionLost ? .connectionLost : .connection, what,
                    server: Self.server(error),
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
            } catch  where error.sqlState == "55006" {
                if ContinuousClock.now < deadline {
                    usleep(100_000)
                    continue
                }
                connection.close()
                throw ApplyError(
                    .postgresql, .originBusy,
                    "the replication origin \(originName) is in use by another session (another applier for stream \(stream)?)",
                    server: Self.server(error),
                    hint:
                        "Another applier session holds this stream's replication origin; stop it (see pg_stat_activity) before starting this one."
                )
            } catch {
                connection.close()
                throw ApplyError(
                    .postgresql, error.kind == .connectionLost ? .connectionLost : .connection,
                    "cannot bind the session to the replication origin \(originName)", server: Self.server(error))
            }
        }
        return connection
    }

    public func readCheckpoint(inTransaction: Bool) throws(ApplyError) -> SinkCheckpoint {
        let connection = try requireConnection(StatementContext(what: "checkpoint read"))
        // The read runs outside the pipeline: end the current round first.
        try flushRound()
        let result: PGResult
        do {
            result = try connection.execParams(
                "SELECT sequence, position FROM tandem.apply_checkpoint WHERE stream = $1", [stream.rawValue])
        } catch {
            throw ApplyError(
                .postgresql, error.kind == .connectionLost ? .connectionLost : .checkpoint,
                "cannot read the checkpoint",
                server: Self.server(error))
        }
        return try checkpoint(
            stored: result.rowCount > 0 ? (result.value(row: 0, column: 0), result.value(row: 0, column: 1)) : nil)
    }
}
