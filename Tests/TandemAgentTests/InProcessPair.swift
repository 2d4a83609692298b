import ApplyKit
import CaptureKit
import Foundation
import Logging
import Synchronization
import TandemAgent
import TandemCodec
import TandemConfig
import TandemCore
import TandemLink
import TandemSynthetic
import TandemTestSupport

/// The synthetic stream's batches 1…`count` (`SyntheticBatches`, regenerated from any
/// sequence on restart), recording what the shipper asked of it. Each acknowledgement is
/// recorded with the durable point the applier had reported to the shipper by then, so a
/// test checks the acknowledge rule from the source's side.
final class RecordingSource: BatchSource, Sendable {
    struct Acknowledgement: Sendable, Equatable {
        var sequence: UInt64
        var position: Position
        /// The highest durable batch a HELLO or ACK had delivered to the shipper when it acknowledged.
        var reportedDurable: UInt64
    }

    struct Record: Sendable, CustomStringConvertible {
        var restarts: [UInt64] = []
        var acknowledgements: [Acknowledgement] = []
        var acknowledged: UInt64 { acknowledgements.last?.sequence ?? 0 }
        var description: String { "restarts \(restarts), acknowledged through \(acknowledged)" }
    }

    private struct Cursor: ~Copyable {
        var encoder: BatchEncoder
        var next: UInt64 = 1
    }

    let stream: StreamID
    let count: UInt64
    let record = Watch(Record())
    private let replies: ReplyLog
    private let cursor: Mutex<Cursor>
    /// The clock a caught-up source stamps its watermark with.
    private let wallClock: @Sendable () -> Timestamp

    init(stream: StreamID, count: UInt64, replies: ReplyLog, wallClock: @escaping @Sendable () -> Timestamp) throws {
        self.stream = stream
        self.count = count
        self.replies = replies
        self.wallClock = wallClock
        cursor = Mutex(Cursor(encoder: try BatchEncoder()))
    }

    /// Every batch produced: the source has nothing more, now.
    var caughtUp: CaughtUp? {
        let next = cursor.withLock { $0.next }
        return next > count ? CaughtUp(sequence: count, time: wallClock(), logOffset: logEnd) : nil
    }

    /// A simulated source log: batch N ends at N × 1 000 bytes, and past the last batch the log
    /// holds `logTail` bytes more that carry no change (another database's writes).
    static let logTail: UInt64 = 500
    static func logOffset(_ bytes: UInt64) -> LogOffset { LogOffset(space: "test", bytes: bytes, text: "\(bytes)") }
    var logEnd: LogOffset { Self.logOffset(count * 1_000 + Self.logTail) }

    /// Read through the last batch produced; once all are, through the log's end.
    var sourceLog: SourceLogProgress? {
        let next = cursor.withLock { $0.next }
        return SourceLogProgress(read: next > count ? logEnd : Self.logOffset((next - 1) * 1_000), end: logEnd)
    }

    func restart(at sequence: UInt64) throws {
        cursor.withLock { $0.next = sequence }
        record.update { $0.restarts.append(sequence) }
    }

    func next() throws -> SourceBatch? {
        try cursor.withLock { cursor -> SourceBatch? in
            guard cursor.next <= count else { return nil }
            let sequence = cursor.next
            let encoded = try cursor.encoder.encode(SyntheticBatches.batch(stream: stream, sequence: sequence))
            cursor.next += 1
            return SourceBatch(
                sequence: sequence, lastPosition: encoded.header.lastPosition, frame: encoded.frame,
                header: encoded.header, logOffset: Self.logOffset(sequence * 1_000))
        }
    }

    func acknowledge(durableThrough position: Position, sequence: UInt64) throws {
        let reported = replies.watch.value.durable
        record.update {
            $0.acknowledgements.append(
                Acknowledgement(sequence: sequence, position: position, reportedDurable: reported))
        }
    }

    func stop() {}
}

/// An in-memory target that outlives applier services (its checkpoint is what a restarted
/// applier resumes from). It checks each batch's content against the synthetic stream and
/// refuses anything but the next sequence, as a real sink's checkpoint does.
final class RecordingSink: BatchSink {
    struct Applied: Sendable, CustomStringConvertible {
        /// Every batch applied, in the order applied (a repeat would show twice).
        var sequences: [UInt64] = []
        /// Batches whose content was not the synthetic stream's.
        var wrongContent: [UInt64] = []
        var checkpoint = SinkCheckpoint.empty
        var description: String { "applied through \(checkpoint.sequence) (\(sequences.count) batches)" }
    }

    let stream: StreamID
    let applied = Watch(Applied())
    private let decoder: Mutex<BatchDecoder>

    init(stream: StreamID) throws {
        self.stream = stream
        decoder = Mutex(try BatchDecoder())
    }

    func checkpoint() throws -> SinkCheckpoint { applied.value.checkpoint }

