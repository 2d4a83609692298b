import CaptureKit
import Dispatch
import Foundation
import Logging
import MariaDBEngine
import MySQLClient
import TandemCodec
import TandemCore

/// The shipper's capture from a MariaDB primary: the binlog read as a replica would (a
/// GTID-mode binlog dump) on a thread of its own, decoded, filtered, batched and encoded,
/// handed to the shipper through `next()`.
///
/// ## Position and acknowledgement
/// MariaDB keeps no replication slot for a replica, so the capture keeps its own: the state
/// file in the spool directory (`CaptureState`) holds the GTID position up to which the
/// applier reported batches durable. It advances only in `acknowledge(durableThrough:
/// sequence:)` — the safety rule in `BatchSource` — and is written by a background queue at
/// most once a second (and at stop), so `acknowledge` never waits for a disk. Every start (and
/// every reconnect after the last acknowledgement) streams from there again; what was
/// delivered but not acknowledged is re-sent under new batch numbers, and the applier skips
/// transactions at or below its checkpoint. Within one capture thread a reconnect resumes
/// after the last transaction a delivered batch completed, so the ready queue holds no
/// duplicates.
///
/// On the very first start (no state file) the capture starts at the primary's current
/// `@@gtid_binlog_pos` and records it: rows written before that point reach the DR site
/// only through a seed (`tandem seed`, not built yet), never through capture.
///
/// A start position the primary can no longer serve (binlogs purged, GTIDs it never had)
/// or a different primary (see `SourceSetup` on identity) stops capture with
/// `.reseedRequired`, quoting the server.
///
/// ## What is shipped
/// - Every committed transaction of the primary in binlog order, its position being the GTID
///   position after it (`BinlogDecoder`), its commit time the binlog's (seconds).
/// - Row changes of tables outside `tableFilter`, of the server's own schemas and of the
///   `tandem` schema are dropped; the transaction itself still ships, possibly empty, so
///   positions progress. The heartbeat (`REPLACE INTO tandem.heartbeat` every
///   `heartbeatIntervalNanoseconds`) therefore arrives as an empty transaction with its
///   commit time: lag stays measurable on an idle primary, and the DR side needs no table.
/// - Transactions in the GTID domain `applierDomainID` were written by Tandem's applier at
///   this site and are never shipped (loop prevention); later positions include them.
///
/// ## DDL
/// Schema changes are not replicated yet. When one reaches the binlog, capture delivers
/// everything before it, stops reading, and — once the applier has acknowledged all of
/// that, so the state file holds exactly the position in front of the statement — `next()`
/// throws `.schemaChange` naming the statement and its GTID. The operator then applies the
/// same statement at the DR site, sets `position=` in the state file to the value the
/// error's hint gives (the acknowledged position advanced by that one GTID) and restarts
/// the agent; or re-seeds. Until everything before the statement is acknowledged, `next()`
/// returns nil and the log already says why. Tandem's own `CREATE … tandem…` statements
/// are stepped over.
///
/// ## Memory
/// Finished batches wait in a queue bounded by `maximumReadyBytes`; past it the thread
/// stops reading the socket and the primary holds its binlogs. Batches are cut at
/// `[batch] max_bytes`, large transactions into chunks (`TransactionBatcher`); one
/// transaction is held whole in memory while it is decoded (it is only complete at its XID).
///
/// ## Batching and CPU
/// A batch closes at `[batch] max_bytes` or when its first transaction has waited
/// `max_delay_ms`, never merely because the socket is momentarily empty (that made one
/// batch per transaction under a steady load). While a batch is open and nothing has
/// arrived, the thread sleeps until the batch is due instead of waking for each event;
/// what arrives meanwhile is read in a few large reads and still joins the batch before it
/// closes. Without an open batch the read blocks, so the first transaction after a pause
/// is taken at once; the dump heartbeat (period = the batch delay) bounds any read.
///
/// ## Stopping
/// `stop()` and `restart(at:)` shut the capture's sockets down, which ends a blocking read
/// at once, so they return promptly (a connection attempt in progress can take up to its
/// 5-second timeout).
public final class MariaDBSource: BatchSource, CaptureEngine, @unchecked Sendable {
    // @unchecked: the shared state below is guarded by `lock`; the worker owns the rest, and
    // `writtenPosition` belongs to `persistQueue`.
    public let stream: StreamID
    let settings: MariaDBCaptureSettings
    public let logger: Logger

