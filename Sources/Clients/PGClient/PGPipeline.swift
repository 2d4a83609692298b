import CLibPQ

/// What became of one command sent in pipeline mode.
public enum PGPipelineOutcome: Sendable {
    /// The server ran the command; the result is never an error result.
    case success(PGResult)
    /// The server rejected the command. Everything after it up to the next sync is `skipped`,
    /// and an explicit transaction the command ran in is now aborted.
    case failure(PGError)
    /// Not run, because an earlier command since the last sync failed (libpq's
    /// `PGRES_PIPELINE_ABORTED`).
    case skipped
}

/// libpq pipeline mode: many extended-protocol commands on the wire before the first result is
/// read, so a stream of small statements costs one round trip per sync rather than one each.
///
/// The protocol the caller follows:
/// 1. `enterPipelineMode()` while the connection is idle;
/// 2. any number of `sendPrepare` / `sendPrepared` / `sendQuery` calls;
/// 3. `pipelineSync()`, then exactly one `nextPipelineOutcome()` per command sent, in order,
///    then `awaitPipelineSync()`;
/// 4. either more rounds (back to 2) or `exitPipelineMode()`.
///
/// Rounds should be bounded (a few thousand commands): results queue up on the server and in
/// libpq until they are read. libpq itself keeps reading while its writes would block, so an
/// unread result backlog costs memory, never a deadlock, but only bounded rounds bound it.
///
/// A sync does not end an explicit transaction: a `BEGIN` sent in one round stays open across
/// later rounds until a `COMMIT` or `ROLLBACK` is sent. A failure inside an explicit transaction
/// leaves it aborted (only `ROLLBACK` is accepted after the sync).
///
/// Any `PGError` of kind `.connectionLost` thrown here leaves the connection unusable; the
/// caller must replace it. Any other thrown error leaves the pipeline in an unknown state as
/// well; `abandonPipeline()` tries to bring the connection back to idle.
extension PGConnection {
    /// Whether the connection is in pipeline mode (on, or aborted until the next sync).
    public var isInPipelineMode: Bool { isOpen && PQpipelineStatus(handle) != PQ_PIPELINE_OFF }

