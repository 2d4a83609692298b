import CaptureKit
import TandemCodec
import TandemCore
import Testing

/// The shared capture driver over a scripted session and a manual clock: what every engine's
/// capture does between decoding and the shipper, without a database.
@Suite("capture driver (one pipeline for every engine's session)")
struct CaptureDriverTests {
    static let ms: UInt64 = 1_000_000
    static let stream = StreamID("driver-test")!

    /// A session whose reads are scripted; the capture stops once the script is used up.
    final class ScriptedSession: CaptureSession {
        var reads: [[Captured]]
        /// What the driver asked, in order: "read", "heartbeat", "stepped(true)", "stepped(false)".
        var calls: [String] = []
        var stopping = false
        let clock: ManualClock
        /// How long a read takes on the manual clock (a read that waits for input).
        let readTakes: UInt64

        init(_ reads: [[Captured]], clock: ManualClock, readTakes: UInt64 = 0) {
            self.reads = reads
            self.clock = clock
            self.readTakes = readTakes
        }

        var hasPendingInput: Bool { !reads.isEmpty }
        /// A transaction's start read without its end (what a real session's decoder knows).
        var midTransaction = false
        var isBetweenTransactions: Bool { !midTransaction }

        func read(timeoutNanoseconds: UInt64, take: (Captured) throws(CaptureError) -> Void) throws(CaptureError) {
            calls.append("read")
            clock.now += readTakes
            guard !reads.isEmpty else {
                stopping = true
                return
            }
            for item in reads.removeFirst() {
                if case .transaction(_, .postgresql(let end)) = item { readThrough = end.rawValue }
                try take(item)
            }
        }

        /// The end of the last transaction read, as a real session keeps it; the log's end is
        /// what `logEnd` says.
        var readThrough: UInt64 = 0
        var logEnd: UInt64?
        var logRead: LogOffset? { LogOffset(LSN(readThrough)) }
        func readLogEnd() -> LogOffset? {
            calls.append("log end")
            return logEnd.map { LogOffset(LSN($0)) }
        }

        func writeHeartbeat() { calls.append("heartbeat") }
        func stepped(quiescent: Bool) { calls.append("stepped(\(quiescent))") }
        func close() {}
    }

    final class ManualClock {
        var now: UInt64 = 1_000 * CaptureDriverTests.ms
        /// Runs at every sleep of the driver (the shipper taking batches meanwhile).
        var onSleep: () -> Void = {}
    }

    static func settings(maximumReadyBytes: Int = 1 << 20, heartbeat: UInt64 = 0) -> CaptureDriver.Settings {
        CaptureDriver.Settings(
            engine: .postgresql, stream: stream,
            batching: TransactionBatcher.Limits(maximumBytes: 4096, maximumDelayNanoseconds: 20 * ms),
            compressionLevel: 1, heartbeatIntervalNanoseconds: heartbeat, maximumReadyBytes: maximumReadyBytes)
    }

    static func driver(_ settings: CaptureDriver.Settings, _ handoff: CaptureHandoff, _ session: ScriptedSession)
        -> CaptureDriver
    {
        CaptureDriver(
            settings: settings, handoff: handoff, isStopping: { session.stopping }, clock: { session.clock.now },
            sleep: { nanoseconds in
                session.clock.now += nanoseconds
                session.clock.onSleep()
            })
    }

    static let relation = Relation(
        name: RelationName(schema: "s", name: "t"),
        columns: [
            Column(name: "id", type: .integer(bits: 64, signed: true), nativeType: "bigint", isKey: true),
            Column(name: "v", type: .text, nativeType: "text"),
        ])

    static func transaction(_ commit: UInt64, rows: Int = 1, pad: Int = 10) -> Transaction {
        Transaction(
            commitPosition: .postgresql(LSN(commit)), commitTime: Timestamp(microsecondsSinceEpoch: 0),
            changes: (0..<rows).map {
                RowChange(
                    relation: relation, kind: .insert,
                    new: [.int(Int64(commit) * 1000 + Int64($0)), .text(String(repeating: "x", count: pad))])
            })
    }

