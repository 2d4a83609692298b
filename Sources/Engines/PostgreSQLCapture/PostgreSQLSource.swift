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
/// files (`PgFileStreamStore`) in the spool directory until their commit. Batching, pacing and
/// backpressure are the shared `CaptureDriver`'s; this engine opens sessions and decodes.
public final class PostgreSQLSource: BatchSource, CaptureEngine, @unchecked Sendable {
    // @unchecked: `acknowledgedLSN` is guarded by `lock`; the runner is used from the shipper's loop.
    public let stream: StreamID
    let settings: PostgreSQLCaptureSettings
    public let logger: Logger
    private let lock = NSLock()
    private var acknowledgedLSN = LSN.zero
    private let runner = CaptureRunner<PostgreSQLSource>()

    public var copyFeed: CopyFeed? { runner.handoff.copyFeed }

    public init(settings: PostgreSQLCaptureSettings, logger: Logger) {
        self.stream = settings.stream
        self.settings = settings
        self.logger = logger
    }

    deinit { runner.stop() }

    public func restart(at sequence: UInt64) throws { try runner.restart(at: sequence, engine: self) }

    public func next() throws -> SourceBatch? { try runner.next() }

    public func acknowledge(durableThrough position: Position, sequence: UInt64) throws {
        guard case .postgresql(let lsn) = position else {
            throw CaptureError.foreignPosition(position, engine: .postgresql)
        }
        runner.handoff.acknowledged(sequence)
        lock.withLock { acknowledgedLSN = max(acknowledgedLSN, lsn) }
    }

    /// Stops the capture thread (the agent is shutting down).
    public func stop() { runner.stop() }

    public var caughtUp: CaughtUp? { runner.caughtUp }
    public var sourceLog: SourceLogProgress? { runner.sourceLog }

    /// What the slot may be confirmed up to: the end of what the applier reported durable.
    fileprivate var confirmedLSN: LSN { lock.withLock { acknowledgedLSN } }

    // MARK: CaptureEngine

    public var driverSettings: CaptureDriver.Settings {
        CaptureDriver.Settings(
            engine: .postgresql, stream: stream, batching: settings.batching,
            compressionLevel: settings.compressionLevel,
            heartbeatIntervalNanoseconds: settings.heartbeatIntervalNanoseconds,
            maximumReadyBytes: settings.maximumReadyBytes)
    }

    /// Checks the primary (`SourceSetup`), verifies the cluster against the state file (or
    /// records it on the first start) and starts streaming the slot from where it stands.
    public func openSession(numbering: inout BatchNumbering, thread: CaptureThread) throws(CaptureError)
        -> PostgreSQLCaptureSession?
    {
        let control: PGConnection
        do { control = try PGConnection(conninfo: settings.conninfo) } catch {
            throw CaptureError.database(error, doing: "connecting to the primary")
        }
        var replication: ReplicationStream?
        do throws(CaptureError) {
            let start = try SourceSetup(settings: settings).prepare(on: control)
            let stream = try ReplicationStream(conninfo: settings.conninfo)
            replication = stream
            try verifyCluster(stream.identity)
            try stream.start(slot: settings.slotName, publication: settings.publicationName)
            let spill: PgFileStreamStore
            do { spill = try PgFileStreamStore(directory: settings.stateDirectory + "/capture-spill") } catch {
                throw CaptureError(
                    .sourceSetup, "cannot prepare the spill directory: \(error)",
                    hint: "Check [spool] directory, its permissions and free space.")
            }
            numbering.startingAt(.postgresql(start))
            logger.info(
                "capture: streaming slot \(settings.slotName) (publication \(settings.publicationName)) from \(start), next batch \(numbering.nextSequence)"
            )
            return PostgreSQLCaptureSession(
                source: self, control: control, replication: stream, start: start, spill: spill)
        } catch {
            replication?.close()
            control.close()
            throw error
        }
    }

    public func sessionStopped(atBoundaryOf session: PostgreSQLCaptureSession, numbering: BatchNumbering) {}

    /// A cluster other than the one this capture started on (a restored backup, a promoted
    /// standby of another history) cannot continue the DR copy: the state file says which.
    private func verifyCluster(_ identity: CaptureState) throws(CaptureError) {
        if let recorded = try CaptureState.load(directory: settings.stateDirectory, slot: settings.slotName) {
            if let problem = recorded.mismatch(with: identity) {
                throw CaptureError(
                    .reseedRequired, problem,
                    hint:
                        "The DR copy no longer matches this primary's history: re-seed the DR site, then remove \(CaptureState.path(directory: settings.stateDirectory, slot: settings.slotName))."
                )
            }
        } else {
            try identity.save(directory: settings.stateDirectory, slot: settings.slotName)
        }
    }
}

/// One streaming session of the slot: reads and decodes `pgoutput`, answers the server with
/// status updates, writes heartbeats. Batching is the driver's.
public final class PostgreSQLCaptureSession: CaptureSession {
    private unowned let source: PostgreSQLSource
    private let control: PGConnection
    private let replication: ReplicationStream
    private var decoder: PgOutputDecoder
    private var feedback: SlotFeedback
    /// The server's WAL end from its last keepalive: where an idle slot may be confirmed.
    private var lastKeepalive: LSN?
    /// How far the stream has been read: the end of the last commit decoded, or a keepalive's
    /// WAL position (a logical walsender reports how far it has decoded, and every commit
    /// before that was sent ahead of the keepalive).
    private var readThrough: LSN
    private var replyRequested = false

