import ArgumentParser
import TandemAgent
import TandemEngines
import TandemProcedures

extension AgentRole: ExpressibleByArgument {}

/// `tandem agent --config site.toml`: this site's long-lived agent.
///
/// The role comes from the pair journal (`role.journal` in the spool root, see
/// `RoleJournal`); `--role` only bootstraps it on the first start. Capture and apply come
/// from the engines this build carries (`EngineRegistry.builtIn`) by `[database] engine`.
/// How it starts is `AgentLaunch`'s, shared with the test agent that runs synthetic parts.
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

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        options.bootstrapLogging()
        let launch = AgentLaunch(configPath: config, requestedRole: role)
        do {
            try await AgentLaunch.runUntilSignalled {
                try await launch.run(parts: CheckedEngines(registry: .builtIn))
            }
        } catch {
            throw report(error)
        }
    }
}
