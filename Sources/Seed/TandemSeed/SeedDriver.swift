import CaptureKit
import Foundation
import TandemCore
import TandemVerify

/// Runs a seed at the primary site's agent: prepares the DR site, then carries out `SeedRun`'s
/// actions — chunk reads on reader threads with a connection each, progress saved to
/// `seed.json` — and finishes with the schema's second part once the DR site applied the copy.
/// Every decision about chunks is `SeedRun`'s; this type only executes and reports.
///
/// Blocking work runs on threads of its own (see `OwnThread`), never on a dispatch queue.
public final class SeedDriver: @unchecked Sendable {
    // @unchecked: `current`, `events` and `stopping` are guarded by `lock`; the rest is set once.
    let request: SeedRequest
    let file: SeedProgressFile
    let feed: CopyFeed
    let makeSource: @Sendable () throws(SeedError) -> any SeedSource
    let target: any SeedTarget
    /// The highest batch the DR site reports applied (nil while unknown).
    let appliedBatch: @Sendable () -> UInt64?
    let log: @Sendable (String) -> Void
    let clock: @Sendable () -> Double

    private let lock = NSLock()
    private let wake = DispatchSemaphore(value: 0)
    private var current = SeedStatus(state: .preparing)
    private var events: [SeedRun.Event] = []
    private var stopping = false

    public init(
        request: SeedRequest, file: SeedProgressFile, feed: CopyFeed, target: any SeedTarget,
        appliedBatch: @escaping @Sendable () -> UInt64?, log: @escaping @Sendable (String) -> Void,
        clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        makeSource: @escaping @Sendable () throws(SeedError) -> any SeedSource
    ) {
        self.request = request
        self.file = file
        self.feed = feed
        self.target = target
        self.appliedBatch = appliedBatch
        self.log = log
        self.clock = clock
        self.makeSource = makeSource
    }

    public var status: SeedStatus { lock.withLock { current } }

    /// Starts the run on its own thread.
    public func start() {
        OwnThread.run("tandem-seed") { [self] in
            let final = run()
            lock.withLock { current = final }
        }
    }

