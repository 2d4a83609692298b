import TandemCore

/// One verify run as a pure state machine: it takes the tables both sites described and the
/// answers to its requests, and says what to read next; the agent's driver only carries the
/// requests out (on its own database, and on the peer's over the link) and hands back answers.
///
/// ## How a table is compared
/// 1. **Walk**: the primary's key order is cut into chunks of `chunkRows` rows (`boundary`); the
///    first chunk starts before every key and the last one ends after every key, so the chunks
///    cover the whole key space and a row only the DR site has falls in one of them too.
/// 2. **Compare**: each chunk's count and digest at both sites at once (`both(.checksum)`).
/// 3. **Re-check** a chunk that differs, since on a live pair the DR site is simply behind: read
///    the primary and its log position P, wait until the DR site has applied through P, read the
///    DR site, read the primary again. Equal to the first primary read → in sync (it was lag).
///    Different while the primary did not change in between → really different: split it.
///    The primary changed → another round, up to `recheckRounds`, then split anyway.
/// 4. **Split** a differing chunk at the middle row of the site that holds more rows in it, until
///    a part holds at most `fetchRows` rows at both sites; then **fetch** those rows' column
///    digests at both sites and compare them by key.
/// 5. Each row that differs is **re-checked** the same way as a chunk ("maybe out of sync").
///    It is reported ("confirmed out of sync": missing at DR, extra at DR, or different in named
///    columns) only when the DR site, having applied everything the primary read had seen,
///    still differs from it and the primary row did not change meanwhile. A row that changes
///    at every round is reported as unsettled, never as a difference.
///
/// The argument for step 3 and 5: the primary's read saw only commits before P; a DR site that
/// has applied through P holds at least those, so it holds the primary's value unless a later
/// commit touched the row — and then the second primary read differs from the first. What
/// remains is a row changed and changed back between the two primary reads; that costs a false
/// "different" only if the DR site then lags into exactly the middle state, and a later verify
/// shows it again or not.
public struct VerifyRun: Sendable {
    public struct Settings: Hashable, Sendable {
        public var chunkRows: Int
        /// A differing range this small (at both sites) is compared row by row.
        public var fetchRows: Int
        /// Requests outstanding at once (each `both` is one query at each site).
        public var maxInFlight: Int
        public var recheckRounds: Int

        public init(chunkRows: Int = 10_000, fetchRows: Int = 64, maxInFlight: Int = 2, recheckRounds: Int = 3) {
            self.chunkRows = max(chunkRows, 2)
            self.fetchRows = max(fetchRows, 1)
            self.maxInFlight = max(maxInFlight, 1)
            self.recheckRounds = max(recheckRounds, 1)
        }
    }

    public enum Side: String, Hashable, Sendable { case primary, dr }
    public enum Read: String, Hashable, Sendable { case checksum, rows }

    public enum Request: Hashable, Sendable {
        /// The key `rows` rows after `after` in `side`'s key order (nil: fewer remain).
        case boundary(Side, VerifyTable, after: KeyValue?, rows: Int)
        /// The same read at both sites at once.
        case both(Read, VerifyTable, KeyRange, limit: Int)
        /// One site's read; at the primary, followed by its current log position.
        case one(Side, Read, VerifyTable, KeyRange, limit: Int)
        /// Wait until the DR site has applied through `position`.
        case waitApplied(Position)
    }

    public enum Answer: Sendable {
        case boundary(KeyValue?)
        case sums(primary: ChunkSum, dr: ChunkSum)
        case rows(primary: [VerifyRow], dr: [VerifyRow])
        case sum(ChunkSum, position: Position?)
        case someRows([VerifyRow], position: Position?)
        case applied
        case failed(VerifyError)
    }

    /// What a re-check holds between its phases.
    struct Recheck: Sendable {
        enum Phase: Sendable { case primaryRead, waitApplied, drRead, primaryReread }
        var table: Int
        var range: KeyRange
        var read: Read
        var round = 1
        var phase = Phase.primaryRead
        /// Rows: the keys still in doubt (nil for a chunk re-check).
        var keys: Set<KeyValue>?
        var before: Snapshot?
        var dr: Snapshot?
        var position: Position?
    }

