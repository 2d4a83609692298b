import SeededRandom
import TandemCore
import Testing

@testable import TandemStatus

private func mark(_ sequence: UInt64, _ time: Int64) -> Watermark {
    Watermark(sequence: sequence, sourceTime: Timestamp(microsecondsSinceEpoch: time))
}

private func summary(_ sequence: UInt64, first: Int64, last: Int64, transactions: UInt64 = 1) -> BatchSummary {
    BatchSummary(
        sequence: sequence, firstCommitTime: first, lastCommitTime: last, transactions: transactions,
        rows: transactions * 2, frameBytes: 100, rawBytes: 300)
}

@Suite("lag model: watermarks, ledger, stage ages, rates")
struct LagModelTests {
    @Test("marks move forward only; the mark through a batch is the latest at or below it")
    func watermarksThrough() {
        var marks = Watermarks()
        #expect(marks.through(10) == nil)
        marks.record(mark(2, 100))
        marks.record(mark(2, 150))  // an idle mark for the same batch replaces its mark
        marks.record(mark(5, 140))  // time going back: dropped
        marks.record(mark(1, 200))  // sequence going back: dropped
        marks.record(mark(5, 300))
        #expect(marks.marks == [mark(2, 150), mark(5, 300)])
        #expect(marks.through(1) == nil)
        #expect(marks.through(2) == mark(2, 150))
        #expect(marks.through(4) == mark(2, 150))
        #expect(marks.through(99) == mark(5, 300))
        marks.discard(through: 4)
        #expect(marks.marks == [mark(2, 150), mark(5, 300)])
        marks.discard(through: 5)
        #expect(marks.marks == [mark(5, 300)])
    }

    /// Thinning may only make a stage's mark older (a larger, never a smaller age), never newer
    /// than what the stage really passed.
    @Test("bounded marks stay upper bounds: the mark through any batch is never newer than the exact one")
    func thinnedMarksAreNeverNewer() {
        var random = SplitMix64(seed: 0x5EED_1A6)
        var bounded = Watermarks(limit: 16)
        var all: [Watermark] = []
        var sequence: UInt64 = 0
        var time: Int64 = 1_000
        for _ in 0..<2_000 {
            sequence += UInt64.random(in: 0...2, using: &random)
            time += Int64.random(in: 1...50, using: &random)
            let next = mark(sequence, time)
            bounded.record(next)
            if let last = all.last, last.sequence == sequence { all[all.count - 1] = next } else { all.append(next) }
        }
        #expect(bounded.marks.count <= 16)
        for probe in stride(from: UInt64(0), through: sequence + 1, by: 7) {
            let exact = all.last { $0.sequence <= probe }
            let found = bounded.through(probe)
            if let found {
                #expect(found.sequence <= probe)
                #expect(found.sourceTime <= exact!.sourceTime)
            }
        }
        #expect(bounded.latest == all.last)
    }

    @Test("the ledger holds summaries in order; a restart renumbers from its batch; totals need every batch")
    func ledger() {
        var ledger = BatchLedger(limit: 4)
        #expect(ledger.totals(after: 0) == BatchLedger.Totals())
        for sequence in UInt64(1)...3 { ledger.append(summary(sequence, first: Int64(sequence) * 10, last: 0)) }
        #expect(ledger.summary(2)?.firstCommitTime == 20)
        #expect(ledger.summary(4) == nil)
        #expect(ledger.totals(after: 1)?.batches == 2)
        #expect(ledger.totals(after: 1, through: 2)?.transactions == 1)
        ledger.append(summary(2, first: 99, last: 0, transactions: 5))  // the capture restarted at batch 2
        #expect(ledger.count == 2 && ledger.summary(3) == nil && ledger.summary(2)?.transactions == 5)
        for sequence in UInt64(3)...6 { ledger.append(summary(sequence, first: 0, last: 0)) }
        #expect(ledger.count == 4 && ledger.first?.sequence == 3)
        #expect(ledger.totals(after: 1) == nil)  // batch 2 was forgotten: unknown, not zero
        #expect(ledger.totals(after: 2)?.batches == 4)
        ledger.discard(through: 5)
        #expect(ledger.first?.sequence == 6 && ledger.totals(after: 5)?.frameBytes == 100)
        #expect(ledger.totals(after: 6) == BatchLedger.Totals())
    }

