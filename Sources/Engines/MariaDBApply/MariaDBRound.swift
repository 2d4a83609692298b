import ApplyKit
import Logging
import MySQLClient
import TandemCore

/// The connection of an apply session, shared by reference between the session, its round and
/// the escaping closure of the round's `SQLWriter`: all must reach the current connection (it
/// is replaced on reconnect) without the closure retaining the session.
final class MariaDBConnectionLink {
    var connection: MySQLConnection?
}

/// The round I/O of a MariaDB apply session: statements written into one multi-statement
/// `COM_QUERY`, consecutive inserts gathered into multi-row INSERTs, and each statement's outcome
/// checked against its expectation (`StatementRound.check`).
///
/// One round may be in flight while the next is written (the DR server's one session is what
/// bounds apply, and it would otherwise idle between rounds); its outcomes are read and checked
/// before anything after it is sent, so nothing runs past a failure. Values are escaped or hex
/// literals and identifiers backtick-quoted, which is what makes multi-statements safe here.
struct MariaDBRound {
    typealias Statement = StatementRound<InsertRun>.Statement

    /// Statements per round, bytes per round, and rows / bytes per multi-row INSERT: bounds on
    /// the SQL held in memory and sent in one packet (the round is further capped by the DR
    /// server's `max_allowed_packet`).
    static let roundStatements = 500
    static let roundBytes = 4 << 20
    static let insertRows = 1000
    static let insertBytes = 1 << 20

    /// Inserts gathered for one multi-row INSERT; kept with the sent statement, so that a
    /// refused INSERT can be taken apart to find its row.
    struct InsertRun {
        var table: RelationName
        var columns: [String]
        /// Rows of the initial copy: written over what their key finds (`ON DUPLICATE KEY
        /// UPDATE`), so a run is never mixed with plain inserts.
        var upsert = false
        var rows: [[MariaDBLiteral]] = []
        var contexts: [StatementContext] = []
        var bytes = 0
    }

    let link: MariaDBConnectionLink
    let logger: Logger
    /// The SQL of the current round, not yet sent, and what each statement in it must report.
    private(set) var sql: SQLWriter
    private var pending: [Statement] = []
    /// The round sent and not yet read (see `flush(wait:)`).
    private var inFlight: [Statement]?
    /// Inserts gathered for one multi-row INSERT, not yet written into the round.
    private var insertRun: InsertRun?
    /// The largest round: the server's `max_allowed_packet` less room for the protocol.
    var packetLimit = 16 << 20

    init(link: MariaDBConnectionLink, logger: Logger) {
        self.link = link
        self.logger = logger
        self.sql = SQLWriter { (text: String, bytes: inout [UInt8]) throws(ApplyError) in
            guard let connection = link.connection else {
                throw ApplyError(.mariadb, .connectionLost, "the DR connection is closed")
            }
            do throws(MySQLError) {
                try connection.appendEscaped(text, to: &bytes)
            } catch {
                throw ApplyError(
                    .mariadb, error.kind == .closed ? .connectionLost : .value, "cannot escape a text value",
                    server: MariaDBErrors.server(error))
            }
        }
    }

    /// Forgets everything not yet settled. Returns whether a round was in flight: its outcomes
    /// must still be read before the connection takes another command.
    @discardableResult
    mutating func discard() -> Bool {
        let roundInFlight = inFlight != nil
        inFlight = nil
        pending.removeAll()
        sql.reset()
        insertRun = nil
        return roundInFlight
    }

    func requireConnection(_ context: StatementContext) throws(ApplyError) -> MySQLConnection {
        guard let connection = link.connection, connection.isOpen else {
            throw MariaDBStatementPlanner.failure(.connectionLost, "the DR connection is closed", context)
        }
        return connection
    }

    /// A connection-level failure: the connection is dropped (the server rolls back whatever it
    /// held), and the next call reconnects.
    func lost(_ error: MySQLError, _ context: StatementContext) -> ApplyError {
        link.connection?.close()
        link.connection = nil
        return MariaDBErrors.failure(error, context)
    }

    /// Adds an insert to the current run, or starts a new run when the table or the columns
    /// differ or the run is full.
    mutating func addInsert(_ row: PlannedRow, _ context: StatementContext) throws(ApplyError) {
        var size = 4
        for value in row.values {
            switch value {
            case .plain(let text): size += text.utf8.count + 2
            case .string(let text): size += text.utf8.count * 2 + 4
            case .binary(let bytes): size += bytes.count * 2 + 5
            }
        }
        let upsert = row.verb == .copy
        if let run = insertRun,
            run.table != row.table || run.columns != row.assigned || run.upsert != upsert
                || run.rows.count >= Self.insertRows || run.bytes + size > Self.insertBytes
        {
            try closeInsertRun()
        }
        if insertRun == nil { insertRun = InsertRun(table: row.table, columns: row.assigned, upsert: upsert) }
        insertRun?.rows.append(row.values)
        insertRun?.contexts.append(context)
        insertRun?.bytes += size
    }

