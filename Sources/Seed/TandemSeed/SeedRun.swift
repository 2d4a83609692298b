import TandemCore
import TandemVerify

/// The copy phase of a seed as a pure state machine: which chunk to read next, which are in
/// flight, and how far each table's durable progress may move. The `SeedDriver` carries out
/// its actions (reads on worker connections, saving `seed.json`) and feeds back what happened.
///
/// The rules that keep the copy exact:
/// - a table is read by one reader at a time, in key order, each chunk after the previous one's
///   last key; chunks of one table therefore reach the log, and become durable, in key order;
/// - progress (`SeedProgress.Table.after`) moves only when a chunk is durable at the DR site, so
///   a restart reads again only what was in flight;
/// - a read that failed is read again from where the previous good chunk ended, under a new
///   mark; if the failed one did reach the log after all, its rows are a correct state of the
///   rows at that point and are written over by the later ones;
/// - a mark durable that this run did not issue, or abandoned, changes nothing.
public struct SeedRun: Sendable {
    public struct Settings: Sendable, Hashable {
        /// Rows per chunk.
        public var chunkRows: Int
        /// Chunks read at the same time (one connection each; never two of one table).
        public var readers: Int
        /// Chunks of one table read but not yet durable, past which its reading waits: what bounds
        /// the rows the primary's agent holds.
        public var chunksInFlightPerTable: Int
        /// Consecutive failed reads of one table after which the seed stops.
        public var maximumFailures: Int

        public init(chunkRows: Int = 5_000, readers: Int = 2, chunksInFlightPerTable: Int = 4, maximumFailures: Int = 5)
        {
            self.chunkRows = chunkRows
            self.readers = readers
            self.chunksInFlightPerTable = chunksInFlightPerTable
            self.maximumFailures = maximumFailures
        }
    }

    public enum Action: Sendable, Hashable {
        /// Read the next chunk of table `table` (an index into `progress.tables`).
        case read(table: Int, after: KeyValue?, mark: SeedMark)
        /// `progress` moved (a chunk became durable): write it.
        case save
        /// Every table's every chunk is durable at the DR site (`progress.phase` is `.finishing`).
        case copied
        /// The seed cannot go on.
        case failed(SeedError)
    }

    public enum Event: Sendable, Hashable {
        /// A chunk was read and its mark committed.
        case read(SeedMark, rows: Int, bytes: Int, last: KeyValue?, exhausted: Bool)
        /// A chunk's read failed (its mark may or may not be in the log).
        case readFailed(SeedMark, SeedError)
        /// The batch carrying a chunk is durable at the DR site.
        case durable(SeedMark)
    }

    /// A chunk read whose mark is committed, waiting to be durable.
    struct InFlight: Sendable, Hashable {
        var mark: SeedMark
        var rows: Int
        var bytes: Int
        var last: KeyValue?
        var exhausted: Bool
    }

    struct TableRun: Sendable, Hashable {
        /// Where the next read starts: after the last chunk read (durable or in flight).
        var readAfter: KeyValue?
        /// The mark of the read under way, if any.
        var reading: SeedMark?
        var inFlight: [InFlight] = []
        /// The last chunk read reached the table's end: nothing more to read.
        var exhausted = false
        var failures = 0
    }

    public let settings: Settings
    public private(set) var progress: SeedProgress
    let run: UInt64
    var tables: [TableRun]
    var nextChunk: UInt64 = 1
    var stopped = false

    /// A run over `progress` (new, or loaded after a restart); `run` identifies its marks.
    public init(progress: SeedProgress, run: UInt64, settings: Settings) {
        self.settings = settings
        self.progress = progress
        self.run = run
        tables = progress.tables.map { TableRun(readAfter: $0.after, exhausted: $0.state == .done) }
    }

    /// The reads to start with (and `.copied` when nothing is left).
    public mutating func start() -> [Action] {
        schedule()
    }

    public mutating func handle(_ event: Event) -> [Action] {
        guard !stopped else { return [] }
        switch event {
        case .read(let mark, let rows, let bytes, let last, let exhausted):
            guard let index = tables.firstIndex(where: { $0.reading == mark }) else { return [] }
            tables[index].reading = nil
            tables[index].failures = 0
            tables[index].inFlight.append(
                InFlight(mark: mark, rows: rows, bytes: bytes, last: last, exhausted: exhausted))
            if let last { tables[index].readAfter = last }
            tables[index].exhausted = exhausted
            if progress.tables[index].state == .pending { progress.tables[index].state = .copying }
            return schedule()
        case .readFailed(let mark, let error):
            guard let index = tables.firstIndex(where: { $0.reading == mark }) else { return [] }
            tables[index].reading = nil
            tables[index].failures += 1
            if tables[index].failures >= settings.maximumFailures {
                stopped = true
                return [
                    .failed(
                        SeedError(
                            "reading \(progress.tables[index].table) failed \(tables[index].failures) times: \(error.description)",
                            hint: error.hint))
                ]
            }
            return schedule()
        case .durable(let mark):
            guard let index = tables.firstIndex(where: { $0.inFlight.contains { $0.mark == mark } }) else { return [] }
            // Chunks of one table are durable in the order they were read (they reached the log in
            // that order); one found later in the queue means the ones before it are durable too.
            var saved = false
            while let first = tables[index].inFlight.first {
                tables[index].inFlight.removeFirst()
                var entry = progress.tables[index]
                entry.rows += Int64(first.rows)
                entry.bytes += Int64(first.bytes)
                if let last = first.last { entry.after = last }
                if first.exhausted && tables[index].inFlight.isEmpty && tables[index].reading == nil {
                    entry.state = .done
                } else if entry.state == .pending {
                    entry.state = .copying
                }
                progress.tables[index] = entry
                saved = true
                if first.mark == mark { break }
            }
            var actions: [Action] = saved ? [.save] : []
            actions += schedule()
            return actions
        }
    }

    /// Reads to start now: the first tables (in order) with something left to read, no read under
    /// way and room in flight, up to `readers` reads at once. `.copied` once everything is durable.
    mutating func schedule() -> [Action] {
        guard !stopped else { return [] }
        if progress.phase == .copying, progress.tables.allSatisfy({ $0.state == .done }) {
            progress.phase = .finishing
            stopped = true
            return [.save, .copied]
        }
        var reading = tables.filter { $0.reading != nil }.count
        var actions: [Action] = []
        for index in tables.indices where reading < settings.readers {
            let table = tables[index]
            guard table.reading == nil, !table.exhausted,
                table.inFlight.count < settings.chunksInFlightPerTable
            else { continue }
            let mark = SeedMark(run: run, chunk: nextChunk)
            nextChunk += 1
            tables[index].reading = mark
            reading += 1
            actions.append(.read(table: index, after: table.readAfter, mark: mark))
        }
        return actions
    }

    /// Rows read but not yet durable (what a crash now would have read again).
    public var rowsInFlight: Int {
        tables.reduce(0) { $0 + $1.inFlight.reduce(0) { $0 + $1.rows } }
    }
}