    @Test("a stage's age: exact from the next batch's first commit, else bounded by its mark, else unknown")
    func stageAge() {
        var ledger = BatchLedger()
        var marks = Watermarks()
        #expect(StageAge.oldestMissing(through: 0, ledger: ledger, marks: marks, now: 1_000) == nil)
        marks.record(mark(0, 400))  // an idle capture: everything until 400 is in no batch at all
        #expect(StageAge.oldestMissing(through: 0, ledger: ledger, marks: marks, now: 1_000) == .microseconds(600))
        ledger.append(summary(1, first: 500, last: 700))
        marks.record(mark(1, 700))
        ledger.append(summary(2, first: 800, last: 900))
        marks.record(mark(2, 900))
        // Nothing durable: the oldest missing commit is batch 1's first.
        #expect(StageAge.oldestMissing(through: 0, ledger: ledger, marks: marks, now: 1_000) == .microseconds(500))
        #expect(StageAge.oldestMissing(through: 1, ledger: ledger, marks: marks, now: 1_000) == .microseconds(200))
        // Everything held: only the mark bounds what may be missing; a stalled mark keeps ageing.
        #expect(StageAge.oldestMissing(through: 2, ledger: ledger, marks: marks, now: 1_000) == .microseconds(100))
        #expect(StageAge.oldestMissing(through: 2, ledger: ledger, marks: marks, now: 61_000) == .microseconds(60_100))
        // A clock estimate that puts now before the commit: zero, not negative.
        #expect(StageAge.oldestMissing(through: 0, ledger: ledger, marks: marks, now: 100) == .zero)
    }

    @Test("rates over a window; a counter reset starts over; too short a span is unknown")
    func rates() {
        var meter = RateMeter(window: 10)
        #expect(meter.perSecond == nil)
        meter.sample(0, at: 0)
        meter.sample(5, at: 0.05)
        #expect(meter.perSecond == nil)
        meter.sample(100, at: 1)
        #expect(meter.perSecond == 100)
        for second in 2...30 { meter.sample(UInt64(100 + (second - 1) * 10), at: Double(second)) }
        #expect(meter.perSecond == 10)  // the first second's burst left the window
        meter.sample(3, at: 31)
        meter.sample(23, at: 33)
        #expect(meter.perSecond == 10)
    }
}

@Suite("the applier's figures after a restart with a backlog in its spool")
struct ApplierRestartFiguresTests {
    @Test("apply lag is unknown until the next batch's header is read, then exact; the next one is asked for")
    func backlogHead() {
        var figures = ApplierFigures()
        figures.started(durable: 100, applied: 40, position: nil)
        var status = SiteStatus(
            site: "cloud", pair: "acme", role: "applier", engine: nil, reportedAt: 0, agentStartedAt: 0)
        figures.report(into: &status, sourceNow: 10_000_000, localNow: 10_000_000, monotonic: 0, spoolBytes: 1)
        #expect(status.lag.applyLagSeconds == nil, "nothing known yet: unknown, not 0")
        #expect(status.spool?.backlogBatches == 60)
        #expect(figures.needsBacklogHead == 41)
        figures.backlogHead(summary(41, first: 4_000_000, last: 4_500_000))
        #expect(figures.needsBacklogHead == nil)
        figures.report(into: &status, sourceNow: 10_000_000, localNow: 10_000_000, monotonic: 1, spoolBytes: 1)
        #expect(status.lag.applyLagSeconds == 6)
        figures.applied(through: 41, position: nil)
        #expect(figures.needsBacklogHead == 42)
        figures.report(into: &status, sourceNow: 10_000_000, localNow: 10_000_000, monotonic: 2, spoolBytes: 1)
        #expect(status.lag.applyLagSeconds == 5.5, "bounded by batch 41's mark until 42's header is read")
    }
}

@Suite("the shipper's lag in bytes of source log")
struct SourceLogBytesTests {
    static func offset(_ bytes: UInt64, space: String = "wal") -> LogOffset {
        LogOffset(space: space, bytes: bytes, text: "\(bytes)")
    }

