import ApplyKit
import ArgumentParser
import CaptureKit
import Dispatch
import Foundation
import Logging
import TandemAgent
import TandemConfig
import TandemCore
import TandemLink
import TandemProcedures

extension AgentRole: ExpressibleByArgument {}

/// `tandem agent --config site.toml`: this site's long-lived agent.
///
/// The role comes from the pair journal (`role.journal` in the spool root, see
/// `RoleJournal`); `--role` only bootstraps it on the first start. Capture and apply come
/// from the engine registry (`agentEngines`) by `[database] engine`; the hidden synthetic
/// source and sink are for the agent process tests.
///
/// Before it dials or listens, the agent checks its database (`AgentEngine.check`): a setup
/// problem (credentials, a privilege, a setting) exits 1 with one line and a hint; a database
/// that does not answer is waited for (see `StartupCheck` for why). Once running, a failing
/// database, capture or apply never ends the process: it is retried (`FailureRetry`).
struct Agent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run this site's agent (shipper or applier, as the pair's journal says).")

    @Option(help: "The site's TOML configuration.") var config: String
    @Option(help: "First start only: record this site's role (shipper or applier) in the pair journal.")
    var role: AgentRole?

    @Option(help: .hidden) var syntheticBatches: UInt64?
    @Option(help: .hidden) var syntheticSink: String?
    @Option(help: .hidden) var reconnectMaxDelayMs: Int?
    /// Caps the retry delay of a failed capture, apply or database check (tests).
    @Option(help: .hidden) var retryMaxDelayMs: Int?
    /// The synthetic source or sink fails when it reaches this batch, `syntheticFailTimes` times.
    @Option(help: .hidden) var syntheticFailAt: UInt64?
    @Option(help: .hidden) var syntheticFailTimes: Int = 3

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        options.bootstrapLogging()
        // SIGTERM (systemd stop) and SIGINT cancel the agent, which says goodbye to
        // the peer and exits 0. Being killed outright is also safe, only less polite.
        let agent = Task { try await runAgent() }
        let stops = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { agent.cancel() }
            source.resume()
            return source
        }
        defer { for stop in stops { stop.cancel() } }
        do {
            try await agent.value
        } catch {
            throw report(error)
        }
    }

    private func runAgent() async throws {
        let site = try SiteConfig.load(path: config)
        var settings = try AgentLinkSettings(config: site)
        if let reconnectMaxDelayMs {
            settings.backoff = ReconnectBackoff(
                minimumDelay: .milliseconds(min(50, reconnectMaxDelayMs)),
                maximumDelay: .milliseconds(reconnectMaxDelayMs))
        }
        let role = try RoleJournal(spoolRoot: site.spool.directory).resolve(requested: role)
        var logger = Logger(label: "tandem.agent")
        logger[metadataKey: "site"] = "\(site.site.name)"
        logger.info("agent: site \(site.site.name) of pair \(site.site.pair) runs as the \(role.rawValue)")
        let retry = retryMaxDelayMs.map { FailureRetry(maximumDelay: .milliseconds($0)) } ?? FailureRetry()
        let failures = syntheticFailAt.map { SyntheticFailures(at: $0, times: syntheticFailTimes) }
        switch role {
        case .shipper:
            let source: any BatchSource
            if let count = syntheticBatches {
                source = try SyntheticSource(
                    stream: settings.stream(shippedBy: settings.localSite), count: count, failures: failures)
            } else {
                guard let engine = try await checkedEngine(site, settings, .capture, retry, logger) else { return }
                source = try engine.source(site: site, link: settings, logger: logger)
            }
            defer { source.stop() }
            try await ShipperService(settings: settings, source: source, logger: logger, sourceRetry: retry).run()
        case .applier:
            let stream = settings.stream(shippedBy: settings.peerSite)
            let sink: any BatchSink
            if let path = syntheticSink {
                sink = try SyntheticSink(path: path, failures: failures)
            } else {
                guard let engine = try await checkedEngine(site, settings, .apply, retry, logger) else { return }
                sink = try engine.sink(site: site, stream: stream, logger: logger)
            }
            try await ApplierService(
                settings: settings, stream: stream, spoolRoot: site.spool.directory,
                spoolLimit: site.spool.maxBytes.map { Int64($0.bytes) }, sink: sink, applyRetry: retry, logger: logger
            ).run()
        }
    }

    /// The site's engine, once its database passed the start-up check (nil: cancelled while
    /// waiting for it). Throws the setup problems found.
    private func checkedEngine(
        _ site: SiteConfig, _ settings: AgentLinkSettings, _ use: DatabaseUse, _ retry: FailureRetry, _ logger: Logger
    ) async throws -> (any AgentEngine)? {
        let engine = try agentEngines.entry(for: site.database.engine)
        let ready = try await StartupCheck.wait(for: use, retry: retry, logger: logger) {
            engine.check(site: site, link: settings, for: use, logger: logger)
        }
        return ready ? engine : nil
    }
}