    /// The capture thread, the driver and the hand-over, shared with every engine's capture.
    private let runner = CaptureRunner<MariaDBSource>()
    private let lock = NSLock()
    /// The highest acknowledged position; nil until a session read the state file.
    private var acknowledgedPosition: MariaDBGTIDList?
    /// The primary the state file belongs to, once a session verified or recorded it.
    private var identity: (uuid: String, serverID: UInt32)?
    private var schemaChange: (statement: String, gtid: MariaDBGTID)?
    private var persistScheduled = false

    private let persistQueue = DispatchQueue(label: "tandem-capture-state")
    /// How long acknowledgements gather before the state file is written (with an fsync):
    /// batches are acknowledged every few tens of milliseconds, and one write per batch cost
    /// a tenth of the shipper's CPU. Safe because the file only ever lags: a crash in between
    /// re-sends at most this much, and the applier skips what it has.
    static let persistDelay: DispatchTimeInterval = .seconds(1)
    private var writtenPosition: MariaDBGTIDList?

    public init(settings: MariaDBCaptureSettings, logger: Logger) {
        self.stream = settings.stream
        self.settings = settings
        self.logger = logger
    }

    deinit {
        runner.stop()
        persistQueue.sync { persist() }
    }

    /// Where the capture keeps its position and the primary's identity.
    public var stateFilePath: String { CaptureState.path(directory: settings.stateDirectory, stream: stream) }

    public func restart(at sequence: UInt64) throws {
        try runner.restart(at: sequence, engine: self) { lock.withLock { schemaChange = nil } }
    }

    /// Where a seed's chunks enter this capture's stream: the seed offers each chunk's rows
    /// here before committing its mark (`MariaDBSeedSource`), and the capture puts them in the
    /// mark's place.
    public var copyFeed: CopyFeed { runner.handoff.copyFeed }

    public var caughtUp: CaughtUp? { runner.caughtUp }
    public var sourceLog: SourceLogProgress? { runner.sourceLog }

    public func next() throws -> SourceBatch? {
        try throwIfFailed()
        let change = runner.handoff.allDurable ? lock.withLock { schemaChange } : nil
        if let change {
            // Everything before the statement is durable: make the state file say so
            // before telling the operator to edit it.
            persistQueue.sync { persist() }
            try throwIfFailed()
            let error = schemaChangeError(statement: change.statement, gtid: change.gtid)
            fail(error)
            throw error
        }
        return try runner.next()
    }

    public func acknowledge(durableThrough position: Position, sequence: UInt64) throws {
        guard case .mariadb(let list) = position else { throw CaptureError.foreignPosition(position, engine: .mariadb) }
        runner.handoff.acknowledged(sequence)
        let schedule = try lock.withLock { () throws(CaptureError) -> Bool in
            if let current = acknowledgedPosition {
                switch list.compare(to: current) {
                case .after: acknowledgedPosition = list
                case .same, .before: return false
                case .incomparable:
                    throw CaptureError(
                        .protocolViolation,
                        "acknowledged position \(list) is not comparable with the acknowledged \(current)",
                        hint: "This is a bug in the shipper; report it.")
                }
            } else {
                acknowledgedPosition = list
            }
            defer { persistScheduled = true }
            return !persistScheduled
        }
        if schedule {
            persistQueue.asyncAfter(deadline: .now() + Self.persistDelay) { [weak self] in self?.persist() }
        }
    }

    /// Stops the capture thread and writes the last acknowledged position (the agent is
    /// shutting down).
    public func stop() {
        runner.stop()
        persistQueue.sync { persist() }
    }

    private func throwIfFailed() throws(CaptureError) {
        if let failure = runner.handoff.failed { throw failure }
    }

    /// Writes the acknowledged position if it moved since the last write. Runs on
    /// `persistQueue` only.
    private func persist() {
        let (identity, position) = lock.withLock { () -> ((uuid: String, serverID: UInt32)?, MariaDBGTIDList?) in
            persistScheduled = false
            return (self.identity, acknowledgedPosition)
        }
        guard let identity, let position, position != writtenPosition else { return }
        do {
            try CaptureState(serverUUID: identity.uuid, serverID: identity.serverID, position: position)
                .save(directory: settings.stateDirectory, stream: stream)
            writtenPosition = position
        } catch {
            logger.error("capture: \(error.description) (\(error.hint))")
            fail(error)
        }
    }

