import ApplyKit
import TandemProcedures
import ArgumentParser
import Dispatch
import Foundation
import Logging
import PostgreSQLApply
import TandemAgent
import TandemConfig
import TandemCore
import TandemLink

extension AgentRole: ExpressibleByArgument {}

/// `tandem agent --config site.toml`: this site's long-lived agent.
///
/// The role comes from the pair journal (`role.journal` in the spool root, see
/// `RoleJournal`); `--role` only bootstraps it on the first start. Capture and apply
/// are the engine issues' work: until they land, the agent runs only with the
/// hidden, test-only synthetic source or sink.
struct Agent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run this site's agent (shipper or applier, as the pair's journal says).")

    @Option(help: "The site's TOML configuration.") var config: String
    @Option(help: "First start only: record this site's role (shipper or applier) in the pair journal.")
    var role: AgentRole?

    @Option(help: .hidden) var syntheticBatches: UInt64?
    @Option(help: .hidden) var syntheticSink: String?
    @Option(help: .hidden) var reconnectMaxDelayMs: Int?

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
        defer { stops.forEach { $0.cancel() } }
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
            settings.backoff = ReconnectBackoff(minimumDelay: .milliseconds(min(50, reconnectMaxDelayMs)),
                                                maximumDelay: .milliseconds(reconnectMaxDelayMs))
        }
        let role = try RoleJournal(spoolRoot: site.spool.directory).resolve(requested: role)
        var logger = Logger(label: "tandem.agent")
        logger[metadataKey: "site"] = "\(site.site.name)"
        logger.info("agent: site \(site.site.name) of pair \(site.site.pair) runs as the \(role.rawValue)")
        switch role {
        case .shipper:
            if let count = syntheticBatches {
                let source = try SyntheticSource(stream: settings.stream(shippedBy: settings.localSite), count: count)
                try await ShipperService(settings: settings, source: source, logger: logger).run()
                return
            }
            switch site.database.engine {
            case .postgresql:
                let source = EngineWiring.postgresSource(site: site, link: settings, logger: logger)
                defer { source.stop() }
                try await ShipperService(settings: settings, source: source, logger: logger).run()
            case .mariadb:
                let source = try EngineWiring.mariadbSource(site: site, link: settings, logger: logger)
                defer { source.stop() }
                try await ShipperService(settings: settings, source: source, logger: logger).run()
            default:
                throw NotBuiltYet(command: "agent", purpose: "capture from \(site.database.engine) (MySQL GTID sets) is not built; PostgreSQL and MariaDB are")
            }
        case .applier:
            let stream = settings.stream(shippedBy: settings.peerSite)
            let sink: any BatchSink
            if let path = syntheticSink {
                sink = try SyntheticSink(path: path)
            } else if site.database.engine == .postgresql {
                sink = try PostgreSQLSink(conninfo: EngineWiring.postgresConninfo(site.database), stream: stream, logger: logger)
            } else if site.database.engine == .mariadb {
                sink = try EngineWiring.mariadbSink(site: site, stream: stream, logger: logger)
            } else {
                throw NotBuiltYet(command: "agent", purpose: "apply to \(site.database.engine) arrives with the MariaDB pair issue")
            }
            try await ApplierService(settings: settings, stream: stream,
                                     spoolRoot: site.spool.directory, spoolLimit: site.spool.maxBytes.map { Int64($0.bytes) },
                                     sink: sink, logger: logger).run()
        }
    }
}