    static func captured(_ figures: inout ShipperFigures, _ sequence: UInt64, endingAt bytes: UInt64) {
        var batch = summary(sequence, first: Int64(sequence), last: Int64(sequence))
        batch.logOffset = offset(bytes)
        figures.captured(batch)
    }

    static func report(_ figures: inout ShipperFigures) -> SiteStatus {
        var status = SiteStatus(
            site: "idc", pair: "acme", role: "shipper", engine: nil, reportedAt: 0, agentStartedAt: 0)
        figures.report(into: &status, now: 10, monotonic: 0)
        return status
    }

    @Test("exposure runs from the newest durable batch's end to the log's end; a caught-up mark covers the tail")
    func exposure() {
        var figures = ShipperFigures()
        for sequence: UInt64 in 1...3 { Self.captured(&figures, sequence, endingAt: sequence * 1_000) }
        figures.sourceLog(SourceLogProgress(read: Self.offset(3_200), end: Self.offset(5_000)))
        var status = Self.report(&figures)
        #expect(status.lag.rpoExposureLogBytes == nil, "nothing known durable yet: unknown, not 5 000")
        #expect(status.lag.captureLagBytes == 1_800)
        #expect(status.sourceLog?.end == "5000" && status.sourceLog?.read == "3200")

        figures.acknowledged(durable: 2, applied: 1, position: nil)
        status = Self.report(&figures)
        #expect(status.lag.rpoExposureLogBytes == 3_000)
        #expect(status.sourceLog?.durable == "2000")

        // Durable through batch 3, then caught up: the log up to 5 000 holds nothing else.
        figures.acknowledged(durable: 3, applied: 3, position: nil)
        #expect(Self.report(&figures).lag.rpoExposureLogBytes == 2_000)
        figures.caughtUp(through: 3, at: Timestamp(microsecondsSinceEpoch: 9), logOffset: Self.offset(5_000))
        figures.sourceLog(SourceLogProgress(read: Self.offset(5_000), end: Self.offset(5_000)))
        status = Self.report(&figures)
        #expect(status.lag.rpoExposureLogBytes == 0 && status.lag.captureLagBytes == 0)

        // A caught-up mark ahead of what is durable counts only once its batches are.
        Self.captured(&figures, 4, endingAt: 6_000)
        figures.caughtUp(through: 4, at: Timestamp(microsecondsSinceEpoch: 10), logOffset: Self.offset(6_500))
        figures.sourceLog(SourceLogProgress(read: Self.offset(6_500), end: Self.offset(7_000)))
        #expect(Self.report(&figures).lag.rpoExposureLogBytes == 2_000)
        figures.acknowledged(durable: 4, applied: 4, position: nil)
        #expect(Self.report(&figures).lag.rpoExposureLogBytes == 500)
    }

    @Test("an end asked before the capture read further is at least what was read")
    func staleEnd() {
        var progress = SourceLogProgress(read: Self.offset(700), end: Self.offset(500))
        #expect(progress.knownEnd == Self.offset(700) && progress.behindBytes == 0)
        progress.delivered(through: Self.offset(650))
        #expect(progress.read == Self.offset(700), "read moves forward only")
        progress.delivered(through: Self.offset(900))
        #expect(progress.read == Self.offset(900))
        progress.end = Self.offset(1_000)
        #expect(progress.behindBytes == 100)
    }

    @Test("offsets in different spaces are never compared: unknown, not wrong")
    func spaces() {
        #expect(Self.offset(10).bytes(since: Self.offset(4)) == 6)
        #expect(Self.offset(4).bytes(since: Self.offset(10)) == 0)
        #expect(Self.offset(10, space: "binlog:b.000002").bytes(since: Self.offset(4, space: "binlog:b.000001")) == nil)
        var figures = ShipperFigures()
        Self.captured(&figures, 1, endingAt: 1_000)
        figures.acknowledged(durable: 1, applied: 1, position: nil)
        figures.sourceLog(
            SourceLogProgress(read: Self.offset(1_000, space: "other"), end: Self.offset(9, space: "other")))
        let status = Self.report(&figures)
        #expect(status.lag.rpoExposureLogBytes == nil && status.lag.captureLagBytes == 0)
    }
}