    private func schemaChangeError(statement: String, gtid: MariaDBGTID) -> CaptureError {
        let acknowledged = lock.withLock { acknowledgedPosition } ?? MariaDBGTIDList()
        let shortened = singleLine(statement, limit: 200)
        return CaptureError(
            .schemaChange,
            "DDL is not replicated yet: capture stopped in front of \"\(shortened)\" (GTID \(gtid)); everything before it is durable at the DR site",
            hint:
                "Apply the same statement at the DR site, then set position=\(acknowledged.advanced(by: gtid)) in \(stateFilePath) and restart the agent (or re-seed the DR site)."
        )
    }

    // MARK: Worker interface

    fileprivate func fail(_ error: CaptureError) { runner.handoff.fail(error) }

    fileprivate func stopAtSchemaChange(statement: String, gtid: MariaDBGTID) {
        lock.withLock { schemaChange = (statement, gtid) }
    }

    /// Called by a session once the state file was verified (or first written): from here
    /// acknowledgements can be persisted. Returns the position to resume from: the
    /// acknowledged one, which may be ahead of the file's if a write is still pending.
    fileprivate func adopt(identity: (uuid: String, serverID: UInt32), position: MariaDBGTIDList) -> MariaDBGTIDList {
        lock.withLock {
            self.identity = identity
            if let current = acknowledgedPosition, current.compare(to: position) == .after { return current }
            acknowledgedPosition = position
            return position
        }
    }

    fileprivate var memoryPosition: MariaDBGTIDList? { lock.withLock { acknowledgedPosition } }

    // MARK: CaptureEngine

    public var driverSettings: CaptureDriver.Settings {
        CaptureDriver.Settings(
            engine: .mariadb, stream: stream, batching: settings.batching, compressionLevel: settings.compressionLevel,
            heartbeatIntervalNanoseconds: settings.heartbeatIntervalNanoseconds,
            maximumReadyBytes: settings.maximumReadyBytes)
    }

    /// Silence after which the primary sends a HEARTBEAT on the dump: the batch delay, within
    /// 10 ms … 1 s. A read blocks until the next event, so an idle dump must wake the capture
    /// about as often as a batch may wait, or the last transactions before a pause would sit
    /// in an open batch for up to a heartbeat period. (Closing a batch whenever the socket
    /// happens to be empty instead made one batch per transaction under a steady load: each
    /// compressed alone, at 2.5 times the bytes, and with per-batch costs at every stage.)
    static func dumpHeartbeatNanoseconds(batchDelay: UInt64) -> UInt64 {
        min(max(batchDelay, 10_000_000), 1_000_000_000)
    }
    /// A dump silent for this long (no event, no heartbeat) is taken as broken.
    static let readTimeoutSeconds = 10

    /// Checks the primary (`SourceSetup`), verifies it against the state file (or records it on
    /// the first start) and starts the binlog dump after the last transaction this thread
    /// delivered completely, or else from the acknowledged position.
    public func openSession(numbering: inout BatchNumbering, thread: CaptureThread) throws(CaptureError)
        -> MariaDBCaptureSession?
    {
        let control: MySQLConnection
        do {
            control = try settings.controlConnection()
        } catch {
            throw CaptureError.database(error, doing: "connecting to the primary")
        }
        let controlSocket = control.socket
        guard thread.register(controlSocket) else {
            control.close()
            return nil
        }
        do throws(CaptureError) {
            let recorded = try CaptureState.load(directory: settings.stateDirectory, stream: settings.stream)
            let facts = try SourceSetup(settings: settings).prepare(on: control, createIdentity: recorded == nil)
            let acknowledged = try startPosition(facts, recorded: recorded)
            numbering.startingAt(.mariadb(acknowledged))
            guard case .mariadb(let resume)? = numbering.completedThrough else {
                throw CaptureError(
                    .protocolViolation, "the capture's resume position is not a MariaDB position",
                    hint: "This is a bug in the shipper; report it.")
            }
            let heartbeat = Self.dumpHeartbeatNanoseconds(batchDelay: settings.batching.maximumDelayNanoseconds)
            let dump = try BinlogStream(
                settings: settings, start: resume, heartbeatNanoseconds: heartbeat,
                readTimeoutSeconds: Self.readTimeoutSeconds, register: thread.register)
            logger.info(
                "capture: streaming the binlog from GTID position '\(resume)', next batch \(numbering.nextSequence)")
            return MariaDBCaptureSession(
                source: self, thread: thread, connections: (control, dump),
                decoder: BinlogDecoder(startPosition: resume, checksum: facts.checksum, charsets: facts.charsets))
        } catch {
            thread.unregister(controlSocket)
            control.close()
            throw error
        }
    }

