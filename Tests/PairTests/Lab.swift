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
    static let tandem = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("tandem").path
    static var postgresBin: String {
        if let dir = ProcessInfo.processInfo.environment["TANDEM_PG_BINDIR"] { return dir }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        let newest = versions.compactMap(Int.init).max() ?? 15
        return "/usr/lib/postgresql/\(newest)/bin"
    }

    let directory: String
    private(set) var values: [String: String] = [:]

    let engine: String

    init(engine: String = "postgresql", initSQL: String? = nil) throws {
        self.engine = engine
        directory = "/tmp/tandem-test-lab-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var arguments = ["up", "--dir", directory, "--engine", engine]
        if let initSQL {
            let file = directory + ".init.sql"
            try initSQL.write(toFile: file, atomically: true, encoding: .utf8)
            arguments += ["--init-sql", file]
        }
        do {
            try run(arguments, timeout: 120)
        } catch {
            try? run(["down", "--dir", directory], timeout: 60)
            throw error
        }
        try reload()
    }

    var primaryDSN: String { values["PRIMARY_DSN"] ?? "" }
    var drDSN: String { values["DR_DSN"] ?? "" }
    var shipperPID: Int32 { Int32(values["PRIMARY_AGENT_PID"] ?? "") ?? 0 }
    var applierPID: Int32 { Int32(values["DR_AGENT_PID"] ?? "") ?? 0 }

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

    func agentLog(_ site: String) -> String {
        (try? String(contentsOfFile: "\(directory)/\(site)/agent.log", encoding: .utf8)) ?? ""
    }

    func down() {
        try? run(["down", "--dir", directory], timeout: 60)
        try? FileManager.default.removeItem(atPath: directory + ".init.sql")
        try? FileManager.default.removeItem(atPath: directory + ".log")
    }

    /// Runs a PostgreSQL client tool (pgbench) to completion.
    func runTool(_ tool: String, _ arguments: [String], timeout: TimeInterval) throws {
        let log = directory + "/\(tool).log"
        let fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        defer { close(fd) }
        let child = try ChildProcess(
            operation: tool, executable: "\(Self.postgresBin)/\(tool)", arguments: arguments,
            environment: ProcessInfo.processInfo.environment, output: fd, directory: "/tmp")
        guard child.wait(timeout: timeout) else {
            child.signal(SIGKILL)
            throw LabError("\(tool) did not finish in \(Int(timeout)) s")
        }
        guard child.exitCode == 0 else {
            throw LabError("\(tool) \(arguments.joined(separator: " ")) failed: \(Self.tail(log))")
        }
    }

    /// Starts a PostgreSQL client tool in the background.
    func launchTool(_ tool: String, _ arguments: [String]) throws -> ChildProcess {
        let log = directory + "/\(tool).log"
        let fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        defer { close(fd) }
        return try ChildProcess(
            operation: tool, executable: "\(Self.postgresBin)/\(tool)", arguments: arguments,
            environment: ProcessInfo.processInfo.environment, output: fd, directory: "/tmp")
    }

    private func run(_ arguments: [String], timeout: TimeInterval) throws {
        let log = directory + ".log"
        let fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        defer { close(fd) }
        var environment = ProcessInfo.processInfo.environment
        environment["TANDEM_BIN"] = Self.tandem
        let child = try ChildProcess(
            operation: "appliance/lab", executable: Self.repository + "/appliance/lab",
            arguments: arguments, environment: environment, output: fd,
            directory: Self.repository)
        guard child.wait(timeout: timeout) else {
            child.signal(SIGKILL)
            throw LabError("appliance/lab \(arguments.first ?? "") did not finish in \(Int(timeout)) s")
        }
        guard child.exitCode == 0 else {
            throw LabError("appliance/lab \(arguments.joined(separator: " ")) failed: \(Self.tail(log))")
        }
    }

    static func tail(_ path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(15).joined(separator: "\n")
    }
}

extension PGConnection {
    func scalar(_ sql: String) throws -> String? { try exec(sql).value(row: 0, column: 0) }
}

/// Polls until `condition` holds; false after `seconds`.
func eventually(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(100_000)
    }
    return try condition()
}
