import ArgumentParser
import Foundation
import Logging
import TandemAgent
import TandemConfig
import TandemControl
import TandemCore
import TandemProcedures
import TandemStatus
import TandemVerify

/// The exit codes of the commands that ask the local agent (`status`, `log-level`).
enum ControlExit {
    /// The agent answered (and, for an operator action, did it).
    static let answered: Int32 = 0
    /// The agent is not running or does not answer.
    static let notRunning: Int32 = 2
    /// Refused (access) or failed: the configuration, an unreadable answer, the agent could not.
    static let failed: Int32 = 3

    static let help = """
        Exit codes: 0 the agent answered (status: the pair is healthy); 1 (status) degraded: a threshold \
        in [alerts] is crossed; 2 down: the agent is not running or does not answer, or (status) the link \
        or a database is down; 3 refused (the user is not in the [control] groups) or failed (the \
        configuration, an unreadable answer).
        """
}

/// A refusal or failure the agent answered with, as the operator reads it.
struct AgentRefusal: OperatorError {
    var description: String
    var hint: String
}

/// One request to this site's agent over its control socket (`[control] socket`).
struct ControlCall {
    var site: SiteConfig
    var client: ControlClient

    /// The site's configuration, without its database password: a monitor need not read it.
    init(configPath: String) throws(ExitCode) {
        do {
            site = try SiteConfig.load(path: configPath, readingPassword: false)
        } catch {
            throw fail(error)
        }
        client = ControlClient(socketPath: site.control.socket, site: site.site.name)
    }

    /// The agent's result object; a refusal, a failure or an unreachable agent exits.
    func send(_ request: ControlRequest, notRunning: (ControlClientError) -> Void) throws(ExitCode) -> [UInt8] {
        let result: ControlResult
        do {
            result = try client.send(request)
        } catch  where error.isUnreachable {
            notRunning(error)
            throw ExitCode(ControlExit.notRunning)
        } catch {
            throw fail(error)
        }
        switch result {
        case .ok(let object): return object
        case .failed(let error, let hint): throw fail(AgentRefusal(description: error, hint: hint))
        }
    }

    /// What can be read from disk while the agent is not running: the role in the pair journal.
    var roleOnDisk: (role: String?, line: String) {
        let journal = RoleJournal(spoolRoot: site.spool.directory)
        do throws(JournalError) {
            guard let role = try journal.read() else {
                return (nil, "no role recorded yet in the pair journal \(journal.path) (the agent never started)")
            }
            return (role.rawValue, "role \(role.rawValue) (pair journal \(journal.path))")
        } catch {
            return (nil, "the pair journal \(journal.path) cannot be read: \(error.description)")
        }
    }
}

/// Prints `error` as the operator sees it; the exit code for a refused or failed request.
private func fail(_ error: any Error) -> ExitCode {
    var stderr = StandardError()
    print(operatorReport(error), terminator: "", to: &stderr)
    return ExitCode(ControlExit.failed)
}

/// `tandem status --config site.toml [--json]`: what this site's agent reports.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show this site's agent: role, link, positions and lag at every stage.",
        discussion: """
            Asks the site's running agent over its local control socket ([control] socket). Members of \
            the [control] monitor_group or operator_group, and root, may read status. When the agent is \
            not running, says so and shows what the disk says (the role in the pair journal).

            \(ControlExit.help)
            """)

    @Option(help: "The site's TOML configuration.") var config: String
    @Flag(help: "Print the agent's report as JSON (the control socket's answer, pretty-printed).") var json = false

    @Flag(help: "Refresh every --interval seconds: redrawn in place on a terminal, one line per refresh otherwise.")
    var watch = false
    @Option(help: "Seconds between refreshes with --watch.") var interval: Double = 2

    func run() async throws {
        let call = try ControlCall(configPath: config)
        let thresholds = AlertThresholds(call.site.alerts)
        if watch { try await watchLoop(call, thresholds) }
        let answer = try call.send(.status) { error in notRunning(call, error) }
        let health = try? PairHealth.evaluate(StatusJSON.decode(PairStatus.self, from: answer), thresholds: thresholds)
        if json {
            print(StatusSummary.pretty(answer), terminator: "")
        } else {
            print(
                StatusSummary.render(answer, thresholds: thresholds, now: Date().timeIntervalSince1970), terminator: "")
        }
        // The verdict is the exit code, for monitoring scripts: 0 healthy, 1 degraded, 2 down.
        if let health, health.state != .healthy { throw ExitCode(health.state.exitCode) }
    }

    /// Until interrupted (Ctrl-C). On a terminal the screen is redrawn in place; into a pipe or
    /// a log, one plain line per refresh (`StatusText.line`). An agent that stops answering is
    /// shown as such, and the watch goes on until it answers again.
    private func watchLoop(_ call: ControlCall, _ thresholds: AlertThresholds) async throws -> Never {
        let terminal = isatty(1) == 1
        while true {
            let now = Date().timeIntervalSince1970
            var text: String
            if let answer = try? call.send(.status, notRunning: { _ in }),
                let pair = try? StatusJSON.decode(PairStatus.self, from: answer)
            {
                let health = PairHealth.evaluate(pair, thresholds: thresholds)
                text =
                    terminal
                    ? StatusText.render(pair, health: health, now: now)
                    : StatusText.line(pair, health: health, now: now)
            } else {
                text =
                    "\(Format.time(now, relativeTo: now)) down: the agent of site \(call.site.site.name) does not answer"
                text += " on \(call.site.control.socket) (\(call.roleOnDisk.line))"
            }
            if terminal {
                text = "\u{1B}[H\u{1B}[2J" + text + "\n(refreshing every \(Format.seconds(interval)); Ctrl-C to stop)"
            }
            // Unbuffered, so each refresh reaches a pipe or a log at once.
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
            try await Task.sleep(for: .milliseconds(Int(max(0.2, interval) * 1000)))
        }
    }

    private func notRunning(_ call: ControlCall, _ error: ControlClientError) {
        let disk = call.roleOnDisk
        if json {
            var object: [String: Any] = [
                "running": false, "site": call.site.site.name, "pair": call.site.site.pair,
                "socket": call.site.control.socket, "reason": error.description, "from_disk": disk.line,
            ]
            object["role"] = disk.role ?? NSNull()
            print(
                StatusSummary.pretty(Array((try? JSONSerialization.data(withJSONObject: object)) ?? Data())),
                terminator: "")
        } else {
            print("Site \(call.site.site.name) of pair \(call.site.site.pair): the agent is NOT RUNNING")
            print("  \(error.description)")
            print("  from disk: \(disk.line)")
            print("  hint: \(error.hint)")
        }
    }
}

