import CaptureKit
import Foundation
import Logging
import TandemCore
import TandemProcedures
import TandemSeed

/// `tandem seed` as an agent runs it. The seed is the primary site's agent's work (it reads the
/// chunks and writes their marks into the log its capture reads); the DR site's agent answers
/// that agent's calls on its own database (inspect, empty, create the schema) and forwards its
/// operator's `seed` and `seed-status` to the primary's agent. Either site's CLI sees the same seed.
///
/// An unfinished seed (`seed.json` not `done`) is continued by the primary's agent as soon as it
/// starts, before its capture reads anything: its tables must be marked as being copied from the
/// first change read again, or a change to a row not yet copied would look like a diverged copy.
public final class AgentSeed: @unchecked Sendable {
    // @unchecked: `driver`, `feed` and `lastStatus` are guarded by `lock`; the rest is immutable.
    let role: AgentRole
    let calls: LinkCalls
    let board: StatusBoard
    let logger: Logger
    let file: SeedProgressFile
    let makeSource: @Sendable () throws -> any SeedSource
    let makeTarget: @Sendable () throws -> any SeedTarget
    private let lock = NSLock()
    private var feed: CopyFeed?
    private var driver: SeedDriver?

    public init(
        role: AgentRole, stateDirectory: String, calls: LinkCalls, board: StatusBoard, logger: Logger,
        makeSource: @escaping @Sendable () throws -> any SeedSource,
        makeTarget: @escaping @Sendable () throws -> any SeedTarget
    ) {
        self.role = role
        self.calls = calls
        self.board = board
        self.logger = logger
        self.makeSource = makeSource
        self.makeTarget = makeTarget
        file = SeedProgressFile(directory: stateDirectory)
    }

    /// The shipper's capture is built: its feed is where chunks enter the stream. An unfinished
    /// seed is continued now (see the type's comment).
    public func attach(_ feed: CopyFeed?) {
        lock.withLock { self.feed = feed }
        guard let feed else { return }
        do {
            guard let progress = try file.load(), progress.phase != .done else { return }
            feed.setCopying(progress.copying)
            logger.notice("seed: an unfinished seed is continued (\(file.file.path))")
            _ = try start(SeedRequest())
        } catch {
            logger.error("seed: cannot continue the unfinished seed: \(Self.seedError(error).description)")
        }
    }

    /// Stops a running seed (the agent stops).
    public func stop() {
        lock.withLock { driver }?.stop()
    }

    /// `tandem seed` at this site.
    public func start(_ request: SeedRequest) throws(SeedError) -> SeedStatus {
        guard role == .shipper else { return try ask(.start(request)) }
        lock.lock()
        defer { lock.unlock() }
        if let driver, [.preparing, .copying, .finishing].contains(driver.status.state) {
            return withRetainedLog(driver.status)
        }
        guard let feed else {
            throw SeedError(
                "the shipper's capture is not running yet", hint: "Wait until `tandem status` shows the database up.")
        }
        let source = makeSource
        let board = board
        let logger = logger
        let next = SeedDriver(
            request: request, file: file, feed: feed, target: PeerSeedTarget(calls: calls),
            appliedBatch: { board.current?.local.positions.applied?.batch },
            log: { line in logger.notice("\(line)") },
            makeSource: { () throws(SeedError) -> any SeedSource in
                do { return try source() } catch { throw Self.seedError(error) }
            })
        driver = next
        next.start()
        return withRetainedLog(next.status)
    }

    /// `status` with what the primary's log retains for the pair now (see
    /// `SeedStatus.sourceLogRetainedBytes`).
    private func withRetainedLog(_ status: SeedStatus) -> SeedStatus {
        var status = status
        status.sourceLogRetainedBytes = board.current?.local.lag.rpoExposureLogBytes
        return status
    }

    /// `tandem seed` following the progress at this site.
    public func status() throws(SeedError) -> SeedStatus {
        guard role == .shipper else { return try ask(.status) }
        if let driver = lock.withLock({ driver }) { return withRetainedLog(driver.status) }
        guard let progress = try file.load() else { return SeedStatus(state: .none) }
        let state: SeedStatus.State = progress.phase == .done ? .done : .failed
        var status = SeedStatus(
            state, progress: progress, elapsed: 0, rowsAtStart: progress.rows, bytesAtStart: progress.bytes,
            rowsInFlight: 0)
        if state == .failed {
            status.error = SeedError(
                "the seed is unfinished and not running", hint: "Run `tandem seed` to continue it.")
        }
        return status
    }

