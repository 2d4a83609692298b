import TandemCore

/// What the shipper knows of the pipeline, as a pure value the shipper's core updates: the
/// batches it captured (their summaries and watermarks), how far each stage is by the applier's
/// acknowledgements, and the totals and rates. `report` turns it into the figures of
/// `SiteStatus` at a given time on the source's clock — the shipper's own clock: it runs at the
/// primary site, beside the source (a clock offset between them shows as lag, never as less).
public struct ShipperFigures: Sendable {
    public private(set) var ledger = BatchLedger()
    public private(set) var marks = Watermarks()
    public private(set) var totals = SiteStatus.Totals()
    private var captured: SiteStatus.StagePoint?
    private var sent: UInt64 = 0
    private var durable: UInt64 = 0
    private var applied: UInt64 = 0
    private var appliedPosition: String?
    /// The capture's read point and the source's log end, as last reported.
    private var sourceLog = SourceLogProgress()
    /// How far the source's log is durable at the DR site: the offset of the newest durable
    /// batch, or of a caught-up mark whose batches are all durable.
    private var durableLogOffset: LogOffset?
    /// The latest caught-up mark's log offset, until its batches are durable.
    private var caughtUpLog: (sequence: UInt64, offset: LogOffset)?
    private var capturedTransactions = RateMeter()
    private var appliedBatches = RateMeter()
    private var linkBytes = RateMeter()

    public init() {}

    /// A batch the capture produced.
    public mutating func captured(_ summary: BatchSummary) {
        ledger.append(summary)
        marks.record(
            Watermark(sequence: summary.sequence, sourceTime: Timestamp(microsecondsSinceEpoch: summary.lastCommitTime))
        )
        captured = SiteStatus.StagePoint(
            batch: summary.sequence, position: summary.lastPosition, sourceTime: seconds(summary.lastCommitTime))
        totals.capturedBatches += 1
        totals.capturedTransactions += summary.transactions
        totals.capturedRows += summary.rows
        totals.capturedRawBytes += summary.rawBytes
    }

    /// The capture had read everything the source had at `time`, all of it in batches through
    /// `sequence`.
    public mutating func caughtUp(through sequence: UInt64, at time: Timestamp, logOffset: LogOffset? = nil) {
        marks.record(Watermark(sequence: sequence, sourceTime: time))
        if let logOffset {
            caughtUpLog = (sequence, logOffset)
            resolveDurableLog()
        }
    }

    /// How far the capture has read the source's log, and where that log ends.
    public mutating func sourceLog(_ progress: SourceLogProgress) {
        sourceLog = progress
    }

    /// The capture restarts so that its next batch is `sequence`: batches from there on will be
    /// produced again.
    public mutating func restarted(at sequence: UInt64) {
        if let point = captured, point.batch >= sequence { captured = nil }
    }

    /// Batch `sequence` (`bytes` on the wire) was written on the link.
    public mutating func sent(_ sequence: UInt64, bytes: Int) {
        sent = max(sent, sequence)
        totals.sentBatches += 1
        totals.sentBytes += UInt64(bytes)
    }

    /// The applier's acknowledgement: durable and applied through these batches.
    public mutating func acknowledged(durable: UInt64, applied: UInt64, position: Position?) {
        if durable > self.durable, let offset = ledger.summary(durable)?.logOffset { advanceDurableLog(to: offset) }
        self.durable = max(self.durable, durable)
        resolveDurableLog()
        if applied > self.applied, let position { appliedPosition = position.engineText }
        self.applied = max(self.applied, applied)
        ledger.discard(through: self.applied)
        marks.discard(through: self.applied)
    }

    /// A caught-up mark whose batches are all durable says the source's log is durable up to it.
    private mutating func resolveDurableLog() {
        guard let mark = caughtUpLog, mark.sequence <= durable else { return }
        advanceDurableLog(to: mark.offset)
        caughtUpLog = nil
    }

    /// Moves the durable log offset forward only (a new space, after a binlog purge, replaces it).
    private mutating func advanceDurableLog(to offset: LogOffset) {
        if let current = durableLogOffset, current.space == offset.space, current.bytes >= offset.bytes { return }
        durableLogOffset = offset
    }

    /// The figures at `now` (Unix microseconds, this site's clock, taken as the source's);
    /// `monotonic` seconds drive the rates.
    public mutating func report(into status: inout SiteStatus, now: Int64, monotonic: Double) {
        capturedTransactions.sample(totals.capturedTransactions, at: monotonic)
        appliedBatches.sample(applied, at: monotonic)
        linkBytes.sample(totals.sentBytes, at: monotonic)
        var positions = SiteStatus.Positions()
        positions.captured = captured
        positions.sent = sent > 0 ? SiteStatus.StagePoint(batch: sent) : nil
        var lag = SiteStatus.LagFigures()
        StageAge.fillDR(
            &positions, &lag, durable: durable, applied: applied, appliedPosition: appliedPosition, ledger: ledger,
            marks: marks, now: now)
        status.positions = positions
        if let exposed = ledger.totals(after: durable) {
            lag.rpoExposureTransactions = exposed.transactions
            lag.rpoExposureBatchBytes = exposed.frameBytes
        }
        let end = sourceLog.knownEnd
        if let end, let durableLogOffset { lag.rpoExposureLogBytes = end.bytes(since: durableLogOffset) }
        lag.captureLagBytes = sourceLog.behindBytes
        status.sourceLog = SiteStatus.SourceLogFigures(
            read: sourceLog.read?.text, end: end?.text, durable: durableLogOffset?.text)
        lag.captureLagSeconds = marks.latest.map { StageAge.age(of: $0.sourceTime, now: now).seconds }
        if durable >= applied, let rate = appliedBatches.perSecond {
            let backlog = Double(durable - applied)
            lag.drainSeconds = backlog == 0 ? 0 : (rate > 0 ? backlog / rate : nil)
        }
        status.lag = lag

        var rates = SiteStatus.Rates()
        rates.capturedTransactionsPerSecond = capturedTransactions.perSecond
        rates.appliedBatchesPerSecond = appliedBatches.perSecond
        rates.linkBytesPerSecond = linkBytes.perSecond
        if totals.sentBytes > 0 { rates.compressionRatio = Double(totals.capturedRawBytes) / Double(totals.sentBytes) }
        status.rates = rates
        status.totals = totals
        status.captureMark = marks.latest
    }
}