    /// Asks the run to stop (the agent stops); reads under way finish first.
    public func stop() {
        lock.withLock { stopping = true }
        wake.signal()
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    private func publish(_ status: SeedStatus) { lock.withLock { current = status } }

    private func failed(_ error: SeedError, progress: SeedProgress? = nil) -> SeedStatus {
        log("seed: stopped: \(error.description) (\(error.hint))")
        var status =
            progress.map {
                SeedStatus(
                    .failed, progress: $0, elapsed: 0, rowsAtStart: $0.rows, bytesAtStart: $0.bytes, rowsInFlight: 0)
            } ?? SeedStatus(state: .failed)
        status.error = error
        return status
    }

    /// The whole seed, blocking; its final status.
    func run() -> SeedStatus {
        var progress: SeedProgress
        var resumed: [String] = []
        do throws(SeedError) {
            if let stored = try file.load(), stored.phase != .done {
                progress = stored
                resumed = stored.resumeLines
                if let names = request.tables,
                    Set(names) != Set(stored.tables.map(\.table.description))
                {
                    throw SeedError(
                        "a seed of \(stored.tables.map(\.table.description).joined(separator: ", ")) is under way",
                        hint:
                            "Run `tandem seed` without --tables to continue it, or remove \(file.file.path) to start over."
                    )
                }
                feed.setCopying(progress.copying)
                log("seed: continuing the seed started at \(Self.time(stored.startedAt)):")
                for line in resumed { log("seed:   \(line)") }
            } else {
                progress = try prepare()
            }
        } catch {
            return failed(error)
        }
        let rowsAtStart = progress.rows
        let bytesAtStart = progress.bytes
        let started = clock()
        /// The run's figures: the rate counts this run only, from what was durable at its start.
        func report(_ state: SeedStatus.State, _ progress: SeedProgress, rowsInFlight: Int = 0) -> SeedStatus {
            var status = SeedStatus(
                state, progress: progress, elapsed: clock() - started, rowsAtStart: rowsAtStart,
                bytesAtStart: bytesAtStart, rowsInFlight: rowsInFlight)
            status.resumed = resumed
            return status
        }
        if progress.phase == .copying {
            do throws(SeedError) {
                progress = try copy(progress) { report(.copying, $0, rowsInFlight: $1) }
            } catch {
                return failed(error, progress: progress)
            }
        }
        var status: SeedStatus { report(progress.phase == .copying ? .copying : .finishing, progress) }
        if isStopping { return status }
        publish(status)
        do throws(SeedError) { try finish(&progress) } catch { return failed(error, progress: progress) }
        if isStopping { return status }
        var done = status
        done.state = .done
        done.etaSeconds = nil
        log(
            "seed: done: \(progress.rows) rows (\(progress.bytes) bytes) in \(progress.tables.count) tables, in \(Int(clock() - started)) s"
        )
        return done
    }

    /// A new seed: the tables at the primary, the DR site checked, the missing schema created,
    /// the progress written, and the tables marked as being copied before the first chunk.
    func prepare() throws(SeedError) -> SeedProgress {
        let source = try makeSource()
        defer { source.close() }
        let tables = try source.tables(request.tables)
        guard !tables.isEmpty else {
            throw SeedError(
                "there is no table to copy", hint: "Check the capture's table selection, or name tables with --tables.")
        }
        log("seed: \(tables.count) tables to copy: \(tables.map(\.description).joined(separator: ", "))")
        let states = try target.inspect(tables.map(\.name))
        let holding = tables.filter { states[$0.name] == .holdsRows }
        if !holding.isEmpty && !request.truncateTarget {
            throw SeedError(
                "the DR site's \(holding.map(\.description).joined(separator: ", ")) already "
                    + (holding.count == 1 ? "holds rows" : "hold rows"),
                hint:
                    "A seed copies into empty tables only. Run it with --truncate-target to empty them first (their rows are lost at the DR site)."
            )
        }
        // From here on (the DR site accepted the seed), changes to these tables are applied
        // leniently (README, "Seed"): every chunk is read after this point, so each holds the
        // effect of a change the DR site could not apply exactly for want of the row. Taken
        // back if the seed cannot start.
        feed.setCopying(Set(tables.map(\.name)))
        var started = false
        defer { if !started { feed.setCopying([]) } }
        let missing = tables.filter { states[$0.name] == .missing || states[$0.name] == nil }
        var afterScript = ""
        if !missing.isEmpty {
            let schema = try source.schema(for: missing)
            log("seed: creating \(missing.map(\.description).joined(separator: ", ")) at the DR site")
            try target.run(script: schema.before)
            afterScript = schema.after
        }
        if !holding.isEmpty {
            log(
                "seed: emptying \(holding.map(\.description).joined(separator: ", ")) at the DR site (--truncate-target)"
            )
            try target.truncate(holding.map(\.name))
        }
        let progress = SeedProgress(tables: tables, afterScript: afterScript, startedAt: clock())
        try file.save(progress)
        feed.setCopying(progress.copying)
        started = true
        return progress
    }

    /// The copy: `SeedRun` driven until every chunk is durable (or a failure, or a stop).
    func copy(
        _ progress: SeedProgress, status: (SeedProgress, Int) -> SeedStatus
    ) throws(SeedError) -> SeedProgress {
        let settings = SeedRun.Settings(chunkRows: request.chunkRows, readers: max(1, request.readers))
        var run = SeedRun(progress: progress, run: UInt64.random(in: 1...UInt64.max), settings: settings)
        let readers = (0..<settings.readers).map { _ in Reader(driver: self) }
        defer { for reader in readers { reader.close() } }
        var free = Array(readers.indices)
        var busy: [SeedMark: Int] = [:]
        var pending = run.start()
        var dirty = false
        var savedAt = clock()
        var copied = false
        while !copied {
            for action in pending {
                switch action {
                case .read(let table, let after, let mark):
                    let reader = free.removeFirst()
                    busy[mark] = reader
                    readers[reader].read(
                        run.progress.tables[table].table, after: after, rows: settings.chunkRows, mark: mark)
                case .save:
                    dirty = true
                    feed.setCopying(run.progress.copying)
                case .copied:
                    copied = true
                case .failed(let error):
                    throw error
                }
            }
            pending = []
            if dirty, copied || clock() - savedAt >= 0.5 {
                var saving = run.progress
                if copied { saving.lastCopyBatch = feed.lastCopyBatch }
                try file.save(saving)
                dirty = false
                savedAt = clock()
            }
            if copied { break }
            publish(status(run.progress, run.rowsInFlight))
            if isStopping { return run.progress }
            _ = wake.wait(timeout: .now() + .milliseconds(50))
            let happened = lock.withLock { () -> [SeedRun.Event] in
                defer { events.removeAll() }
                return events
            }
            for event in happened {
                switch event {
                case .read(let mark, _, _, _, _), .readFailed(let mark, _):
                    if let reader = busy.removeValue(forKey: mark) { free.append(reader) }
                case .durable: break
                }
                pending += run.handle(event)
            }
            for mark in feed.collectDurable() { pending += run.handle(.durable(mark)) }
        }
        var finished = run.progress
        finished.lastCopyBatch = feed.lastCopyBatch
        return finished
    }

    /// Waits until the DR site applied the last batch of copied rows, then runs the schema's
    /// second part there and marks the seed done.
    func finish(_ progress: inout SeedProgress) throws(SeedError) {
        let last = progress.lastCopyBatch
        log("seed: every chunk is durable at the DR site; waiting for it to apply batch \(last)")
        while !isStopping {
            if let applied = appliedBatch(), applied >= last { break }
            _ = wake.wait(timeout: .now() + .milliseconds(250))
        }
        if isStopping { return }
        if !progress.afterScript.isEmpty {
            log("seed: creating indexes and constraints at the DR site")
            try target.run(script: progress.afterScript)
        }
        progress.phase = .done
        try file.save(progress)
        feed.setCopying([])
    }

    fileprivate func post(_ event: SeedRun.Event) {
        lock.withLock { events.append(event) }
        wake.signal()
    }

    static func time(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }

    /// One reader: a thread per read, and a primary connection kept between reads (dropped after
    /// a failure, so the next read reconnects).
    private final class Reader: @unchecked Sendable {
        // @unchecked: `source` is used by one read at a time (the run gives a reader one read).
        unowned let driver: SeedDriver
        private var source: (any SeedSource)?

        init(driver: SeedDriver) {
            self.driver = driver
        }

        func read(_ table: SeedTable, after: KeyValue?, rows: Int, mark: SeedMark) {
            OwnThread.run("tandem-seed-read") { [self] in
                var offered = false
                do throws(SeedError) {
                    if source == nil { source = try driver.makeSource() }
                    let chunk = try source!.readChunk(table, after: after, rows: rows, mark: mark) { copied in
                        driver.feed.offer(mark, rows: copied)
                        offered = true
                    }
                    driver.post(
                        .read(
                            mark, rows: chunk.rows.count, bytes: chunk.bytes, last: chunk.last,
                            exhausted: chunk.exhausted))
                } catch {
                    // Offered rows stay: the mark may have committed, and then its rows are correct.
                    if !offered { driver.feed.withdraw(mark) }
                    source?.close()
                    source = nil
                    driver.log("seed: reading \(table) failed, reading it again: \(error.description)")
                    driver.post(.readFailed(mark, error))
                }
            }
        }

        func close() {
            source?.close()
            source = nil
        }
    }
}
