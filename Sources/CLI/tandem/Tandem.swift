import ArgumentParser
import Logging
import TandemAgent
import TandemConfig
import TandemCore

/// The `tandem` command: one binary for the site agent and every operator action.
///
/// The full command tree is visible from the first release so that runbooks and
/// automation can be written against it; commands whose machinery is not built yet
/// say so and exit non-zero instead of pretending to work.
@main
struct Tandem: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tandem",
        abstract: "Disaster-recovery replication for PostgreSQL and MariaDB/MySQL.",
        discussion: """
            Each site runs one long-lived agent (`tandem agent --config site.toml`). Operator commands \
            talk to the local agent; the agents coordinate procedures over the pair's TLS link.
            """,
        version: TandemVersion.string,
        subcommands: [
            Agent.self, Pair.self, Seed.self, Status.self, LogLevel.self, Verify.self, Switchover.self, Failback.self,
            Failover.self, Reinstate.self, Drill.self, Config.self,
        ])
}

/// Options every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info
    @Option(name: .long, help: "Log format: text (the default) or json (one object per line); wins over [log] format.")
    var logFormat: LogFormat?

    func bootstrapLogging() {
        let level = logLevel
        RuntimeLogLevel.shared.level = level
        LogOutput.choose(flag: logFormat)  // the site's [log] format applies once loaded, unless this was given
        LoggingSystem.bootstrap { label in
            var handler = AgentLogHandler(label: label)
            handler.logLevel = level
            return RuntimeLogLevel.shared.wrapping(handler)
        }
    }
}

// Deliberate: `--log-level` parses swift-log's own levels; both types come from other packages.
// swift-format-ignore: AvoidRetroactiveConformances
extension Logger.Level: @retroactive ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}
