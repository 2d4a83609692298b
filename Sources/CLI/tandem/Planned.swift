import ArgumentParser

/// A subcommand whose machinery is not built yet: parses its documented options,
/// then fails honestly.
protocol PlannedCommand: AsyncParsableCommand {
    static var purpose: String { get }
    /// The words an operator types after `tandem`.
    static var commandPath: String { get }
}

extension PlannedCommand {
    static var commandPath: String { configuration.commandName ?? String(describing: Self.self).lowercased() }

    func run() async throws {
        throw report(NotBuiltYet(command: Self.commandPath, purpose: Self.purpose))
    }
}

struct Switchover: PlannedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Planned role swap: fence, drain to zero lag, promote, reverse.")
    static let purpose = "the switchover procedure is not built yet"
    @Option(help: "The site's TOML configuration.") var config: String
}

struct Failback: PlannedCommand {
    static let configuration = CommandConfiguration(abstract: "Switch back to the original primary site.")
    static let purpose = "failback is not built yet"
    @Option(help: "The site's TOML configuration.") var config: String
}

struct Failover: PlannedCommand {
    static let configuration = CommandConfiguration(abstract: "Emergency promotion of the DR site, with an RPO report.")
    static let purpose = "failover is not built yet"
    @Option(help: "The site's TOML configuration.") var config: String
}

struct Reinstate: PlannedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bring a failed old primary back as the new DR side (divergence report first).")
    static let purpose = "reinstatement is not built yet"
    @Option(help: "The site's TOML configuration.") var config: String
}

struct Drill: PlannedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Timed switchover + failback with a report (RTO, RPO, verification).")
    static let purpose = "drills are not built yet"
    @Option(help: "The site's TOML configuration.") var config: String
}
