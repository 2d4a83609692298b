import Foundation
import MySQLClient
import PGClient
import TandemTestSupport

#if canImport(Glibc)
    import Glibc
#endif

struct LabError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `appliance/lab` driven from a test: the same two-site pair an operator starts by
/// hand, with the `tandem` binary of this build.
final class Lab: @unchecked Sendable {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static var tandem: String { TandemBinaries.tandem }
    static var postgresBin: String {
        if let dir = ProcessInfo.processInfo.environment["TANDEM_PG_BINDIR"] { return dir }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        let newest = versions.compactMap(Int.init).max() ?? 15
        return "/usr/lib/postgresql/\(newest)/bin"
    }

    let directory: String
    private(set) var values: [String: String] = [:]

    let engine: String

    /// `upTimeout`: how long `up` may take, with the time `initSQL` runs.
    init(engine: String = "postgresql", initSQL: String? = nil, copySchema: Bool = true, upTimeout: TimeInterval = 120)
        throws
    {
        self.engine = engine
        directory = "/tmp/tandem-test-lab-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var arguments = ["up", "--dir", directory, "--engine", engine]
        // The tests start from the schema alone (or nothing) and seed themselves where they test it.
        arguments.append(copySchema ? "--schema-copy" : "--no-schema-copy")
        if let initSQL {
            let file = directory + ".init.sql"
            try initSQL.write(toFile: file, atomically: true, encoding: .utf8)
            arguments += ["--init-sql", file]
        }
        do {
            try run(arguments, timeout: upTimeout)
        } catch {
            try? run(["down", "--dir", directory], timeout: 60)
            throw error
        }
        try reload()
    }

    var primaryDSN: String { values["PRIMARY_DSN"] ?? "" }
    var drDSN: String { values["DR_DSN"] ?? "" }
    /// The agents' PIDs as `lab.env` records them; nil when unknown (never 0: `kill(0, …)`
    /// would signal the test runner's whole process group).
    var shipperPID: Int32? { Self.pid(values["PRIMARY_AGENT_PID"]) }
    var applierPID: Int32? { Self.pid(values["DR_AGENT_PID"]) }
    func agentPID(_ site: String) -> Int32? { site == "primary" ? shipperPID : applierPID }

    private static func pid(_ text: String?) -> Int32? {
        guard let text, let pid = Int32(text), pid > 0 else { return nil }
        return pid
    }

    func primary() throws -> PGConnection { try PGConnection(conninfo: primaryDSN) }

    /// MariaDB labs: a connection to the primary or DR server's `app` database.
    func mariadb(_ site: String) throws -> MySQLConnection {
        let prefix = site == "primary" ? "PRIMARY" : "DR"
        return try MySQLConnection(
            host: "127.0.0.1", port: Int(values["\(prefix)_PORT"] ?? "") ?? 0, user: values["\(prefix)_USER"] ?? "",
            password: values["\(prefix)_PASSWORD"], database: "app")
    }
    func dr() throws -> PGConnection { try PGConnection(conninfo: drDSN) }

    func reload() throws {
        let text = try String(contentsOfFile: directory + "/lab.env", encoding: .utf8)
        values = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            var value = line[line.index(after: equals)...]
            if value.hasPrefix("'"), value.hasSuffix("'"), value.count >= 2 { value = value.dropFirst().dropLast() }
            values[String(line[..<equals])] = String(value)
        }
    }

    func startAgent(_ site: String) throws {
        try run(["start-agent", site, "--dir", directory], timeout: 30)
        try reload()
    }

    /// Stops a site's database server, as an outage would (`appliance/lab stop-server`).
    func stopServer(_ site: String) throws {
        try run(["stop-server", site, "--dir", directory], timeout: 60)
    }

    /// A silent partition between the agents (`appliance/lab cut-link`: iptables drops the
    /// link port's packets both ways). `healLink` removes it; `down` does too, so a failed
    /// test never leaves the rules behind.
    func cutLink() throws {
        try run(["cut-link", "--dir", directory], timeout: 30)
    }

    func healLink() throws {
        try run(["heal-link", "--dir", directory], timeout: 30)
    }

    /// DDL at the DR site first, then at the primary (logical replication carries no DDL).
    func both(_ sql: String) throws {
        if engine == "mariadb" {
            try run(["both", "--dir", directory, "--", sql], timeout: 60)
            return
        }
        for dsn in [drDSN, primaryDSN] {
            let connection = try PGConnection(conninfo: dsn)
            defer { connection.close() }
            _ = try connection.exec(sql)
        }
    }

    /// The agent's log (decoded leniently: one line of invalid UTF-8 must not hide the rest).
    func agentLog(_ site: String) -> String {
        guard let data = FileManager.default.contents(atPath: "\(directory)/\(site)/agent.log") else {
            return "(no log at \(directory)/\(site)/agent.log)"
        }
        return String(decoding: data, as: UTF8.self)
    }

    func down() {
        try? run(["down", "--dir", directory], timeout: 60)
        try? FileManager.default.removeItem(atPath: directory + ".init.sql")
        try? FileManager.default.removeItem(atPath: directory + ".log")
    }

    /// Runs a PostgreSQL client tool (pgbench) to completion.
    func runTool(_ tool: String, _ arguments: [String], timeout: TimeInterval) throws {
        try ChildProcess.runLogged(
            "\(Self.postgresBin)/\(tool)", arguments, log: directory + "/\(tool).log",
            directory: "/tmp", timeout: timeout)
    }

    /// Starts a PostgreSQL client tool in the background.
    func launchTool(_ tool: String, _ arguments: [String]) throws -> ChildProcess {
        try ChildProcess.start(
            "\(Self.postgresBin)/\(tool)", arguments, log: directory + "/\(tool).log", directory: "/tmp")
    }

    private func run(_ arguments: [String], timeout: TimeInterval) throws {
        var environment = ProcessInfo.processInfo.environment
        environment["TANDEM_BIN"] = Self.tandem
        try ChildProcess.runLogged(
            Self.repository + "/appliance/lab", arguments, environment: environment,
            log: directory + ".log", directory: Self.repository, timeout: timeout)
    }

    static func tail(_ path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(15).joined(separator: "\n")
    }
}

