import CaptureKit
import Dispatch
import Foundation
import Logging
import PGClient
import PostgreSQLEngine
import TandemCodec
import TandemCore

/// The shipper's capture from a PostgreSQL primary: a `pgoutput` logical slot read on
/// a thread of its own, decoded, batched and encoded, handed to the shipper through
/// `next()`.
///
/// ## Delivery and acknowledgement
/// The slot delivers at least once: after any reconnect or restart it resends
/// everything after its `confirmed_flush_lsn`. Batches carry the source commit
/// positions, and the applier skips transactions at or below its checkpoint, so a
/// resent transaction under a new batch number is applied once.
///
/// The slot is confirmed (`flush` in the status update) only up to the end of the last
/// transaction completed by a batch the applier reported durable (`acknowledge`), see
/// `SlotFeedback`. Nothing the applier has not fsynced is ever confirmed.
///
/// ## Memory
/// Finished batches wait in a queue bounded by `maximumReadyBytes`; past it the thread
/// stops reading the socket and the server holds the WAL. Batches are cut at
/// `[batch] max_bytes`, large transactions into chunks. Transactions the server streams
/// before commit (`streaming 'on'`, past `logical_decoding_work_mem`) are written to spill
/// files (`PgFileStreamStore`) in the spool directory until their commit. When to read,
/// wait, close a batch or write a heartbeat is `CapturePacing`'s rule, shared with MariaDB.
public final class PostgreSQLSource: BatchSource, @unchecked Sendable {
    // @unchecked: the shared state below is guarded by `lock`; the worker owns the rest.
    public let stream: StreamID
    let settings: PostgreSQLCaptureSettings
    let logger: Logger

    /// The ready queue and the hand-off bookkeeping shared with every engine's capture.
    fileprivate let handoff = CaptureHandoff()
    private let lock = NSLock()
    private var acknowledgedLSN = LSN.zero
    private var worker: CaptureWorker?

    public init(settings: PostgreSQLCaptureSettings, logger: Logger) {
        self.stream = settings.stream
        self.settings = settings
        self.logger = logger
    }

    deinit { worker?.stopAndWait() }

    public func restart(at sequence: UInt64) throws {
        worker?.stopAndWait()
        handoff.restart(at: sequence)
        if let failure = handoff.failed { throw failure }
        let next = CaptureWorker(source: self, firstSequence: sequence)
        worker = next
        next.start()
    }

    public func next() throws -> SourceBatch? {
        try handoff.next()
    }

    public func acknowledge(durableThrough position: Position, sequence: UInt64) throws {
        guard case .postgresql(let lsn) = position else {
            throw CaptureError(
                .protocolViolation, "acknowledged a non-PostgreSQL position \(position)",
                hint: "This is a bug in the shipper; report it.")
        }
        handoff.acknowledged(sequence)
        lock.withLock { acknowledgedLSN = max(acknowledgedLSN, lsn) }
    }

    /// Stops the capture thread (the agent is shutting down).
    public func stop() { worker?.stopAndWait() }

    // MARK: Worker interface

    fileprivate var confirmedLSN: LSN { lock.withLock { acknowledgedLSN } }
}

/// The capture session: connection, decoding, batching, status updates, on a `CaptureThread`
/// that reconnects after connection failures and stops for good on anything that needs the
/// operator.
private final class CaptureWorker: @unchecked Sendable {
    // @unchecked: `numbering` is touched by the capture thread only.
    private unowned let source: PostgreSQLSource
    private var settings: PostgreSQLCaptureSettings { source.settings }
    private var logger: Logger { source.logger }
    private let thread = CaptureThread()
    private var numbering: BatchNumbering

    init(source: PostgreSQLSource, firstSequence: UInt64) {
        self.source = source
        self.numbering = BatchNumbering(stream: source.stream, firstSequence: firstSequence)
    }

    func start() {
        thread.start(logger: logger, handoff: source.handoff) { [self] () throws(CaptureError) in try session() }
    }