    /// The peer's seed call (a thread of `LinkCalls`).
    public func answer(_ body: [UInt8]) -> [UInt8] {
        let answer: SeedCall.Answer
        do throws(SeedError) {
            let call = try SeedCall.decode(body)
            switch call {
            case .start(let request): answer = .status(try start(request))
            case .status: answer = .status(try status())
            case .inspect(let names):
                let states = try onTarget { target throws(SeedError) in try target.inspect(names.map(\.relation)) }
                answer = .states(states.map { SeedCall.TableState(table: .init($0.key), state: $0.value) })
            case .truncate(let names):
                try onTarget { target throws(SeedError) in try target.truncate(names.map(\.relation)) }
                answer = .done
            case .run(let script):
                try onTarget { target throws(SeedError) in try target.run(script: script) }
                answer = .done
            }
        } catch {
            answer = .failed(error)
        }
        return SeedCall.encode(answer)
    }

    /// `body` on a new connection to this site's database (the DR site's, for the seed's calls).
    private func onTarget<T>(_ body: (any SeedTarget) throws(SeedError) -> T) throws(SeedError) -> T {
        guard role == .applier else {
            throw SeedError(
                "the peer asked the primary site to write its database",
                hint: "Both agents must agree on their roles; check `tandem status` on each site.")
        }
        let target: any SeedTarget
        do { target = try makeTarget() } catch { throw Self.seedError(error) }
        defer { target.close() }
        return try body(target)
    }

    private func ask(_ call: SeedCall) throws(SeedError) -> SeedStatus {
        switch try PeerSeedTarget(calls: calls).ask(call) {
        case .status(let status): return status
        case .failed(let error): throw error
        default: throw SeedError("the primary site's agent answered the seed request oddly", hint: "Report it.")
        }
    }

    static func seedError(_ error: any Error) -> SeedError {
        if let error = error as? SeedError { return error }
        if let error = error as? any OperatorError { return SeedError(error.description, hint: error.hint) }
        return SeedError("\(error)", hint: "Check the [database] section and that the database answers.")
    }
}

/// The DR site's `SeedTarget`, reached through the pair's link.
final class PeerSeedTarget: SeedTarget {
    let calls: LinkCalls

    init(calls: LinkCalls) {
        self.calls = calls
    }

    func ask(_ call: SeedCall) throws(SeedError) -> SeedCall.Answer {
        let bytes: [UInt8]
        do throws(LinkCallError) { bytes = try calls.call(.seed, SeedCall.encode(call)) } catch {
            throw SeedError(
                "cannot reach the peer site's agent: \(error.description)",
                hint: "Check `tandem status`: the seed needs the link up and both agents running.")
        }
        return try SeedCall.decodeAnswer(bytes)
    }

    func inspect(_ tables: [RelationName]) throws(SeedError) -> [RelationName: TargetTableState] {
        switch try ask(.inspect(tables.map(SeedCall.Table.init))) {
        case .states(let states):
            return Dictionary(states.map { ($0.table.relation, $0.state) }, uniquingKeysWith: { a, _ in a })
        case .failed(let error): throw error
        default: throw SeedError("the DR site's agent answered an inspection oddly", hint: "Report it.")
        }
    }

    func truncate(_ tables: [RelationName]) throws(SeedError) {
        try expectDone(ask(.truncate(tables.map(SeedCall.Table.init))))
    }

    func run(script: String) throws(SeedError) {
        try expectDone(ask(.run(script)))
    }

    private func expectDone(_ answer: SeedCall.Answer) throws(SeedError) {
        switch answer {
        case .done: return
        case .failed(let error): throw error
        default: throw SeedError("the DR site's agent answered oddly", hint: "Report it.")
        }
    }

    func close() {}
}

/// The seed's calls between the agents, as JSON.
enum SeedCall: Codable, Sendable {
    case start(SeedRequest)
    case status
    case inspect([Table])
    case truncate([Table])
    case run(String)

    struct Table: Codable, Sendable, Hashable {
        var schema: String
        var name: String
        init(_ relation: RelationName) {
            schema = relation.schema
            name = relation.name
        }
        var relation: RelationName { RelationName(schema: schema, name: name) }
    }

    struct TableState: Codable, Sendable {
        var table: Table
        var state: TargetTableState
    }

    enum Answer: Codable, Sendable {
        case status(SeedStatus)
        case states([TableState])
        case done
        case failed(SeedError)
    }

    static func encode(_ value: some Encodable) -> [UInt8] {
        (try? Array(JSONEncoder().encode(value))) ?? []
    }

    static func decode(_ bytes: [UInt8]) throws(SeedError) -> SeedCall {
        do { return try JSONDecoder().decode(SeedCall.self, from: Data(bytes)) } catch {
            throw SeedError("the peer's seed call is unreadable", hint: "Both sites must run the same Tandem version.")
        }
    }

    static func decodeAnswer(_ bytes: [UInt8]) throws(SeedError) -> Answer {
        do { return try JSONDecoder().decode(Answer.self, from: Data(bytes)) } catch {
            throw SeedError(
                "the peer's answer to a seed call is unreadable", hint: "Both sites must run the same Tandem version.")
        }
    }
}
