import Foundation
import TandemTestSupport
import Testing

/// Runs the `tandem` executable built next to the test bundle and captures its output.
struct TandemRun {
    var status: Int32
    var stdout: String
    var stderr: String

    static var executable: URL { URL(fileURLWithPath: TandemBinaries.tandem) }

    static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> TandemRun {
        let result = try ChildProcess.capture(
            TandemBinaries.tandem, arguments, environment: environment,
            directory: FileManager.default.currentDirectoryPath, timeout: 120)
        return TandemRun(status: result.status, stdout: result.standardOutput, stderr: result.standardError)
    }
}

@Suite("tandem command line")
struct CLITests {
    static let validSite = """
        [site]
        name = "idc"
        pair = "acme"
        [database]
        engine = "mariadb"
        host = "127.0.0.1"
        user = "tandem"
        server_id = 4242
        password_env = "TANDEM_TEST_PASSWORD"
        [link]
        mode = "connect"
        peer = "dr.example.net:7400"
        peer_site = "cloud"
        ca = "ca.pem"
        certificate = "idc.pem"
        key = "idc.key"
        [spool]
        directory = "spool"
        """

    @Test func helpShowsTheWholeCommandTree() throws {
        let run = try TandemRun.run(["--help"])
        #expect(run.status == 0)
        for command in [
            "agent", "pair", "seed", "status", "log-level", "verify", "switchover", "failback", "failover", "reinstate",
            "drill",
            "config",
        ] {
            #expect(run.stdout.contains("\n  \(command) "), "missing subcommand \(command)")
        }
    }

    /// The synthetic parts and the shortened delays live in `tandem-test-agent` only: the
    /// deployed binary refuses them as unknown options.
    @Test(
        "the shipped agent carries no test-only option",
        arguments: [
            "--synthetic-batches", "--synthetic-sink", "--synthetic-fail-at", "--retry-max-delay-ms",
            "--reconnect-max-delay-ms",
        ])
    func shippedAgentHasNoTestOptions(option: String) throws {
        let run = try TandemRun.run(["agent", "--config", "x.toml", option, "1"])
        #expect(run.status == 64, "\(run.stderr)")
        #expect(run.stderr.contains("Unknown option '\(option)'"), "\(run.stderr)")
    }

    @Test(
        "unbuilt commands say so and fail",
        arguments: [
            ["switchover", "--config", "x.toml"], ["failover", "--config", "x.toml"],
            ["drill", "--config", "x.toml"],
        ])
    func unbuiltCommandsFail(arguments: [String]) throws {
        let run = try TandemRun.run(arguments)
        #expect(run.status != 0)
        #expect(run.stderr.contains("is not built yet"))
        #expect(run.stderr.contains("hint:"))
    }

    @Test func configCheckPrintsEffectiveConfigWithSecretMasked() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("site.toml")
        try CLITests.validSite.write(to: config, atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["TANDEM_TEST_PASSWORD"] = "hunter2-do-not-print"
        let run = try TandemRun.run(["config", "check", "--config", config.path], environment: environment)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.contains("port = 3306"))
        #expect(run.stdout.contains("********"))
        #expect(!run.stdout.contains("hunter2"))
        #expect(!run.stderr.contains("hunter2"))
        #expect(run.stdout.contains(dir.appendingPathComponent("ca.pem").path))
    }

    @Test func configCheckNamesFileKeyAndProblem() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("bad.toml")
        try CLITests.validSite.replacingOccurrences(of: "engine = \"mariadb\"", with: "engine = \"oracle\"")
            .write(to: config, atomically: true, encoding: .utf8)
        let run = try TandemRun.run(["config", "check", "--config", config.path])
        #expect(run.status == 1)
        #expect(run.stdout.isEmpty)
        let firstLine = run.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(firstLine.contains("bad.toml"))
        #expect(firstLine.contains("database.engine"))
        #expect(firstLine.contains("oracle"))
        #expect(run.stderr.contains("hint:"))
    }

    @Test func missingConfigFileIsNamed() throws {
        let run = try TandemRun.run(["config", "check", "--config", "/nonexistent/site.toml"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("/nonexistent/site.toml"))
    }
}

@Suite("tandem status and log-level without an agent")
struct StatusCommandTests {
    @Test func helpDocumentsTheExitCodes() throws {
        for command in ["status", "log-level"] {
            let run = try TandemRun.run([command, "--help"])
            #expect(run.status == 0)
            let text = run.stdout.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
            #expect(
                text.contains("Exit codes: 0 the agent answered (status: the pair is healthy); 1 (status) degraded"),
                "\(run.stdout)")
            #expect(text.contains("2 down: the agent is not running"), "\(run.stdout)")
            #expect(text.contains("3 refused"), "\(run.stdout)")
        }
    }

    @Test func noAgentIsExitTwoWithTheSocketPathAndNoRoleYet() throws {
        let dir = TemporaryDirectory("status-cli")
        defer { dir.remove() }
        let config = dir.file("idc.toml")
        try CLITests.validSite.write(toFile: config, atomically: true, encoding: .utf8)
        // No TANDEM_TEST_PASSWORD in the environment: status does not read the password.
        let run = try TandemRun.run(["status", "--config", config], environment: ["PATH": "/usr/bin:/bin"])
        #expect(run.status == 2, "\(run.stdout) \(run.stderr)")
        #expect(run.stdout.contains("the agent is NOT RUNNING"))
        #expect(run.stdout.contains("no control socket at \(dir.path)/spool/control.sock"), "\(run.stdout)")
        #expect(run.stdout.contains("no role recorded yet"), "\(run.stdout)")
        let action = try TandemRun.run(
            ["log-level", "debug", "--config", config], environment: ["PATH": "/usr/bin:/bin"])
        #expect(action.status == 2)
        #expect(action.stderr.contains("not running: no control socket"))
        let bad = try TandemRun.run(["log-level", "loud", "--config", config])
        #expect(bad.status == 64)
    }
}
