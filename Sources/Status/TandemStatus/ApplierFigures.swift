import TandemCore

/// What the applier knows of the pipeline, as a pure value the applier's core updates: the
/// batches it received (their summaries and watermarks), the shipper's capture watermarks from
/// its status reports, how far its spool and its database are, and when it last heard news from
/// the source. `report` turns it into the figures of `SiteStatus` at a given source time: this
/// site's clock corrected by the link's clock-offset estimate (the last one known while the
/// link is down).
public struct ApplierFigures: Sendable {
    public private(set) var ledger = BatchLedger()
    public private(set) var marks = Watermarks()
    public private(set) var totals = SiteStatus.Totals()
    private var received: UInt64 = 0
    private var durable: UInt64 = 0
    private var applied: UInt64 = 0
    private var appliedPosition: String?
    private var backlogHead: BatchSummary?
    /// When news from the source last arrived (a batch, or a capture watermark that moved), in
    /// this site's Unix microseconds; nil before any.
    private var lastNews: Int64?
    private var appliedTransactions = RateMeter()
    private var appliedRows = RateMeter()
    private var appliedBatches = RateMeter()
    private var storedBytes = RateMeter()

    public init() {}

    /// Where the applier starts: its spool holds batches through `durable`, its database has
    /// applied through `applied`.
    public mutating func started(durable: UInt64, applied: UInt64, position: Position?) {
        self.durable = durable
        self.received = durable
        self.applied = applied
        appliedPosition = position?.engineText
    }

    /// The batch after the applied one when it is not in the ledger: after a restart the spool
    /// holds a backlog this agent did not receive, and apply lag is exact only with the first
    /// commit of the next batch to apply (the service reads its header from the spool).
    public var needsBacklogHead: UInt64? {
        guard durable > applied, ledger.summary(applied + 1) == nil, backlogHead?.sequence != applied + 1 else {
            return nil
        }
        return applied + 1
    }

    public mutating func backlogHead(_ summary: BatchSummary) {
        backlogHead = summary
        marks.record(
            Watermark(sequence: summary.sequence, sourceTime: Timestamp(microsecondsSinceEpoch: summary.lastCommitTime))
        )
    }

    /// A verified batch arrived (`now`: this site's Unix microseconds).
    public mutating func received(_ summary: BatchSummary, now: Int64) {
        ledger.append(summary)
        marks.record(
            Watermark(sequence: summary.sequence, sourceTime: Timestamp(microsecondsSinceEpoch: summary.lastCommitTime))
        )
        received = max(received, summary.sequence)
        lastNews = now
    }

    /// The shipper's capture watermark from its status report.
    public mutating func shipperCaptured(_ mark: Watermark, now: Int64) {
        let before = marks.latest
        marks.record(mark)
        if marks.latest != before { lastNews = now }
    }

    /// The spool holds every batch through `sequence` durably.
    public mutating func durable(through sequence: UInt64) {
        guard sequence > durable else { return }
        for next in (durable + 1)...sequence {
            guard let summary = ledger.summary(next) else { continue }
            totals.storedBatches += 1
            totals.storedBytes += summary.frameBytes
        }
        durable = sequence
    }

    /// The database committed every batch through `sequence`.
    public mutating func applied(through sequence: UInt64, position: Position?) {
        guard sequence > applied else { return }
        if let totals = ledger.totals(after: applied, through: sequence) {
            self.totals.appliedTransactions += totals.transactions
            self.totals.appliedRows += totals.rows
        }
        totals.appliedBatches += sequence - applied
        applied = sequence
        if let position { appliedPosition = position.engineText }
        ledger.discard(through: sequence)
        marks.discard(through: sequence)
    }

    public mutating func databaseFailed() {
        totals.databaseFailures += 1
    }

    /// The figures at source time `sourceNow` and local time `localNow` (Unix microseconds);
    /// `monotonic` seconds drive the rates; `spoolBytes` is the spool's size on disk.
    public mutating func report(
        into status: inout SiteStatus, sourceNow: Int64, localNow: Int64, monotonic: Double, spoolBytes: UInt64?
    ) {
        appliedTransactions.sample(totals.appliedTransactions, at: monotonic)
        appliedRows.sample(totals.appliedRows, at: monotonic)
        appliedBatches.sample(totals.appliedBatches, at: monotonic)
        storedBytes.sample(totals.storedBytes, at: monotonic)

        var positions = SiteStatus.Positions()
        positions.sent = received > 0 ? SiteStatus.StagePoint(batch: received) : nil
        var lag = SiteStatus.LagFigures()
        StageAge.fillDR(
            &positions, &lag, durable: durable, applied: applied, appliedPosition: appliedPosition, ledger: ledger,
            marks: marks, now: sourceNow)
        if ledger.summary(applied + 1) == nil, let head = backlogHead,
            head.sequence == applied + 1
        {
            lag.applyLagSeconds = StageAge.age(of: head.firstCommitTime, now: sourceNow).seconds
        }
        status.positions = positions
        lag.stalenessSeconds = lastNews.map { StageAge.age(of: $0, now: localNow).seconds }
        let backlog = durable >= applied ? durable - applied : 0
        if backlog == 0 {
            lag.drainSeconds = 0
        } else if let rate = appliedBatches.perSecond, rate > 0 {
            lag.drainSeconds = Double(backlog) / rate
        }
        status.lag = lag

        var rates = SiteStatus.Rates()
        rates.appliedTransactionsPerSecond = appliedTransactions.perSecond
        rates.appliedRowsPerSecond = appliedRows.perSecond
        rates.appliedBatchesPerSecond = appliedBatches.perSecond
        rates.linkBytesPerSecond = storedBytes.perSecond
        status.rates = rates
        status.totals = totals
        status.spool = spoolBytes.map { SiteStatus.SpoolFigures(bytes: $0, backlogBatches: backlog) }
        status.captureMark = marks.latest
    }
}