    /// One site's read of a range: a chunk sum, or rows by key (`complete`: the read was not cut
    /// at the row limit, so a key it lacks is really absent).
    enum Snapshot: Sendable, Equatable {
        case sum(ChunkSum)
        case rows([KeyValue: VerifyRow], complete: Bool)
    }

    enum Step: Sendable {
        case walk(table: Int, after: KeyValue?)
        case compare(table: Int, range: KeyRange, counted: Bool)
        case split(table: Int, range: KeyRange, side: Side, rows: UInt64)
        case fetch(table: Int, range: KeyRange)
        case recheck(Recheck)

        var table: Int {
            switch self {
            case .walk(let table, _), .compare(let table, _, _), .split(let table, _, _, _), .fetch(let table, _):
                table
            case .recheck(let recheck): recheck.table
            }
        }
    }

    public let settings: Settings
    public private(set) var report: VerifyReport
    private let tables: [VerifyTable]
    /// Where each compared table's entry is in `report` (which also lists tables not compared).
    private let reportIndex: [Int]
    private var queue: [Step] = []
    private var inFlight: [Int: Step] = [:]
    private var nextID = 1

    /// `primary` and `dr` are the two sites' descriptions of the tables to compare. A table the
    /// DR site lacks, or whose key or columns it lacks, is a schema difference and is not read.
    /// Columns only the DR site has are not compared (a DBA may add one there).
    public init(primary: [VerifyTable], dr: [VerifyTable], settings: Settings = Settings()) {
        self.settings = settings
        var report = VerifyReport()
        var tables: [VerifyTable] = []
        var reportIndex: [Int] = []
        let drTables = Dictionary(dr.map { ("\($0.schema).\($0.name)", $0) }, uniquingKeysWith: { first, _ in first })
        for table in primary {
            var result = VerifyReport.TableResult(table: table.description)
            if let other = drTables[table.description] {
                let missing = table.columns.filter { !other.columns.contains($0) }
                if other.key != table.key || !missing.isEmpty {
                    var detail = "the DR table's definition differs:"
                    if other.key != table.key {
                        detail +=
                            " key (\(other.key.joined(separator: ", "))), primary (\(table.key.joined(separator: ", ")))"
                    }
                    if !missing.isEmpty { detail += " no column \(missing.joined(separator: ", ")) at DR" }
                    result.differences.append(.init(kind: .schema, key: nil, detail: detail))
                } else {
                    queue.append(.walk(table: tables.count, after: nil))
                    tables.append(table)
                    reportIndex.append(report.tables.count)
                }
            } else {
                result.differences.append(.init(kind: .schema, key: nil, detail: "the table is missing at the DR site"))
            }
            report.tables.append(result)
        }
        self.tables = tables
        self.reportIndex = reportIndex
        self.report = report
    }

    public var isFinished: Bool { queue.isEmpty && inFlight.isEmpty }

    /// The requests to start now, each with the id its answer must carry.
    public mutating func next() -> [(id: Int, request: Request)] {
        var started: [(Int, Request)] = []
        while inFlight.count < settings.maxInFlight, !queue.isEmpty {
            let step = queue.removeFirst()
            let id = nextID
            nextID += 1
            inFlight[id] = step
            started.append((id, request(for: step)))
        }
        return started
    }

    private func request(for step: Step) -> Request {
        switch step {
        case .walk(let table, let after):
            return .boundary(.primary, tables[table], after: after, rows: settings.chunkRows)
        case .compare(let table, let range, _):
            return .both(.checksum, tables[table], range, limit: 0)
        case .split(let table, let range, let side, let rows):
            return .boundary(side, tables[table], after: range.lower, rows: Int(max(rows / 2, 1)))
        case .fetch(let table, let range):
            return .both(.rows, tables[table], range, limit: rowLimit)
        case .recheck(let recheck):
            let table = tables[recheck.table]
            let limit = recheck.read == .rows ? rowLimit : 0
            switch recheck.phase {
            case .primaryRead, .primaryReread: return .one(.primary, recheck.read, table, recheck.range, limit: limit)
            case .drRead: return .one(.dr, recheck.read, table, recheck.range, limit: limit)
            case .waitApplied: return .waitApplied(recheck.position!)
            }
        }
    }

