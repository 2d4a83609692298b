import TandemCore

/// How old the oldest source commit is that a stage does not hold yet — the one definition
/// behind RPO exposure (the stage: durable in the DR spool), apply lag (applied at the DR
/// database) and capture lag (read by the shipper).
///
/// Exact when the batch after the stage's point is known (its first commit is the oldest one
/// missing); otherwise an upper bound from the latest watermark the stage has passed: every
/// commit up to the mark's time is held, so whatever is missing is younger than that. The
/// figures are never flattering: a stalled stage's mark stops, and its age keeps growing.
/// Nil only when nothing is known (no batch and no mark yet).
public enum StageAge {
    /// The age at source time `now` of the oldest commit a stage holding batches through
    /// `sequence` does not hold.
    public static func oldestMissing(
        through sequence: UInt64, ledger: BatchLedger, marks: Watermarks, now: Int64
    ) -> Duration? {
        if let next = ledger.summary(sequence + 1) {
            return age(of: next.firstCommitTime, now: now)
        }
        if let mark = marks.through(sequence) {
            return age(of: mark.sourceTime, now: now)
        }
        return nil
    }

    /// `now − time`, and zero for a time ahead of now (a clock offset estimate's error).
    public static func age(of time: Int64, now: Int64) -> Duration {
        let (difference, overflow) = now.subtractingReportingOverflow(time)
        guard !overflow, difference > 0 else { return .zero }
        return .microseconds(difference)
    }
}

extension StageAge {
    /// The DR site's two stages as either site reports them: where the spool and the database
    /// are, and RPO exposure and apply lag from them, at source time `now`.
    static func fillDR(
        _ positions: inout SiteStatus.Positions, _ lag: inout SiteStatus.LagFigures, durable: UInt64,
        applied: UInt64, appliedPosition: String?, ledger: BatchLedger, marks: Watermarks, now: Int64
    ) {
        positions.durable = marks.point(durable, position: ledger.summary(durable)?.lastPosition)
        positions.applied = marks.point(applied, position: appliedPosition)
        lag.rpoExposureSeconds = oldestMissing(through: durable, ledger: ledger, marks: marks, now: now).map(\.seconds)
        lag.applyLagSeconds = oldestMissing(through: applied, ledger: ledger, marks: marks, now: now).map(\.seconds)
    }
}
