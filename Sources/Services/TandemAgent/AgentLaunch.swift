import ApplyKit
import CaptureKit
import Dispatch
import Foundation
import Logging
import TandemConfig
import TandemControl
import TandemCore
import TandemMetrics
import TandemProcedures
import TandemSeed
import TandemStatus
import TandemVerify

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where an agent's capture or apply comes from once its role is known. The shipped agent
/// takes the site's engine from the registry, after its start-up check (`CheckedEngines`);
/// the test agent puts synthetic ones in their place. Either returns nil when the agent was
/// stopped while it waited for its database.
public protocol AgentParts: Sendable {
    func source(site: SiteConfig, link: AgentLinkSettings, retry: FailureRetry, logger: Logger) async throws
        -> (any BatchSource)?
    func sink(site: SiteConfig, stream: StreamID, link: AgentLinkSettings, retry: FailureRetry, logger: Logger)
        async throws -> (any BatchSink)?
    /// A verify side on this site's database (a new connection each call).
    func verifySide(site: SiteConfig) throws -> any VerifySide
    /// The seed's sides on this site's database (new connections each call).
    func seedSource(site: SiteConfig) throws -> any SeedSource
    func seedTarget(site: SiteConfig) throws -> any SeedTarget
}

/// The parts of a real agent: the site's `[database] engine` from `registry`, used only once
/// its database passed the start-up check (`StartupCheck` decides between waiting and exiting).
public struct CheckedEngines: AgentParts {
    public let registry: EngineRegistry

    public init(registry: EngineRegistry) {
        self.registry = registry
    }

    public func verifySide(site: SiteConfig) throws -> any VerifySide {
        try registry.entry(for: site.database.engine).verifySide(site: site)
    }

    public func seedSource(site: SiteConfig) throws -> any SeedSource {
        try registry.entry(for: site.database.engine).seedSource(site: site)
    }

    public func seedTarget(site: SiteConfig) throws -> any SeedTarget {
        try registry.entry(for: site.database.engine).seedTarget(site: site)
    }

    public func source(site: SiteConfig, link: AgentLinkSettings, retry: FailureRetry, logger: Logger) async throws
        -> (any BatchSource)?
    {
        guard let engine = try await checked(site, link, .capture, retry, logger) else { return nil }
        return try engine.source(site: site, link: link, logger: logger)
    }

    public func sink(site: SiteConfig, stream: StreamID, link: AgentLinkSettings, retry: FailureRetry, logger: Logger)
        async throws -> (any BatchSink)?
    {
        guard let engine = try await checked(site, link, .apply, retry, logger) else { return nil }
        return try engine.sink(site: site, stream: stream, logger: logger)
    }

    private func checked(
        _ site: SiteConfig, _ link: AgentLinkSettings, _ use: DatabaseUse, _ retry: FailureRetry, _ logger: Logger
    ) async throws -> (any AgentEngine)? {
        let engine = try registry.entry(for: site.database.engine)
        let ready = try await StartupCheck.wait(for: use, retry: retry, logger: logger) {
            engine.check(site: site, link: link, for: use, logger: logger)
        }
        return ready ? engine : nil
    }
}

/// How an agent process starts, the same for `tandem agent` and the test agent: the site's
/// configuration, its role from the pair journal (`requestedRole` only bootstraps it on the
/// first start), then the shipper or the applier service on the parts for that role.
public struct AgentLaunch: Sendable {
    public var configPath: String
    public var requestedRole: AgentRole?
    /// Replaces the link's reconnect backoff (tests shorten it).
    public var reconnectBackoff: ReconnectBackoff?
    /// How a failed capture, apply or database check is retried.
    public var retry: FailureRetry

    public init(
        configPath: String, requestedRole: AgentRole?, reconnectBackoff: ReconnectBackoff? = nil,
        retry: FailureRetry = FailureRetry()
    ) {
        self.configPath = configPath
        self.requestedRole = requestedRole
        self.reconnectBackoff = reconnectBackoff
        self.retry = retry
    }