    /// Rows fetched per site for one range: more than a split leaves, so a range that grew a
    /// little meanwhile is still read whole; one that grew more is split again.
    private var rowLimit: Int { settings.fetchRows * 4 }

    /// The answer to request `id`.
    public mutating func answer(_ id: Int, _ answer: Answer) {
        guard let step = inFlight.removeValue(forKey: id) else { return }
        let table = step.table
        guard report.tables[index(of: table)].failure == nil else { return }
        if case .failed(let error) = answer {
            report.tables[index(of: table)].failure = error
            queue.removeAll { $0.table == table }
            return
        }
        switch (step, answer) {
        case (.walk(let table, let after), .boundary(let upper)):
            queue.append(.compare(table: table, range: KeyRange(after: after, through: upper), counted: true))
            if let upper { queue.append(.walk(table: table, after: upper)) }
        case (.compare(let table, let range, let counted), .sums(let primary, let dr)):
            if counted {
                report.tables[index(of: table)].rows += primary.rows
                report.tables[index(of: table)].chunks += 1
            }
            if primary != dr { queue.append(.recheck(Recheck(table: table, range: range, read: .checksum))) }
        case (.split(let table, let range, _, _), .boundary(let middle)):
            guard let middle, middle != range.upper, middle != range.lower else {
                queue.append(.fetch(table: table, range: range))
                return
            }
            queue.insert(
                .compare(table: table, range: KeyRange(after: range.lower, through: middle), counted: false), at: 0)
            queue.insert(
                .compare(table: table, range: KeyRange(after: middle, through: range.upper), counted: false), at: 1)
        case (.fetch(let table, let range), .rows(let primary, let dr)):
            // More rows than a split leaves (the range grew meanwhile): split at the middle of
            // the longer read, a key strictly inside the range, so every pass makes progress.
            let longer = primary.count >= dr.count ? primary : dr
            if longer.count >= rowLimit {
                let middle = longer[longer.count / 2].key
                queue.insert(
                    .compare(table: table, range: KeyRange(after: range.lower, through: middle), counted: false), at: 0)
                queue.insert(
                    .compare(table: table, range: KeyRange(after: middle, through: range.upper), counted: false), at: 1)
                return
            }
            let suspects = Self.differingKeys(Self.byKey(primary), Self.byKey(dr))
            if !suspects.isEmpty {
                queue.insert(.recheck(Recheck(table: table, range: range, read: .rows, keys: suspects)), at: 0)
            }
        case (.recheck(var recheck), _):
            advance(&recheck, with: answer)
        default:
            report.tables[index(of: table)].failure = VerifyError(
                "verify got an answer that does not fit its request", hint: "This is a bug in Tandem; report it.")
            queue.removeAll { $0.table == table }
        }
    }

    private mutating func advance(_ recheck: inout Recheck, with answer: Answer) {
        switch (recheck.phase, answer) {
        case (.primaryRead, .sum(let sum, let position)):
            recheck.before = .sum(sum)
            recheck.position = position
        case (.primaryRead, .someRows(let rows, let position)):
            recheck.before = snapshot(rows)
            recheck.position = position
        case (.drRead, .sum(let sum, _)):
            recheck.dr = .sum(sum)
        case (.drRead, .someRows(let rows, _)):
            recheck.dr = snapshot(rows)
        case (.waitApplied, .applied):
            break
        case (.primaryReread, .sum(let sum, _)):
            return settle(recheck, after: .sum(sum))
        case (.primaryReread, .someRows(let rows, _)):
            return settle(recheck, after: snapshot(rows))
        default:
            report.tables[index(of: recheck.table)].failure = VerifyError(
                "verify got an answer that does not fit its re-check", hint: "This is a bug in Tandem; report it.")
            queue.removeAll { $0.table == recheck.table }
            return
        }
        switch recheck.phase {
        case .primaryRead: recheck.phase = recheck.position == nil ? .drRead : .waitApplied
        case .waitApplied: recheck.phase = .drRead
        case .drRead: recheck.phase = .primaryReread
        case .primaryReread: break
        }
        queue.insert(.recheck(recheck), at: 0)
    }