    static func whole(_ commit: UInt64, rows: Int = 1, pad: Int = 10) -> Captured {
        .transaction(transaction(commit, rows: rows, pad: pad), end: .postgresql(LSN(commit + 1)))
    }

    static func drain(_ handoff: CaptureHandoff) throws -> [SourceBatch] {
        var batches: [SourceBatch] = []
        while let batch = try handoff.next() { batches.append(batch) }
        return batches
    }

    static func decoded(_ batch: SourceBatch) throws -> Batch { try BatchDecoder().decode(batch.frame) }

    @Test("what one read decoded shares a batch, numbered from the thread's next sequence, closed when due")
    func batchesAndNumbers() throws {
        let clock = ManualClock()
        let session = ScriptedSession([[Self.whole(10), Self.whole(20)]], clock: clock)
        let handoff = CaptureHandoff()
        var numbering = BatchNumbering(stream: Self.stream, firstSequence: 7)
        numbering.startingAt(.postgresql(LSN(5)))
        let outcome = try Self.driver(Self.settings(), handoff, session).run(session, numbering: &numbering)
        #expect(outcome == .stopping)
        let batches = try Self.drain(handoff)
        #expect(batches.map(\.sequence) == [7])
        #expect(batches.first?.lastPosition == .postgresql(LSN(21)))
        #expect(
            try batches.map { try Self.decoded($0).transactions.map(\.commitPosition) } == [
                [.postgresql(LSN(10)), .postgresql(LSN(20))]
            ])
        #expect(numbering.nextSequence == 8)
        #expect(numbering.completedThrough == .postgresql(LSN(21)))
    }

    @Test("a boundary hands over everything before it and ends the session; nothing after it is taken")
    func boundaryStopsTheSession() throws {
        let clock = ManualClock()
        let session = ScriptedSession([[Self.whole(10), .boundary, Self.whole(20)], [Self.whole(30)]], clock: clock)
        let handoff = CaptureHandoff()
        var numbering = BatchNumbering(stream: Self.stream, firstSequence: 1)
        numbering.startingAt(.postgresql(LSN(5)))
        let outcome = try Self.driver(Self.settings(), handoff, session).run(session, numbering: &numbering)
        #expect(outcome == .boundary)
        let batches = try Self.drain(handoff)
        #expect(try batches.map { try Self.decoded($0).transactions.map(\.commitPosition) } == [[.postgresql(LSN(10))]])
        #expect(session.reads.count == 1, "the read after the boundary is never made")
        #expect(numbering.completedThrough == .postgresql(LSN(11)))
    }

    @Test("a large transaction waits for room between its pieces and keeps answering the source")
    func backpressureWithinATransaction() throws {
        let clock = ManualClock()
        // One ready byte is already too many: every piece after the first waits for the shipper.
        let session = ScriptedSession([[Self.whole(10, rows: 300, pad: 100)]], clock: clock)
        let handoff = CaptureHandoff()
        var taken: [SourceBatch] = []
        var waitsBeforeTaking = 0
        clock.onSleep = {
            waitsBeforeTaking += 1
            // The shipper takes one batch every third look.
            if waitsBeforeTaking % 3 == 0, let batch = try? handoff.next() { taken.append(batch) }
        }
        var numbering = BatchNumbering(stream: Self.stream, firstSequence: 1)
        numbering.startingAt(.postgresql(LSN(5)))
        _ = try Self.driver(Self.settings(maximumReadyBytes: 1), handoff, session).run(session, numbering: &numbering)
        taken += try Self.drain(handoff)
        #expect(taken.count >= 3, "300 rows of 100 bytes make several 4 KiB pieces")
        #expect(taken.map(\.sequence) == Array(1...UInt64(taken.count)))
        // Pieces that complete nothing repeat the start position; the last releases the transaction.
        #expect(taken.dropLast().allSatisfy { $0.lastPosition == .postgresql(LSN(5)) })
        #expect(taken.last?.lastPosition == .postgresql(LSN(11)))
        let rows = try taken.flatMap { try Self.decoded($0).transactions.flatMap(\.changes) }
        #expect(rows.count == 300)
        // The waits answered the source, and never as quiescent: a transaction was open.
        let firstRead = try #require(session.calls.firstIndex(of: "read"))
        let duringRead = session.calls[(firstRead + 1)...].prefix { $0 != "read" }
        #expect(duringRead.filter { $0 == "stepped(false)" }.count >= waitsBeforeTaking / 2)
        #expect(!session.calls.prefix(firstRead + 1 + duringRead.count).contains("stepped(true)"))
    }

    @Test("stopping while a hand-over waits for room ends the run with a connection error, delivering nothing more")
    func stoppingWhileWaitingForRoom() throws {
        let clock = ManualClock()
        let session = ScriptedSession([[Self.whole(10, rows: 300, pad: 100)]], clock: clock)
        let handoff = CaptureHandoff()
        clock.onSleep = { session.stopping = true }
        var numbering = BatchNumbering(stream: Self.stream, firstSequence: 1)
        numbering.startingAt(.postgresql(LSN(5)))
        let driver = Self.driver(Self.settings(maximumReadyBytes: 1), handoff, session)
        let error = #expect(throws: CaptureError.self) { try driver.run(session, numbering: &numbering) }
        #expect(error?.kind == .connection)
        #expect(try Self.drain(handoff).map(\.sequence) == [1])
    }

    @Test("heartbeats go once per interval of the capture's clock")
    func heartbeats() throws {
        let clock = ManualClock()
        // Each read waits 30 ms for input that never comes: 11 reads (the last ends the script) are
        // 330 ms. The first heartbeat is due at 100 ms and goes at the step after (120 ms), the next
        // is due an interval later (220 ms, goes at 240 ms); the one due at 340 ms is past the end.
        let session = ScriptedSession(Array(repeating: [], count: 10), clock: clock, readTakes: 30 * Self.ms)
        let handoff = CaptureHandoff()
        var numbering = BatchNumbering(stream: Self.stream, firstSequence: 1)
        _ = try Self.driver(Self.settings(heartbeat: 100 * Self.ms), handoff, session)
            .run(session, numbering: &numbering)
        #expect(session.calls.filter { $0 == "heartbeat" }.count == 2)
        #expect(try Self.drain(handoff).isEmpty)
    }

    /// The caught-up watermark says "everything the source had is in the batches delivered":
    /// only a read that found nothing, with no batch open and nothing half-decoded, may say it,
    /// and it is stamped with the time the read began.
    @Test("a read that finds nothing with nothing open marks the capture caught up, at the read's start")
    func caughtUpMarks() throws {
        for midTransaction in [false, true] {
            let clock = ManualClock()
            let session = ScriptedSession([[Self.whole(10)], [], [], []], clock: clock, readTakes: 30 * Self.ms)
            session.midTransaction = midTransaction
            let handoff = CaptureHandoff()
            var numbering = BatchNumbering(stream: Self.stream, firstSequence: 7)
            var readStarts: [UInt64] = []
            let driver = CaptureDriver(
                settings: Self.settings(), handoff: handoff, isStopping: { session.stopping }, clock: { clock.now },
                sleep: { clock.now += $0 }, wallClock: { Timestamp(microsecondsSinceEpoch: Int64(clock.now / 1_000)) })
            let observing = ObservingSession(session) {
                readStarts.append(clock.now)
            }
            _ = try driver.run(observing, numbering: &numbering)
            if midTransaction {
                #expect(handoff.caughtUp == nil, "half a transaction read: never caught up")
            } else {
                let mark = try #require(handoff.caughtUp)
                #expect(mark.sequence == 7, "everything read is in batch 7")
                let markedAt = UInt64(mark.time.microsecondsSinceEpoch) * 1_000
                #expect(readStarts.dropFirst().contains(markedAt), "a read that found nothing, not the first")
                #expect(UInt64(mark.time.microsecondsSinceEpoch) * 1_000 < clock.now)
            }
        }
    }

    /// A batch's log offset is the end of the last transaction it completes, even when it was
    /// closed by a later transaction that did not fit (the session has read past it by then).
    @Test("each batch carries its last transaction's log offset; the source's log end is asked every 0.25 s")
    func logOffsets() throws {
        let clock = ManualClock()
        let session = ScriptedSession(
            [[Self.whole(10, pad: 3_000), Self.whole(20, pad: 3_000)], [], [], []], clock: clock,
            readTakes: 100 * Self.ms)
        session.logEnd = 90
        let handoff = CaptureHandoff()
        var numbering = BatchNumbering(stream: Self.stream, firstSequence: 1)
        numbering.startingAt(.postgresql(LSN(5)))
        _ = try Self.driver(Self.settings(), handoff, session).run(session, numbering: &numbering)
        let batches = try Self.drain(handoff)
        #expect(batches.map(\.sequence) == [1, 2])
        #expect(batches.map(\.logOffset?.bytes) == [11, 21])
        #expect(handoff.sourceLog == SourceLogProgress(read: LogOffset(LSN(21)), end: LogOffset(LSN(90))))
        #expect(handoff.caughtUp?.logOffset == LogOffset(LSN(21)))
        // Reads of 0.1 s: the end was asked after the first, and again only once 0.25 s had
        // passed (after the fourth), not at every read.
        #expect(session.calls.filter { $0 == "log end" }.count == 2, "\(session.calls)")
    }

    @Test("the session is told it is quiescent only with no batch open and every batch durable")
    func quiescence() throws {
        let clock = ManualClock()
        let session = ScriptedSession([[Self.whole(10)], [], [], []], clock: clock, readTakes: 30 * Self.ms)
        let handoff = CaptureHandoff()
        var numbering = BatchNumbering(stream: Self.stream, firstSequence: 1)
        numbering.startingAt(.postgresql(LSN(5)))
        var acknowledgedAt: Int?
        clock.onSleep = {}
        // The shipper takes and acknowledges the batch at the second read after it was closed.
        var readsAfterClose = 0
        let driver = CaptureDriver(
            settings: Self.settings(), handoff: handoff, isStopping: { session.stopping }, clock: { clock.now },
            sleep: { clock.now += $0 })
        let observing = ObservingSession(session) {
            if handoff.readyBytes > 0 || readsAfterClose > 0 {
                readsAfterClose += 1
                if readsAfterClose == 2, let batch = try? handoff.next() {
                    handoff.acknowledged(batch.sequence)
                    acknowledgedAt = session.calls.count
                }
            }
        }
        _ = try driver.run(observing, numbering: &numbering)
        let mark = try #require(acknowledgedAt)
        #expect(!session.calls.prefix(mark).contains("stepped(true)"))
        #expect(session.calls.dropFirst(mark).contains("stepped(true)"))
    }

    /// Runs a hook before each read of the wrapped session.
    final class ObservingSession: CaptureSession {
        let inner: ScriptedSession
        let beforeRead: () -> Void
        init(_ inner: ScriptedSession, beforeRead: @escaping () -> Void) {
            self.inner = inner
            self.beforeRead = beforeRead
        }
        var hasPendingInput: Bool { inner.hasPendingInput }
        var isBetweenTransactions: Bool { inner.isBetweenTransactions }
        func read(timeoutNanoseconds: UInt64, take: (Captured) throws(CaptureError) -> Void) throws(CaptureError) {
            beforeRead()
            try inner.read(timeoutNanoseconds: timeoutNanoseconds, take: take)
        }
        var logRead: LogOffset? { inner.logRead }
        func readLogEnd() -> LogOffset? { inner.readLogEnd() }
        func writeHeartbeat() { inner.writeHeartbeat() }
        func stepped(quiescent: Bool) { inner.stepped(quiescent: quiescent) }
        func close() {}
    }
}