    func stopAndWait() { thread.stopAndWait() }

    private var isStopping: Bool { thread.isStopping }

    static let heartbeatPrefix = "tandem.heartbeat"

    /// The heartbeat: a transactional logical message, so it commits like any transaction
    /// (lag stays measurable and the slot keeps moving on an idle primary), carrying the
    /// current value of every sequence (`SequenceValues`).
    static let heartbeatSQL = """
        SELECT pg_logical_emit_message(true, '\(heartbeatPrefix)', coalesce((
          SELECT json_agg(json_build_array(schemaname, sequencename, last_value))::text
          FROM pg_sequences WHERE last_value IS NOT NULL AND schemaname <> 'tandem'), '[]'))
        """

    /// The heartbeat's sequence list as changes on `SequenceValues.relation`; anything
    /// unreadable is left out (a heartbeat must never stop capture).
    static func sequenceChanges(_ content: [UInt8]) -> [RowChange] {
        guard let list = try? JSONSerialization.jsonObject(with: Data(content)) as? [[Any]] else { return [] }
        return list.compactMap { entry in
            guard entry.count == 3, let schema = entry[0] as? String, let name = entry[1] as? String,
                let value = (entry[2] as? NSNumber)?.int64Value
            else { return nil }
            return SequenceValues.change(schema: schema, name: name, lastValue: value)
        }
    }

    /// Changes per decoded piece of a large transaction: bounds what the decoder holds.
    static let chunkChanges = 8192