    /// Whether the session is inside a transaction block (open, or failed and awaiting
    /// ROLLBACK), as libpq last heard from the server. False when closed or unknown.
    public var isInTransaction: Bool {
        guard isOpen else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    public func enterPipelineMode() throws(PGError) {
        try requireOpen()
        guard PQenterPipelineMode(handle) == 1 else { throw sendFailure("entering pipeline mode") }
    }

    /// Leaves pipeline mode. Only possible once every result has been read.
    public func exitPipelineMode() throws(PGError) {
        try requireOpen()
        guard PQexitPipelineMode(handle) == 1 else { throw sendFailure("leaving pipeline mode") }
    }

    /// Queues a named prepared statement (`Parse`). Parameter types are left to the server.
    public func sendPrepare(name: String, sql: String, parameterCount: Int) throws(PGError) {
        try requireOpen()
        guard PQsendPrepare(handle, name, sql, Int32(parameterCount), nil) == 1 else {
            throw sendFailure(sql)
        }
    }

    /// Queues an execution of a named prepared statement with text-format parameters (nil is
    /// SQL NULL). A parameter containing a NUL byte is refused before anything is queued,
    /// because libpq would silently cut it there.
    public func sendPrepared(name: String, parameters: [String?]) throws(PGError) {
        try requireOpen()
        try refuseNUL(parameters, context: name)
        let count = Int32(parameters.count)
        let sent = withParameterPointers(parameters) { values in
            PQsendQueryPrepared(handle, name, count, values, nil, nil, 0)
        }
        guard sent == 1 else { throw sendFailure("execute " + name) }
    }

    /// Queues one statement through the extended protocol (the simple protocol is not allowed
    /// in pipeline mode), with text-format parameters as in `sendPrepared`.
    public func sendQuery(_ sql: String, parameters: [String?] = []) throws(PGError) {
        try requireOpen()
        try refuseNUL(parameters, context: sql)
        let count = Int32(parameters.count)
        let sent = withParameterPointers(parameters) { values in
            PQsendQueryParams(handle, sql, count, nil, values, nil, nil, 0)
        }
        guard sent == 1 else { throw sendFailure(sql) }
    }

    /// Ends the round: sends a Sync and flushes everything queued.
    public func pipelineSync() throws(PGError) {
        try requireOpen()
        guard PQpipelineSync(handle) == 1 else { throw sendFailure("pipeline sync") }
    }

    /// Reads the outcome of the next command sent, blocking until it is there. A lost
    /// connection is thrown (kind `.connectionLost`), never returned as a `.failure`.
    public func nextPipelineOutcome() throws(PGError) -> PGPipelineOutcome {
        try requireOpen()
        guard let raw = PQgetResult(handle) else {
            throw lostOrOutOfStep("no result where a command's result was expected")
        }
        let result = PGResult(owning: raw)
        switch result.status {
        case .pipelineSync:
            throw lostOrOutOfStep("a pipeline sync where a command's result was expected")
        case .pipelineAborted:
            try endOfCommand()
            return .skipped
        case .fatalError, .badResponse:
            let error = Self.pipelineError(raw, connectionOK: PQstatus(handle) == CONNECTION_OK)
            if error.kind == .connectionLost { throw error }
            try endOfCommand()
            return .failure(error)
        default:
            try endOfCommand()
            return .success(result)
        }
    }

    /// Reads the result of the sync that ended the round.
    public func awaitPipelineSync() throws(PGError) {
        try requireOpen()
        guard let raw = PQgetResult(handle) else { throw lostOrOutOfStep("no result where a sync was expected") }
        let result = PGResult(owning: raw)
        guard result.status == .pipelineSync else {
            throw lostOrOutOfStep("result \(result.status) where a sync was expected")
        }
    }

    /// Brings a connection whose pipeline round was interrupted (by an error thrown on the
    /// caller's side, with commands possibly still unread) back to idle, out of pipeline mode.
    /// Returns false when that is not possible; the connection should then be closed.
    public func abandonPipeline() -> Bool {
        guard isHealthy else { return false }
        guard PQpipelineStatus(handle) != PQ_PIPELINE_OFF else { return true }
        // A sync of our own ends whatever was queued; everything up to it is read and dropped.
        guard PQpipelineSync(handle) == 1 else { return false }
        var syncsOutstanding = 1
        var nullsInARow = 0
        while syncsOutstanding > 0 {
            guard let raw = PQgetResult(handle) else {
                // One NULL ends each command; two in a row mean libpq has nothing more to give.
                nullsInARow += 1
                if nullsInARow > 1 || PQstatus(handle) != CONNECTION_OK { return false }
                continue
            }
            nullsInARow = 0
            if PQresultStatus(raw) == PGRES_PIPELINE_SYNC { syncsOutstanding -= 1 }
            PQclear(raw)
            if PQstatus(handle) != CONNECTION_OK { return false }
        }
        return PQexitPipelineMode(handle) == 1
    }

    // MARK: - Internals

    private func requireOpen() throws(PGError) {
        guard isOpen else {
            throw PGError(kind: .closed, message: "the connection was closed by close()")
        }
    }

    /// Each command's results end with a NULL from `PQgetResult`; anything else means the
    /// caller and libpq disagree about which command is which.
    private func endOfCommand() throws(PGError) {
        if let extra = PQgetResult(handle) {
            PQclear(extra)
            throw lostOrOutOfStep("more than one result for a single command")
        }
    }

    private func lostOrOutOfStep(_ what: String) -> PGError {
        if PQstatus(handle) != CONNECTION_OK {
            let message = Self.trimmedMessage(PQerrorMessage(handle))
            return PGError(kind: .connectionLost, message: message.isEmpty ? "connection lost" : message)
        }
        return PGError(kind: .query, message: "pipeline out of step: " + what)
    }

    private func sendFailure(_ context: String) -> PGError {
        let message = Self.trimmedMessage(PQerrorMessage(handle))
        return PGError(
            kind: PQstatus(handle) == CONNECTION_OK ? .query : .connectionLost,
            message: message.isEmpty ? "libpq refused to send" : message, context: context)
    }

    private func refuseNUL(_ parameters: [String?], context: String) throws(PGError) {
        if let bad = parameters.firstIndex(where: { $0?.utf8.contains(0) ?? false }) {
            throw PGError(
                kind: .invalidArgument, message: "parameter $\(bad + 1) contains a NUL byte", context: context)
        }
    }

    private static func pipelineError(_ raw: OpaquePointer, connectionOK: Bool) -> PGError {
        func field(_ code: Unicode.Scalar) -> String? {
            guard let value = PQresultErrorField(raw, Int32(code.value)) else { return nil }
            let text = trimmedMessage(value)
            return text.isEmpty ? nil : text
        }
        let primary = field("M") ?? trimmedMessage(PQresultErrorMessage(raw))
        return PGError(
            kind: connectionOK ? .query : .connectionLost,
            message: primary.isEmpty ? "statement failed" : primary,
            sqlState: field("C"), detail: field("D"), hint: field("H"))
    }
}

/// Lays all parameters out in one buffer, NUL-terminated, and calls `body` with libpq's array
/// of pointers into it (NULL for SQL NULL): one allocation per statement rather than one per
/// value. The pointers are valid only during the call; libpq copies the values when queueing.
private func withParameterPointers<R>(
    _ parameters: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R
) -> R {
    guard !parameters.isEmpty else { return body(nil) }
    var total = 0
    for parameter in parameters { total += (parameter?.utf8.count ?? 0) + 1 }
    var storage: [UInt8] = []
    storage.reserveCapacity(total)
    var offsets: [Int] = []
    offsets.reserveCapacity(parameters.count)
    for parameter in parameters {
        guard let parameter else {
            offsets.append(-1)
            continue
        }
        offsets.append(storage.count)
        storage.append(contentsOf: parameter.utf8)
        storage.append(0)
    }
    return storage.withUnsafeBufferPointer { buffer in
        let base = buffer.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }
        let pointers: [UnsafePointer<CChar>?] = offsets.map { offset in
            offset < 0 ? nil : base.map { $0 + offset }
        }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
