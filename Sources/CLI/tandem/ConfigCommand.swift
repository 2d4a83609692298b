import ArgumentParser
import Logging
import TandemConfig
import TandemCore

extension ConfigError: OperatorError {}

struct Config: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Configuration tools.",
        subcommands: [ConfigCheck.self])
}

/// Validates a site's configuration the way the agent will read it and prints the
/// effective result (defaults filled in, secrets masked), so an operator can check
/// a file before a restart instead of finding out from a failed start.
struct ConfigCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a site configuration and print it with defaults filled in and secrets masked.")

    @Option(help: "The site's TOML configuration.") var config: String
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        options.bootstrapLogging()
        let logger = Logger(label: "tandem.config")
        do {
            let site = try SiteConfig.load(path: config)
            logger.debug(
                "configuration valid",
                metadata: ["file": "\(config)", "site": "\(site.site.name)", "engine": "\(site.database.engine)"])
            print("# \(config): valid")
            print(site.renderedForDisplay(), terminator: "")
        } catch {
            throw report(error)
        }
    }
}