    private func session() throws(CaptureError) {
        let control: PGConnection
        do { control = try PGConnection(conninfo: settings.conninfo) } catch {
            throw CaptureError.database(error, doing: "connecting to the primary")
        }
        defer { control.close() }
        let start = try SourceSetup(settings: settings).prepare(on: control)
        let replication = try ReplicationStream(conninfo: settings.conninfo)
        defer { replication.close() }
        if let recorded = try CaptureState.load(directory: settings.stateDirectory, slot: settings.slotName) {
            if let problem = recorded.mismatch(with: replication.identity) {
                throw CaptureError(
                    .reseedRequired, problem,
                    hint:
                        "The DR copy no longer matches this primary's history: re-seed the DR site, then remove \(CaptureState.path(directory: settings.stateDirectory, slot: settings.slotName))."
                )
            }
        } else {
            try replication.identity.save(directory: settings.stateDirectory, slot: settings.slotName)
        }
        try replication.start(slot: settings.slotName, publication: settings.publicationName)
        logger.info(
            "capture: streaming slot \(settings.slotName) (publication \(settings.publicationName)) from \(start), next batch \(numbering.nextSequence)"
        )

        let encoder: BatchEncoder
        do { encoder = try BatchEncoder(level: settings.compressionLevel) } catch {
            throw CaptureError(.sourceSetup, "cannot set up the batch encoder: \(error.description)", hint: error.hint)
        }
        let spill: PgFileStreamStore
        do { spill = try PgFileStreamStore(directory: settings.stateDirectory + "/capture-spill") } catch {
            throw CaptureError(
                .sourceSetup, "cannot prepare the spill directory: \(error)",
                hint: "Check [spool] directory, its permissions and free space.")
        }
        var decoder = PgOutputDecoder(chunkChanges: Self.chunkChanges, streamStore: spill)
        var batcher = TransactionBatcher(limits: settings.batching)
        var feedback = SlotFeedback(start: start)
        numbering.startingAt(.postgresql(start))
        var lastKeepalive: LSN?

        func emit(_ closed: TransactionBatcher.Closed) throws(CaptureError) {
            let batch: SourceBatch
            do { batch = try numbering.seal(closed, with: encoder) } catch {
                throw CaptureError(
                    .protocolViolation, "cannot encode batch \(numbering.nextSequence): \(error.description)",
                    hint: error.hint)
            }
            source.handoff.deliver(batch)
        }

        func sendStatus(replyRequested: Bool) throws(CaptureError) {
            feedback.confirm(source.confirmedLSN)
            let clock = Int64(Date().timeIntervalSince1970 * 1_000_000) - ReplicationMessage.postgresEpochOffset
            if let status = feedback.statusDue(
                now: DispatchTime.now().uptimeNanoseconds, clock: clock,
                replyRequested: replyRequested)
            {
                try replication.send(status)
            }
        }

        /// The memory bound: while the shipper has not taken enough ready batches, wait
        /// (also in the middle of a large transaction), still answering the server so it
        /// does not time the connection out.
        func waitForRoom() throws(CaptureError) {
            while source.handoff.readyBytes >= settings.maximumReadyBytes {
                if isStopping { throw CaptureError(.connection, "capture is stopping", hint: "") }
                try sendStatus(replyRequested: false)
                usleep(5_000)
            }
        }

        /// One decoded event: filtered, batched, and every batch it closes shipped.
        func take(_ event: PgOutputEvent) throws(CaptureError) {
            var transaction: Transaction
            let end: Position?
            switch event {
            case .transaction(let whole, let endLSN, let messages):
                (transaction, end) = (whole, .postgresql(endLSN))
                for message in messages where message.prefix == Self.heartbeatPrefix {
                    transaction.changes += Self.sequenceChanges(message.content)
                }
            case .chunk(let piece): (transaction, end) = (piece, nil)
            case .message: return
            }
            if let origin = transaction.origin, origin.hasPrefix(tandemOriginPrefix) { return }
            for closed in batcher.add(transaction, end: end, now: DispatchTime.now().uptimeNanoseconds) {
                try waitForRoom()
                try emit(closed)
            }
        }

        var pacing = CapturePacing(
            batchDelay: settings.batching.maximumDelayNanoseconds,
            heartbeatInterval: settings.heartbeatIntervalNanoseconds,
            maximumReadyBytes: settings.maximumReadyBytes, now: DispatchTime.now().uptimeNanoseconds)
        while !isStopping {
            var replyRequested = false
            let dueAt = batcher.dueAt
            let observed = CapturePacing.Observation(
                now: DispatchTime.now().uptimeNanoseconds, batchDueAt: dueAt,
                inputPending: dueAt != nil && replication.hasPendingInput, readyBytes: source.handoff.readyBytes)
            switch pacing.next(observed) {
            case .closeBatch:
                if let closed = batcher.flush() { try emit(closed) }
            case .heartbeat:
                do {
                    _ = try control.exec(Self.heartbeatSQL)
                } catch {
                    throw CaptureError.database(error, doing: "writing the heartbeat")
                }
            case .wait(let nanoseconds):
                usleep(UInt32(nanoseconds / 1_000))
            case .read(let timeout):
                let messages = try replication.read(timeoutMilliseconds: Int32(min(timeout / 1_000_000, 1_000)))
                for message in messages {
                    switch message {
                    case .xlogData(let walStart, _, _, let data):
                        feedback.receivedThrough(walStart)
                        do {
                            try decoder.feed(data) { event in try take(event) }
                        } catch let error as CaptureError {
                            throw error
                        } catch {
                            throw CaptureError(
                                .protocolViolation, "undecodable pgoutput message at \(walStart): \(error)",
                                hint: "Capture stops so nothing is skipped; report it with the primary's version.")
                        }
                    case .keepalive(let walEnd, _, let reply):
                        lastKeepalive = walEnd
                        replyRequested = replyRequested || reply
                        feedback.receivedThrough(walEnd)
                    }
                }
            }
            if let walEnd = lastKeepalive, batcher.isEmpty, !decoder.isInTransaction,
                decoder.bufferedTransactionIDs.isEmpty, source.handoff.allDurable
            {
                feedback.confirmIdle(walEnd: walEnd)
            }
            // Status updates go out whatever the step was, so waiting never times the slot out.
            try sendStatus(replyRequested: replyRequested)
        }
    }
}