    /// The end of a re-check round: the primary read before (`recheck.before`), the DR read after
    /// it had applied through the primary's position, and the primary read again (`after`).
    private mutating func settle(_ recheck: Recheck, after: Snapshot) {
        var next = recheck
        next.round += 1
        next.phase = .primaryRead
        next.before = nil
        next.dr = nil
        next.position = nil
        let table = recheck.table
        let lastRound = recheck.round >= settings.recheckRounds
        switch (recheck.before, recheck.dr, after) {
        case (.sum(let before)?, .sum(let dr)?, .sum(let again)):
            if dr == before { return }
            if before == again || lastRound {
                let rows = max(before.rows, dr.rows)
                if rows <= UInt64(settings.fetchRows) {
                    queue.insert(.fetch(table: table, range: recheck.range), at: 0)
                } else {
                    let side: Side = before.rows >= dr.rows ? .primary : .dr
                    queue.insert(.split(table: table, range: recheck.range, side: side, rows: rows), at: 0)
                }
                return
            }
            queue.insert(.recheck(next), at: 0)
        case (
            .rows(let before, let beforeComplete)?, .rows(let dr, let drComplete)?, .rows(let again, let againComplete)
        ):
            let complete = beforeComplete && drComplete && againComplete
            var doubtful = Set<KeyValue>()
            for key in recheck.keys ?? [] {
                let primaryRow = before[key]
                let drRow = dr[key]
                if primaryRow?.columns == drRow?.columns, primaryRow != nil || complete { continue }
                if complete, primaryRow?.columns == again[key]?.columns {
                    report.tables[index(of: table)].differences.append(
                        Self.difference(key: key, primary: primaryRow, dr: drRow, columns: tables[table].columns))
                } else {
                    doubtful.insert(key)
                }
            }
            guard !doubtful.isEmpty else { return }
            if lastRound {
                report.tables[index(of: table)].unsettled += doubtful.sorted { $0.display < $1.display }
            } else {
                next.keys = doubtful
                queue.insert(.recheck(next), at: 0)
            }
        default:
            report.tables[index(of: table)].failure = VerifyError(
                "verify's re-check lost a read", hint: "This is a bug in Tandem; report it.")
            queue.removeAll { $0.table == table }
        }
    }

    private func snapshot(_ rows: [VerifyRow]) -> Snapshot {
        .rows(Self.byKey(rows), complete: rows.count < rowLimit)
    }

    static func byKey(_ rows: [VerifyRow]) -> [KeyValue: VerifyRow] {
        Dictionary(rows.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
    }

    static func differingKeys(_ primary: [KeyValue: VerifyRow], _ dr: [KeyValue: VerifyRow]) -> Set<KeyValue> {
        var keys = Set<KeyValue>()
        for (key, row) in primary where dr[key]?.columns != row.columns { keys.insert(key) }
        for key in dr.keys where primary[key] == nil { keys.insert(key) }
        return keys
    }

    static func difference(key: KeyValue, primary: VerifyRow?, dr: VerifyRow?, columns: [String])
        -> VerifyReport.Difference
    {
        guard let primary else { return .init(kind: .extraAtDR, key: key) }
        guard let dr else { return .init(kind: .missingAtDR, key: key) }
        let differing = zip(columns, zip(primary.columns, dr.columns)).filter { $0.1.0 != $0.1.1 }.map(\.0)
        return .init(kind: .different, key: key, columns: differing)
    }

    private func index(of table: Int) -> Int { reportIndex[table] }
}