    /// Capture stopped in front of DDL, once everything before it was handed over: from now
    /// on `next()` reports it as soon as that is durable.
    public func sessionStopped(atBoundaryOf session: MariaDBCaptureSession, numbering: BatchNumbering) {
        guard let (statement, gtid) = session.schemaChange else { return }
        logger.error(
            "capture: DDL reached the binlog at GTID \(gtid): \(singleLine(statement, limit: 200)); capture stops in front of it once batch \(numbering.nextSequence - 1) and those before it are durable at the DR site"
        )
        stopAtSchemaChange(statement: statement, gtid: gtid)
    }

    /// Verifies the primary against the state file (or records it on the first start) and
    /// returns where streaming resumes.
    private func startPosition(_ facts: PrimaryFacts, recorded: CaptureState?) throws(CaptureError) -> MariaDBGTIDList {
        let path = stateFilePath
        guard let identity = facts.identity else {
            throw CaptureError(
                .reseedRequired,
                "the primary (server_id \(facts.serverID)) is not the server this capture started on: it has no tandem.server_identity row, the state file names identity \(recorded?.serverUUID ?? "?")",
                hint:
                    "If [database] points at the wrong server, fix it; otherwise re-seed the DR site, then remove \(path) and restart."
            )
        }
        if let recorded {
            guard recorded.serverUUID == identity, recorded.serverID == facts.serverID else {
                throw CaptureError(
                    .reseedRequired,
                    "the primary is a different server (server_id \(facts.serverID), identity \(identity)); capture started on server_id \(recorded.serverID), identity \(recorded.serverUUID)",
                    hint:
                        "If [database] points at the wrong server, fix it; otherwise re-seed the DR site, then remove \(path) and restart."
                )
            }
            return adopt(identity: (identity, facts.serverID), position: recorded.position)
        }
        // First start. A position still in memory means the file vanished while running:
        // keep what was acknowledged rather than jump to the primary's current position.
        let position = memoryPosition ?? facts.binlogPosition
        try CaptureState(serverUUID: identity, serverID: facts.serverID, position: position)
            .save(directory: settings.stateDirectory, stream: settings.stream)
        logger.notice(
            "capture: first start, capturing from GTID position '\(position)'; rows written before it reach the DR site only through a seed"
        )
        return adopt(identity: (identity, facts.serverID), position: position)
    }

    /// The transaction as shipped, or nil when it is not shipped at all (written by
    /// Tandem's applier at this site). Changes of tables that are not captured are dropped.
    fileprivate func shippable(_ transaction: Transaction) throws(CaptureError) -> Transaction? {
        // The decoder's origin is "domain-server" of the transaction's GTID.
        guard let domainText = transaction.origin?.split(separator: "-").first, let domain = UInt32(domainText) else {
            throw CaptureError(
                .protocolViolation,
                "a decoded transaction carries no GTID domain (origin \(transaction.origin ?? "none"))",
                hint: "This is a bug in the decoder; report it.")
        }
        if domain == settings.applierDomainID { return nil }
        var kept = transaction
        kept.changes.removeAll { !settings.captures(schema: $0.relation.name.schema, table: $0.relation.name.name) }
        return kept
    }
}

/// One binlog dump session: reads and decodes events, filters what is not shipped, stops in
/// front of DDL. Batching is the driver's.
public final class MariaDBCaptureSession: CaptureSession {
    private unowned let source: MariaDBSource
    private let thread: CaptureThread
    private let control: MySQLConnection
    private let dump: BinlogStream
    private var decoder: BinlogDecoder
    /// The primary's binlog files as last listed: binlog coordinates as bytes on one line.
    private var layout = BinlogLayout(files: [])
    private var relistedFor: String?
    /// The statement capture stopped in front of, once it did.
    fileprivate private(set) var schemaChange: (statement: String, gtid: MariaDBGTID)?