extension PGConnection {
    func scalar(_ sql: String) throws -> String? { try exec(sql).value(row: 0, column: 0) }
}

/// One kill -9 of the kill tests: which site's agent, at what DR progress.
struct LabKill: CustomStringConvertible {
    var site: String
    var progress: Int
    var description: String { "\(site)@\(progress)" }
}

extension Lab {
    /// The last lines of an agent's log, for failure messages.
    func agentLogTail(_ site: String, characters: Int = 3000) -> String {
        "--- \(site) agent log\n" + String(agentLog(site).suffix(characters))
    }

    /// Kills the shipper or the applier (a seeded coin) with kill -9 each time the DR site's
    /// progress (`progress`, e.g. the applied batch sequence) has passed the next threshold,
    /// a seeded step beyond the progress at the previous kill, and restarts it after a seeded
    /// pause; until `running` turns false. Progress, not the clock: every interval between
    /// two kills holds real replication work, however fast or slow the machine is.
    func killAgentsAtProgress(
        _ schedule: inout KillSchedule, step: ClosedRange<Int>, while running: () -> Bool,
        progress: () throws -> Int
    ) throws -> [LabKill] {
        try killAgents(&schedule, while: running, progress: progress) { schedule, reached in
            reached + schedule.int(in: step)
        }
    }

    /// `count` kills, each once the DR site's progress has grown by a seeded `step` since the
    /// previous one, however long that takes (`progress` may keep a workload going meanwhile).
    func killAgentsAtProgress(
        _ schedule: inout KillSchedule, step: ClosedRange<Int>, count: Int, progress: () throws -> Int
    ) throws -> [LabKill] {
        var planned = 0
        return try killAgents(
            &schedule, while: { true }, progress: progress,
            nextThreshold: { schedule, reached in
                guard planned < count else { return nil }
                planned += 1
                return reached + schedule.int(in: step)
            })
    }

    /// The kill loop. `nextThreshold` gives the progress at which to kill next, from the
    /// progress at the previous kill (nil: done). Before each kill both agents must be alive
    /// (one that crashed by itself fails the test, with its log) and the victim's PID known;
    /// after it the victim must be gone.
    private func killAgents(
        _ schedule: inout KillSchedule, while running: () -> Bool, progress: () throws -> Int,
        nextThreshold: (inout KillSchedule, Int) -> Int?
    ) throws -> [LabKill] {
        var kills: [LabKill] = []
        var reached = try progress()
        var next = nextThreshold(&schedule, reached)
        while running(), let threshold = next {
            let passed = try eventually(180, pollMicroseconds: 50_000) {
                guard running() else { return true }
                reached = try progress()
                return reached >= threshold
            }
            guard running() else { break }
            guard passed else {
                throw LabError(
                    "the DR site stayed at \(reached), short of the kill threshold \(threshold), for 180 s; kills so far \(kills); \(schedule.replay)\n\(agentLogTail("primary"))\n\(agentLogTail("dr"))"
                )
            }
            try expectAgentsAlive("at DR progress \(reached), kills so far \(kills); \(schedule.replay)")
            let site = schedule.coin() ? "primary" : "dr"
            do {
                try Kill.live(pid: agentPID(site), "the \(site) agent") { agentLogTail(site) }
            } catch {
                throw LabError("\(error); kills so far \(kills); \(schedule.replay)")
            }
            kills.append(LabKill(site: site, progress: reached))
            usleep(schedule.microseconds(in: 100_000...800_000))
            try startAgent(site)
            next = nextThreshold(&schedule, reached)
        }
        return kills
    }

    /// Throws, with the dead agent's log, unless both agents run.
    func expectAgentsAlive(_ context: String) throws {
        for site in ["primary", "dr"] where !isProcessAlive(agentPID(site) ?? 0) {
            throw LabError(
                "the \(site) agent (PID \(agentPID(site).map(String.init) ?? "unknown")) is not running: it died by itself; \(context)\n\(agentLogTail(site))"
            )
        }
    }
}