    static let heartbeatPrefix = "tandem.heartbeat"

    /// The heartbeat: a transactional logical message, so it commits like any transaction
    /// (lag stays measurable and the slot keeps moving on an idle primary), carrying the
    /// current value of every sequence (`SequenceValues`).
    static let heartbeatSQL = """
        SELECT pg_logical_emit_message(true, '\(heartbeatPrefix)', coalesce((
          SELECT json_agg(json_build_array(schemaname, sequencename, last_value))::text
          FROM pg_sequences WHERE last_value IS NOT NULL AND schemaname <> 'tandem'), '[]'))
        """

    /// Changes per decoded piece of a large transaction: bounds what the decoder holds.
    static let chunkChanges = 8192

    fileprivate init(
        source: PostgreSQLSource, control: PGConnection, replication: ReplicationStream, start: LSN,
        spill: PgFileStreamStore
    ) {
        self.source = source
        self.control = control
        self.replication = replication
        self.decoder = PgOutputDecoder(chunkChanges: Self.chunkChanges, streamStore: spill)
        self.feedback = SlotFeedback(start: start)
        self.readThrough = start
    }

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

    public var hasPendingInput: Bool { replication.hasPendingInput }

    /// Streamed transactions spilled to files count as half-decoded until their commit.
    public var isBetweenTransactions: Bool { !decoder.isInTransaction && decoder.bufferedTransactionIDs.isEmpty }

    public func read(timeoutNanoseconds: UInt64, take: (Captured) throws(CaptureError) -> Void) throws(CaptureError) {
        let messages = try replication.read(timeoutMilliseconds: Int32(min(timeoutNanoseconds / 1_000_000, 1_000)))
        for message in messages {
            switch message {
            case .xlogData(let walStart, _, _, let data):
                feedback.receivedThrough(walStart)
                do {
                    try decoder.feed(data) { event in
                        if case .transaction(_, let endLSN, _) = event { readThrough = max(readThrough, endLSN) }
                        if let captured = Self.captured(event) { try take(captured) }
                    }
                } catch let error as CaptureError {
                    throw error
                } catch {
                    throw CaptureError(
                        .protocolViolation, "undecodable pgoutput message at \(walStart): \(error)",
                        hint: "Capture stops so nothing is skipped; report it with the primary's version.")
                }
            case .keepalive(let walEnd, _, let reply):
                lastKeepalive = walEnd
                readThrough = max(readThrough, walEnd)
                replyRequested = replyRequested || reply
                feedback.receivedThrough(walEnd)
            }
        }
    }

    /// A decoded event as shipped: heartbeats carry the sequences' values, Tandem's own writes
    /// (a replication origin of Tandem's applier) are not shipped back, bare messages are not
    /// transactions.
    private static func captured(_ event: PgOutputEvent) -> Captured? {
        switch event {
        case .transaction(var transaction, let endLSN, let messages):
            if let origin = transaction.origin, origin.hasPrefix(tandemOriginPrefix) { return nil }
            for message in messages where message.prefix == heartbeatPrefix {
                transaction.changes += sequenceChanges(message.content)
            }
            // A seed chunk's watermark, written in the transaction that read the chunk.
            for message in messages where message.prefix == SeedMark.messagePrefix {
                if let mark = String(validating: message.content, as: UTF8.self).flatMap(SeedMark.init(text:)) {
                    transaction.seedMarks.append(mark)
                }
            }
            return .transaction(transaction, end: .postgresql(endLSN))
        case .chunk(let piece):
            if let origin = piece.origin, origin.hasPrefix(tandemOriginPrefix) { return nil }
            return .chunk(piece)
        case .message:
            return nil
        }
    }

    public var logRead: LogOffset? { LogOffset(readThrough) }

    /// The primary's WAL flush position: what its commits are durable up to.
    public func readLogEnd() throws(CaptureError) -> LogOffset? {
        let text: String?
        do { text = try control.exec("SELECT pg_current_wal_flush_lsn()").value(row: 0, column: 0) } catch {
            throw CaptureError.database(error, doing: "reading the primary's WAL position")
        }
        return text.flatMap { try? LSN(parsing: $0) }.map(LogOffset.init)
    }

    public func writeHeartbeat() throws(CaptureError) {
        do { _ = try control.exec(Self.heartbeatSQL) } catch {
            throw CaptureError.database(error, doing: "writing the heartbeat")
        }
    }

    /// Confirms the slot up to what the applier made durable, and an idle slot up to the
    /// server's WAL end when nothing is open anywhere (no batch, no transaction half decoded or
    /// spilled, every batch durable); sends a status update when one is due. While a hand-over
    /// waits for room this runs with `quiescent` false and touches no decoder state: the decoder
    /// is then inside `feed`.
    public func stepped(quiescent: Bool) throws(CaptureError) {
        if quiescent, let walEnd = lastKeepalive, !decoder.isInTransaction, decoder.bufferedTransactionIDs.isEmpty {
            feedback.confirmIdle(walEnd: walEnd)
        }
        feedback.confirm(source.confirmedLSN)
        let clock = Int64(Date().timeIntervalSince1970 * 1_000_000) - ReplicationMessage.postgresEpochOffset
        if let status = feedback.statusDue(
            now: DispatchTime.now().uptimeNanoseconds, clock: clock, replyRequested: replyRequested)
        {
            try replication.send(status)
        }
        replyRequested = false
    }

    public func close() {
        replication.close()
        control.close()
    }
}
