import TandemCore

/// A point the source's history has passed: every transaction the source committed at or
/// before `sourceTime` is in batches up to `sequence`. A stage that holds every batch through
/// `sequence` (the DR spool, the DR database) therefore holds everything committed until then.
///
/// The shipper makes one for each batch it captures (its last commit time) and one whenever
/// its capture has read everything the source had (an idle read, at the shipper's clock), so
/// an idle pair's marks keep moving while no batch does.
public struct Watermark: Hashable, Sendable, Codable {
    public var sequence: UInt64
    /// Microseconds since the Unix epoch, on the source's clock.
    public var sourceTime: Int64

    public init(sequence: UInt64, sourceTime: Timestamp) {
        self.sequence = sequence
        self.sourceTime = sourceTime.microsecondsSinceEpoch
    }
}

/// The marks a site knows, ascending in sequence and in time, so that the mark for any stage
/// is one lookup: the latest mark at or below the stage's batch.
///
/// Bounded: past `limit` marks, every second mark of the older half is dropped. A coarser old
/// mark is an earlier time for the same batches, so a lag computed from it can only come out
/// larger: the figures stay upper bounds, never flattering.
public struct Watermarks: Sendable, Equatable {
    public private(set) var marks: [Watermark] = []
    public let limit: Int

    public init(limit: Int = 4_096) {
        self.limit = max(limit, 4)
    }

    public var latest: Watermark? { marks.last }

    /// Records `mark`. One that does not move time forward is dropped (the source's clock may
    /// step back; the marks never do); one for the latest batch replaces that batch's mark.
    public mutating func record(_ mark: Watermark) {
        if let last = marks.last {
            guard mark.sourceTime > last.sourceTime, mark.sequence >= last.sequence else { return }
            if mark.sequence == last.sequence {
                marks[marks.count - 1] = mark
                return
            }
        }
        marks.append(mark)
        if marks.count > limit { thin() }
    }

    /// The latest mark at or below `sequence`: a stage holding every batch through `sequence`
    /// holds every commit up to that mark's time. Nil when no mark is that low.
    public func through(_ sequence: UInt64) -> Watermark? {
        var low = 0
        var high = marks.count
        while low < high {
            let middle = (low + high) / 2
            if marks[middle].sequence <= sequence { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? nil : marks[low - 1]
    }

    /// Forgets what no stage needs any more: marks below the latest one at or below `sequence`.
    public mutating func discard(through sequence: UInt64) {
        guard let keep = through(sequence), let index = marks.firstIndex(of: keep), index > 0 else { return }
        marks.removeFirst(index)
    }

    private mutating func thin() {
        let older = marks.count / 2
        var kept: [Watermark] = []
        kept.reserveCapacity(marks.count)
        for (index, mark) in marks.enumerated() where index >= older || index % 2 == 1 { kept.append(mark) }
        marks = kept
    }
}

extension Watermarks {
    /// A stage at `batch` as status shows it, with the source time it holds everything up to.
    func point(_ batch: UInt64, position: String?) -> SiteStatus.StagePoint? {
        guard batch > 0 else { return nil }
        let mark = through(batch)
        return SiteStatus.StagePoint(batch: batch, position: position, sourceTime: mark.map { seconds($0.sourceTime) })
    }
}
