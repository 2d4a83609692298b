import ApplyKit
import ArgumentParser
import CaptureKit
import Foundation
import Logging
import TandemAgent
import TandemConfig
import TandemCore
import TandemEngines
import TandemProcedures
import TandemSeed
import TandemSynthetic
import TandemVerify

/// `tandem-test-agent`: the agent as the process tests and the link benchmark run it. It starts
/// exactly as `tandem agent` does (`AgentLaunch`), with what only tests need and the shipped
/// binary does not carry: a synthetic source or sink in place of the engine, failures injected
/// into them, and shorter reconnect and retry delays. Without `--synthetic-*` it runs the
/// site's real engine, so tests of the database start-up check can shorten the delays too.
@main
struct TestAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tandem-test-agent", abstract: "The Tandem agent with test-only parts (never deployed).")

    @Option(help: "The site's TOML configuration.") var config: String
    @Option(help: "First start only: this site's role (shipper or applier).") var role: String?
    @Option(help: "Ship this many synthetic batches instead of capturing from the database.")
    var syntheticBatches: UInt64?
    @Option(help: "Apply into this file (one line per batch) instead of the database.") var syntheticSink: String?
    @Option(help: "The synthetic source or sink fails when it reaches this batch…") var syntheticFailAt: UInt64?
    @Option(help: "…this many times.") var syntheticFailTimes: Int = 3
    @Option(help: "Caps the link's reconnect delay.") var reconnectMaxDelayMs: Int?
    @Option(help: "Caps the retry delay of a failed capture, apply or database check.") var retryMaxDelayMs: Int?
    @Option(help: "Log level.") var logLevel: String = "info"
    @Option(help: "Log format (text or json); wins over [log] format.") var logFormat: String?

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        RuntimeLogLevel.shared.level = level
        LogOutput.choose(flag: logFormat.flatMap(LogFormat.init(rawValue:)))
        LoggingSystem.bootstrap { label in
            var handler = AgentLogHandler(label: label)
            handler.logLevel = level
            return RuntimeLogLevel.shared.wrapping(handler)
        }
        let launch = AgentLaunch(
            configPath: config, requestedRole: role.flatMap(AgentRole.init(rawValue:)),
            reconnectBackoff: reconnectMaxDelayMs.map {
                ReconnectBackoff(minimumDelay: .milliseconds(min(50, $0)), maximumDelay: .milliseconds($0))
            },
            retry: retryMaxDelayMs.map { FailureRetry(maximumDelay: .milliseconds($0)) } ?? FailureRetry())
        let parts = TestParts(
            batches: syntheticBatches, sinkPath: syntheticSink,
            failures: syntheticFailAt.map { SyntheticFailures(at: $0, times: syntheticFailTimes) })
        do {
            try await AgentLaunch.runUntilSignalled { try await launch.run(parts: parts) }
        } catch {
            FileHandle.standardError.write(Data(operatorReport(error).utf8))
            throw ExitCode(1)
        }
    }
}

/// Synthetic parts where the flags ask for them, the site's checked engine otherwise.
struct TestParts: AgentParts {
    var batches: UInt64?
    var sinkPath: String?
    var failures: SyntheticFailures?
    var engines = CheckedEngines(registry: .builtIn)

    func source(site: SiteConfig, link: AgentLinkSettings, retry: FailureRetry, logger: Logger) async throws
        -> (any BatchSource)?
    {
        guard let batches else { return try await engines.source(site: site, link: link, retry: retry, logger: logger) }
        return try SyntheticSource(stream: link.stream(shippedBy: link.localSite), count: batches, failures: failures)
    }

    func sink(site: SiteConfig, stream: StreamID, link: AgentLinkSettings, retry: FailureRetry, logger: Logger)
        async throws -> (any BatchSink)?
    {
        guard let sinkPath else {
            return try await engines.sink(site: site, stream: stream, link: link, retry: retry, logger: logger)
        }
        return try SyntheticSink(path: sinkPath, failures: failures)
    }

    /// Verify always works on the site's real database (a synthetic part has none).
    func verifySide(site: SiteConfig) throws -> any VerifySide { try engines.verifySide(site: site) }
    func seedSource(site: SiteConfig) throws -> any SeedSource { try engines.seedSource(site: site) }
    func seedTarget(site: SiteConfig) throws -> any SeedTarget { try engines.seedTarget(site: site) }
}