    /// Writes the gathered inserts into the round as one statement.
    mutating func closeInsertRun() throws(ApplyError) {
        guard let run = insertRun else { return }
        insertRun = nil
        var context = run.contexts[0]
        if run.rows.count > 1 { context.change = nil }
        // An upserted row counts 1 inserted, 2 written over, 0 already equal.
        let expectation: StatementExpectation =
            run.upsert ? .affectedAtMost(2 * UInt64(run.rows.count)) : .affected(UInt64(run.rows.count))
        try enqueue(context, expectation, insert: run) { sql throws(ApplyError) in
            try MariaDBStatementPlanner.writeInsert(
                run.table, columns: run.columns, rows: run.rows, upsert: run.upsert, into: &sql)
        }
    }

    /// Writes the checkpoint and commits.
    ///
    /// The COMMIT goes out only after every earlier outcome has been read and checked: row
    /// counts are checked here, not by the server, so a COMMIT sent in the same round as an
    /// Appends one statement to the round (ending the insert run before it, unless it is that
    /// run), and sends the round when it is full.
    mutating func enqueue(
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
            throw MariaDBErrors.located(error, context)
        }
        let size = sql.count - bodyStart
        let limit = min(Self.roundBytes, packetLimit)
        if size > packetLimit {
            _ = sql.cut(from: start)
            throw MariaDBStatementPlanner.failure(
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
            try flush(wait: false)
            sql.bytes.append(contentsOf: body)
        }
        pending.append(Statement(context: context, expectation: expectation, tag: insert))
        if pending.count >= Self.roundStatements || sql.count >= limit {
            try flush(wait: false)
        }
    }

    /// Sends the round. With `wait`, also reads and checks its outcomes before returning;
    /// without, it stays in flight while the caller prepares the next round (the server works
    /// while this side plans and escapes: apply is bound by the DR server's one session, and
    /// it would otherwise idle between rounds). Either way the round before it is settled
    /// first, so at most one round is in flight and a failure is found before anything after
    /// it is sent.
    mutating func flush(wait: Bool = true) throws(ApplyError) {
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
    mutating func settle() throws(ApplyError) {
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
            throw MariaDBStatementPlanner.failure(
                .statement,
                "the server did not report how many rows the update matched (info: \(outcome.outcomes[index].info ?? "none"))",
                statements[index].context)
        case .rowCount(let index, let count)?:
            if let run = statements[index].tag {
                throw MariaDBStatementPlanner.failure(
                    .statement, "the insert of \(run.rows.count) rows inserted \(count)", statements[index].context)
            }
            throw MariaDBStatementPlanner.failure(
                .rowMismatch, "\(statements[index].context.what) matched \(count) rows where exactly 1 must exist",
                statements[index].context)
        case .outcomeCount(let got, let expected)?:
            if let error = outcome.failure {
                throw MariaDBErrors.failure(error, statements[statements.count - 1].context)
            }
            throw MariaDBErrors.internalError("the round returned \(got) outcomes for \(expected) statements")
        }
    }

    /// The error for a failed statement. For a multi-row INSERT, its rows are sent again one per
    /// statement to find the row the server refuses: the failed statement was rolled back on its
    /// own (InnoDB undoes a failed statement), so the rows before the culprit insert as before
    /// and the culprit fails the same way. Not for deadlocks, which roll back the whole
    /// transaction, nor for a lost connection.
    private func pinpoint(_ statement: Statement, _ error: MySQLError, _ connection: MySQLConnection)
        -> ApplyError
    {
        let original = MariaDBErrors.failure(error, statement.context)
        guard let run = statement.tag, run.rows.count > 1, error.kind == .query, error.code != 1213 else {
            return original
        }
        var probe = sql.fresh()
        do {
            for (index, row) in run.rows.enumerated() {
                if index > 0 { probe.raw(";") }
                try MariaDBStatementPlanner.writeInsert(
                    run.table, columns: run.columns, rows: [row], upsert: run.upsert, into: &probe)
            }
            let outcome = try connection.executeMultiple(probe.bytes, context: "pinpoint a failed insert")
            if let again = outcome.failure, outcome.outcomes.count < run.contexts.count {
                return MariaDBErrors.failure(again, run.contexts[outcome.outcomes.count])
            }
        } catch {
            logger.warning("mariadb apply: could not find the failing row of a multi-row insert: \(error)")
        }
        return original
    }
}