    func apply(_ batches: [SinkBatch]) throws -> SinkCheckpoint {
        var next = applied.value
        for item in batches {
            guard item.sequence == next.checkpoint.sequence + 1 else {
                throw FixtureError("sink: batch \(item.sequence) after \(next.checkpoint.sequence)")
            }
            let batch = try decoder.withLock { try $0.decode(item.frame) }
            if SyntheticBatches.checksum(of: batch)
                != SyntheticBatches.expectedChecksum(stream: stream, sequence: item.sequence)
            {
                next.wrongContent.append(item.sequence)
            }
            next.sequences.append(item.sequence)
            next.checkpoint = SinkCheckpoint(sequence: item.sequence, position: batch.transactions.last?.commitPosition)
        }
        applied.update { $0 = next }
        return next.checkpoint
    }
}

/// A real `ShipperService` and `ApplierService` in this process: a stand-in network between
/// them, a manual clock (frozen unless the test moves it), the applier's spool in a scoped
/// temporary directory and a recording sink that outlives applier restarts.
final class InProcessPair {
    enum Side {
        case shipper, applier
    }

    let batches: UInt64
    let windowBytes: Int
    let scratch = TemporaryDirectory("inproc")
    let network = StandInNetwork()
    let clock = ManualClock()
    let sink: RecordingSink
    let stream: StreamID
    static let heartbeatTimeout: Duration = .seconds(10)
    private var shipper: Task<Void, Never>?
    private var applier: Task<Void, Never>?
    /// The first error a service stopped with: every wait fails with it at once, rather than
    /// waiting out its bound for progress that cannot come.
    let failure = Watch<String?>(nil)

    static let logger: Logger = {
        var logger = Logger(label: "inproc") { _ in SwiftLogNoOpLogHandler() }
        if ProcessInfo.processInfo.environment["TANDEM_TEST_AGENT_LOG"] == "1" {
            logger = Logger(label: "inproc")
        }
        return logger
    }()

    init(batches: UInt64, windowBytes: Int = 4096) throws {
        self.batches = batches
        self.windowBytes = windowBytes
        stream = Self.settings(.shipper, windowBytes: windowBytes).stream(shippedBy: LinkName("idc")!)
        sink = try RecordingSink(stream: stream)
    }

    deinit {
        shipper?.cancel()
        applier?.cancel()
    }

    static func settings(_ side: Side, windowBytes: Int) -> AgentLinkSettings {
        let idc = LinkName("idc")!, cloud = LinkName("cloud")!
        return AgentLinkSettings(
            pair: LinkName("acme")!, localSite: side == .shipper ? idc : cloud,
            peerSite: side == .shipper ? cloud : idc,
            mode: side == .shipper ? .connect(host: "stand-in", port: 1) : .listen(host: "stand-in", port: 1),
            caFile: "", certificateFile: "", keyFile: "", heartbeatInterval: .seconds(1),
            heartbeatTimeout: heartbeatTimeout, windowBytes: windowBytes)
    }

    /// A source of this pair's stream with its first `count` batches (all by default), reporting
    /// to this pair's reply log.
    func makeSource(count: UInt64? = nil) throws -> RecordingSource {
        let clock = clock
        return try RecordingSource(
            stream: stream, count: count ?? batches, replies: network.replies, wallClock: { clock.now().wall })
    }

    /// Where each side's service publishes its status.
    let boards = (shipper: StatusBoard(), applier: StatusBoard())

    /// Starts a new applier service on the pair's spool.
    func startApplier() throws {
        let service = try ApplierService(
            settings: Self.settings(.applier, windowBytes: windowBytes), stream: stream,
            spoolRoot: scratch.file("spool"), sink: sink, logger: Self.logger, board: boards.applier,
            connector: network.connector(.applier), clock: clock)
        applier = run(service.run, "applier")
    }

    func startShipper(_ source: RecordingSource) throws {
        let service = try ShipperService(
            settings: Self.settings(.shipper, windowBytes: windowBytes), source: source, logger: Self.logger,
            connector: network.connector(.shipper), clock: clock, board: boards.shipper)
        shipper = run(service.run, "shipper")
    }

    private func run(_ body: sending @escaping () async throws -> Void, _ name: String) -> Task<Void, Never> {
        Task { [failure] in
            do {
                try await body()
            } catch {
                failure.update { $0 = $0 ?? "the \(name) stopped: \(error)" }
            }
        }
    }

    /// Stops the applier as SIGTERM does, and waits until it has let go of the spool.
    func stopApplier() async throws {
        applier?.cancel()
        await applier?.value
        applier = nil
        if let failure = failure.value { throw FixtureError(failure) }
    }

    func stopShipper() async throws {
        shipper?.cancel()
        await shipper?.value
        shipper = nil
        if let failure = failure.value { throw FixtureError(failure) }
    }

    /// Waits until `condition` holds for `watch`, failing at once if a service stops with an error.
    func wait<Value>(
        _ watch: Watch<Value>, for what: String, until condition: @escaping @Sendable (Value) -> Bool
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { [failure] group in
            group.addTask { try await watch.wait(for: what, until: condition) }
            group.addTask {
                if let stopped = await failure.next(where: { $0 != nil }) ?? nil { throw FixtureError(stopped) }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    func stop() async throws {
        try await stopShipper()
        try await stopApplier()
        scratch.remove()
    }

    /// Waits until the sink has applied through `sequence`.
    func applied(through sequence: UInt64) async throws {
        try await wait(sink.applied, for: "batch \(sequence) applied") { $0.checkpoint.sequence >= sequence }
    }
}