    /// Changes per decoded piece of a large transaction: bounds what the decoder holds.
    static let chunkChanges = 8192

    fileprivate init(
        source: MariaDBSource, thread: CaptureThread, connections: (MySQLConnection, BinlogStream),
        decoder: BinlogDecoder
    ) {
        self.source = source
        self.thread = thread
        (control, dump) = connections
        self.decoder = decoder
        self.decoder.chunkChanges = Self.chunkChanges
    }

    public var hasPendingInput: Bool { dump.hasPendingInput }

    public var isBetweenTransactions: Bool { !decoder.isInGroup }

    /// The end of the last event decoded (a heartbeat carries the primary's position too).
    public var logRead: LogOffset? {
        guard let file = decoder.binlogFile else { return nil }
        return layout.offset(file: file, position: decoder.binlogPosition)
    }

    /// The end of the primary's newest binlog file (`SHOW BINARY LOGS`, which BINLOG MONITOR
    /// allows; the start-up check requires it).
    public func readLogEnd() throws(CaptureError) -> LogOffset? {
        try listBinlogs()
        return layout.end
    }

    private func listBinlogs() throws(CaptureError) {
        let result: MySQLResult
        do { result = try control.query("SHOW BINARY LOGS") } catch {
            throw CaptureError.database(error, doing: "listing the primary's binlog files")
        }
        layout = BinlogLayout(
            files: result.rows.compactMap { row in
                guard row.count >= 2, let name = row[0], let size = row[1].flatMap({ UInt64($0) }) else { return nil }
                return BinlogLayout.File(name: name, size: size)
            })
    }

    /// One event. The read blocks until the next event whatever the timeout; the dump heartbeat
    /// (period = the batch delay) bounds it.
    public func read(timeoutNanoseconds: UInt64, take: (Captured) throws(CaptureError) -> Void) throws(CaptureError) {
        let bytes = try dump.next()
        let output: BinlogDecoderEvent?
        defer {
            // A file the layout does not know yet (rotated to since it was listed): list again
            // once, so the offsets of what follows are known at once. A failure shows at the
            // next `readLogEnd`, on the same connection.
            if let file = decoder.binlogFile, file != relistedFor, layout.offset(file: file, position: 0) == nil {
                relistedFor = file
                try? listBinlogs()
            }
        }
        do { output = try decoder.feed(bytes) } catch {
            throw CaptureError(
                .protocolViolation,
                "undecodable binlog event after GTID position '\(decoder.gtidState)' (\(decoder.binlogFile ?? "?"):\(decoder.binlogPosition)): \(error)",
                hint:
                    "Capture stops so nothing is skipped; fix the cause (see the error) or report it with the primary's version."
            )
        }
        switch output {
        case .transaction(let transaction)?:
            if let kept = try source.shippable(transaction) { try take(.transaction(kept, end: kept.commitPosition)) }
        case .chunk(let piece)?:
            // Committed rows of a large transaction: shipped now, acknowledged with its last piece.
            if let kept = try source.shippable(piece) { try take(.chunk(kept)) }
        case .ddl(let statement, let gtid)?:
            let trimmed = statement.trimmingCharacters(in: .whitespacesAndNewlines)
            if SourceSetup.ownStatements.contains(trimmed) || gtid.domain == source.settings.applierDomainID { return }
            schemaChange = (statement, gtid)
            try take(.boundary)
        case nil:
            break
        }
    }

    public func writeHeartbeat() throws(CaptureError) {
        do { try control.execute(SourceSetup.heartbeat) } catch {
            throw CaptureError.database(error, doing: "writing the heartbeat")
        }
    }

    /// The binlog dump needs no answer, and the capture's position advances only by
    /// acknowledgement (`MariaDBSource`), never by idleness.
    public func stepped(quiescent: Bool) {}

    public func close() {
        thread.unregister(dump.connection.socket)
        dump.close()
        thread.unregister(control.socket)
        control.close()
    }
}