    /// Runs the agent until it is cancelled (then it says goodbye to its peer and returns).
    /// With `[metrics] listen` set, the metrics endpoint runs alongside, fed from `metrics`
    /// (a port already in use ends the start with `MetricsEndpointError`).
    public func run(parts: some AgentParts) async throws {
        let site = try SiteConfig.load(path: configPath)
        LogOutput.adopt(configured: site.log.format)
        var settings = try AgentLinkSettings(config: site)
        if let reconnectBackoff { settings.backoff = reconnectBackoff }
        let role = try RoleJournal(spoolRoot: site.spool.directory).resolve(requested: requestedRole)
        var logger = Logger(label: "tandem.agent")
        logger[metadataKey: "site"] = "\(site.site.name)"
        logger.info("agent: site \(site.site.name) of pair \(site.site.pair) runs as the \(role.rawValue)")
        let identity = StatusIdentity(
            site: site.site.name, pair: site.site.pair, role: role.rawValue, engine: site.database.engine.rawValue,
            startedAt: Date().timeIntervalSince1970)
        // Where the service publishes its report, for the control socket and the metrics endpoint.
        let board = StatusBoard(thresholds: AlertThresholds(site.alerts))
        // The control socket answers from before the services start (status while the agent
        // waits for its database) until after they stopped. Failing to create it is a start-up
        // error: an agent nobody can ask or steer must not run unnoticed.
        // The agents' calls to each other (verify), answered on this site's database.
        let calls = LinkCalls()
        let verify = AgentVerify(
            role: role, engine: site.database.engine, calls: calls, board: board, logger: logger
        ) { try parts.verifySide(site: site) }
        calls.answer(.verify, with: verify.answer)
        // The seed's progress lives beside the pair journal, on the site that reads the chunks.
        let seed = AgentSeed(
            role: role, stateDirectory: site.spool.directory, calls: calls, board: board, logger: logger,
            makeSource: { try parts.seedSource(site: site) }, makeTarget: { try parts.seedTarget(site: site) })
        calls.answer(.seed, with: seed.answer)
        defer { seed.stop() }
        let control = AgentControl(
            status: BoardStatus(board: board, identity: identity), logger: logger, verify: verify, seed: seed)
        let server = try ControlServer(config: site.control, logger: logger) { control.handle($0, from: $1) }
        defer { server.stop() }
        // The metrics endpoint samples the same board: one set of figures, two readers.
        let metrics = AgentMetricsFeed(role: role, site: site)
        metrics.attach { [labels = metrics.labels] in MetricsSample(labels, from: board.current) }
        let publisher = try await metrics.publish(site.metrics, logger: logger)
        do {
            try await runService(
                role, site: site, settings: settings, parts: parts, identity: identity, board: board, calls: calls,
                seed: seed, logger: logger)
        } catch {
            await publisher?.stop()
            throw error
        }
        await publisher?.stop()
    }

    /// The shipper or applier service, publishing its report on `board`.
    private func runService(
        _ role: AgentRole, site: SiteConfig, settings: AgentLinkSettings, parts: some AgentParts,
        identity: StatusIdentity, board: StatusBoard, calls: LinkCalls, seed: AgentSeed, logger: Logger
    ) async throws {
        switch role {
        case .shipper:
            guard let source = try await parts.source(site: site, link: settings, retry: retry, logger: logger)
            else { return }
            defer { source.stop() }
            // Before the capture starts (the applier's HELLO starts it): an unfinished seed marks
            // its tables first.
            seed.attach(source.copyFeed)
            try await ShipperService(
                settings: settings, source: source, logger: logger, sourceRetry: retry, identity: identity,
                board: board,
                calls: calls
            ).run()
        case .applier:
            let stream = settings.stream(shippedBy: settings.peerSite)
            let opened = try await Self.openSink(retry: retry, logger: logger) {
                try await parts.sink(site: site, stream: stream, link: settings, retry: retry, logger: logger)
            }
            guard let (sink, checkpoint) = opened else { return }
            try await ApplierService(
                settings: settings, stream: stream, spoolRoot: site.spool.directory,
                spoolLimit: site.spool.maxBytes.map { Int64($0.bytes) }, sink: sink, checkpoint: checkpoint,
                applyRetry: retry, logger: logger, identity: identity, board: board, calls: calls
            ).run()
        }
    }

    /// The applier's sink and its checkpoint, which the spool is opened from. The start-up check
    /// passed moments before, but the database can fail between that check and opening the sink
    /// or reading its checkpoint: such an outage (a transient failure, `FailureRetry.urgency`)
    /// sends the agent back to `open` (which checks and waits again), with backoff, and never
    /// ends it. Any other failure is a setup problem and is thrown. Nil: stopped while waiting.
    static func openSink(
        retry: FailureRetry, logger: Logger, sleep: (Duration) async -> Void = { try? await Task.sleep(for: $0) },
        open: () async throws -> (any BatchSink)?
    ) async throws -> (any BatchSink, SinkCheckpoint)? {
        var retry = retry
        var random = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            do {
                guard let sink = try await open() else { return nil }
                let checkpoint = try sink.checkpoint()
                if let line = retry.succeeded(at: .now) { logger.info("database: ready for apply: \(line)") }
                return (sink, checkpoint)
            } catch  where FailureRetry.urgency(of: error) == .transient {
                let (delay, line) = retry.failed(
                    FailureRetry.describe(error), urgency: .transient, at: .now, using: &random)
                if let line { logger.warning("database: failed while opening apply, waiting: \(line)") }
                await sleep(delay)
            }
        }
        return nil
    }

    /// Runs `body` until it ends or SIGTERM (systemd's stop) or SIGINT cancels it. A cancelled
    /// agent says goodbye to its peer and ends normally; being killed outright is also safe,
    /// only less polite.
    public static func runUntilSignalled(_ body: @escaping @Sendable () async throws -> Void) async throws {
        let agent = Task { try await body() }
        let stops = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { agent.cancel() }
            source.resume()
            return source
        }
        defer { for stop in stops { stop.cancel() } }
        try await agent.value
    }
}