/// `tandem log-level LEVEL --config site.toml`: the running agent's log level, without a restart.
struct LogLevel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log-level",
        abstract: "Change the running agent's log level (e.g. debug while investigating), without a restart.",
        discussion: """
            An operator action over the local control socket: members of the [control] operator_group, \
            and root, may do it; it is recorded in the control audit log. The level holds until the next \
            change or restart (the agent then starts at --log-level again).

            \(ControlExit.help)
            """)

    @Argument(help: "trace, debug, info, notice, warning, error or critical.") var level: Logger.Level
    @Option(help: "The site's TOML configuration.") var config: String

    func run() async throws {
        let call = try ControlCall(configPath: config)
        let answer = try call.send(.logLevel(level)) { error in
            var stderr = StandardError()
            print(operatorReport(error), terminator: "", to: &stderr)
        }
        let fields = (try? JSONSerialization.jsonObject(with: Data(answer))) as? [String: Any]
        let previous = fields?["previous"] as? String ?? "?"
        print("The agent of site \(call.site.site.name) now logs at \(level.rawValue) (was \(previous)).")
    }
}

/// `tandem verify --config site.toml [--tables …] [--json]`: compares the two sites' tables.
struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the primary's and the DR site's tables in key-ordered chunks.",
        discussion: """
            Run at either site: this site's agent compares its database with the peer's over the \
            pair's link. Each chunk's row count and digest is computed inside each database, both \
            sites at once; rows never cross the link, except the column digests of rows in a chunk \
            that differs. A difference is re-checked once the DR site has applied past the \
            primary's position, so a busy pair shows no false difference (see README, "Verify"). \
            Needs the [control] operator_group (or root).

            Exit codes: 0 identical; 1 differences found (each named by table and key); 2 could not \
            compare (the agent is not running, the link or a database is down, a table failed, or \
            rows kept changing); 3 refused or failed (access, configuration).
            """)

    @Option(help: "The site's TOML configuration.") var config: String
    @Option(help: "Only these tables (schema.table), comma-separated; default every replicated table.")
    var tables: String?
    @Option(help: "Rows per chunk.") var chunkRows: Int?
    @Option(help: "A throttle: rows compared per second at most (default: no limit).") var maxRowsPerSecond: Int?
    @Flag(help: "Print the report as JSON.") var json = false

    func validate() throws {
        if let chunkRows, chunkRows < 2 { throw ValidationError("--chunk-rows must be at least 2") }
        if let maxRowsPerSecond, maxRowsPerSecond < 1 {
            throw ValidationError("--max-rows-per-second must be positive")
        }
    }

    func run() async throws {
        var call = try ControlCall(configPath: config)
        // A verify takes as long as the tables are large: the answer comes at the end.
        call.client.timeout = .seconds(7 * 24 * 3600)
        let names = tables?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let request = VerifyRequest(tables: names, chunkRows: chunkRows, maxRowsPerSecond: maxRowsPerSecond)
        let answer = try call.send(.verify(request)) { error in
            var stderr = StandardError()
            print(operatorReport(error), terminator: "", to: &stderr)
        }
        let report: VerifyReport
        do { report = try VerifyReport.decode(answer) } catch {
            var stderr = StandardError()
            print("tandem: the agent's verify report is unreadable: \(error)", to: &stderr)
            throw ExitCode(2)
        }
        if json {
            print(String(decoding: VerifyReport.json(report), as: UTF8.self))
        } else {
            print(VerifyText.render(report), terminator: "")
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}
