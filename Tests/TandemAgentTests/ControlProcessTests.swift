import Foundation
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension AgentPair {
    var cloudConfig: String { directory + "/pair/cloud/cloud.toml" }
    var cloudSocket: String { directory + "/cloud-spool/control.sock" }
    var cloudAudit: String { directory + "/cloud-spool/control-audit.log" }

    /// `tandem ARGUMENTS`, as `user` (through runuser) or as this process's user.
    func tandem(_ arguments: [String], as user: String? = nil) throws -> CompletedProcess {
        let command = (user.map { ["/usr/sbin/runuser", "-u", $0, "--"] } ?? []) + [Self.executable] + arguments
        return try ChildProcess.capture(
            command[0], Array(command.dropFirst()), environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"],
            directory: "/", timeout: 60)
    }

    /// `tandem status --json` as `user`, with its JSON (nil when stdout is not a JSON object).
    func status(as user: String? = nil) throws -> (run: CompletedProcess, json: [String: Any]?) {
        let run = try tandem(["status", "--json", "--config", cloudConfig], as: user)
        let json = try? JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any]
        return (run, json)
    }

    /// The agent answered with its report, whatever the verdict (an applier alone has its link
    /// down: status exits 2 with the report).
    func answered(as user: String? = nil) throws -> Bool {
        Self.isAnswer(try status(as: user))
    }

    static func isAnswer(_ status: (run: CompletedProcess, json: [String: Any]?)) -> Bool {
        [0, 1, 2].contains(status.run.status) && status.json?["local"] != nil
    }

    func auditLines() throws -> [[String: Any]] {
        try String(contentsOfFile: cloudAudit, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }
}

@Suite("tandem status and log-level against agent processes", .serialized)
struct ControlProcessTests {
    /// While the applier runs, `tandem status --json` is its report; stopped (SIGTERM: the socket
    /// is removed) or killed (-9: a stale socket is left), status says "not running", exits 2
    /// and shows the role from the pair journal; a restarted agent replaces the stale socket.
    @Test func statusWhileRunningAndAfterTheAgentEnded() throws {
        let pair = try AgentPair(batches: 200)
        try pair.startApplier()
        try pair.startShipper()
        try pair.waitForSink(atLeast: 1)
        var answered: [String: Any]?
        var last: CompletedProcess?
        // The report says the link is up once the services published it (every 250 ms).
        let up = try eventually(20) {
            let (run, json) = try pair.status()
            last = run
            answered = json
            let local = json?["local"] as? [String: Any]
            return run.status == 0 && (local?["link"] as? [String: Any])?["state"] as? String == "up"
        }
        #expect(up, "\(last?.standardOutput ?? "") \(last?.standardError ?? "")\n\(pair.logs())")
        let local = answered?["local"] as? [String: Any]
        #expect(local?["site"] as? String == "cloud")
        #expect(local?["role"] as? String == "applier")
        #expect(local?["pair"] as? String == "acme")

        let text = try pair.tandem(["status", "--config", pair.cloudConfig])
        #expect(text.status == 0)
        #expect(text.standardOutput.contains("site cloud (applier)"), "\(text.standardOutput)")

        #expect(pair.terminate(shipper: false) == 0, "\(pair.logs())")
        #expect(!FileManager.default.fileExists(atPath: pair.cloudSocket))
        let stopped = try pair.status()
        #expect(stopped.run.status == 2, "\(stopped.run.standardOutput) \(stopped.run.standardError)")
        #expect(stopped.json?["running"] as? Bool == false)
        #expect(stopped.json?["role"] as? String == "applier")
        #expect(
            (stopped.json?["reason"] as? String)?.contains("not running: no control socket at \(pair.cloudSocket)")
                == true)
        let plain = try pair.tandem(["status", "--config", pair.cloudConfig])
        #expect(plain.status == 2)
        #expect(plain.standardOutput.contains("the agent is NOT RUNNING"), "\(plain.standardOutput)")
        #expect(plain.standardOutput.contains("from disk: role applier"), "\(plain.standardOutput)")

        try pair.startApplier()
        try waitFor("the restarted applier's status", seconds: 20) { try pair.answered() }
        try pair.killApplier()
        #expect(FileManager.default.fileExists(atPath: pair.cloudSocket))
        let killed = try pair.status()
        #expect(killed.run.status == 2)
        #expect((killed.json?["reason"] as? String)?.contains("nothing answers on its control socket") == true)
        #expect(killed.json?["role"] as? String == "applier")
        try pair.startApplier()
        try waitFor("status after the stale socket was replaced", seconds: 20) { try pair.answered() }
    }

    /// A control socket that cannot be created ends the start: exit 1, one line and a hint.
    @Test func anAgentWithoutItsControlSocketDoesNotStart() throws {
        let pair = try AgentPair(batches: 10)
        try "a file, not a directory".write(toFile: pair.directory + "/blocker", atomically: false, encoding: .utf8)
        let config = try String(contentsOfFile: pair.cloudConfig, encoding: .utf8)
        try (config + "\n[control]\nsocket = \"\(pair.directory)/blocker/control.sock\"\n")
            .write(toFile: pair.cloudConfig, atomically: false, encoding: .utf8)
        let run = try ChildProcess.capture(
            AgentPair.testAgent,
            ["--config", pair.cloudConfig, "--role", "applier", "--synthetic-sink", pair.sinkPath],
            environment: AgentPair.environment, directory: pair.directory, timeout: 30)
        #expect(run.status == 1)
        #expect(
            run.standardError.contains("tandem: error: cannot create the control socket \(pair.directory)/blocker/"),
            "\(run.standardError)")
        #expect(run.standardError.contains("  hint: "))
    }

    /// A second agent of the same site does not take the running one's socket: it exits 1
    /// naming the path, and the first one keeps answering.
    @Test func aSecondAgentOfTheSiteRefusesToStart() throws {
        let pair = try AgentPair(batches: 10)
        try pair.startApplier()
        try waitFor("the applier's status", seconds: 20) { try pair.answered() }
        let second = try ChildProcess.capture(
            AgentPair.testAgent, ["--config", pair.cloudConfig, "--synthetic-sink", pair.directory + "/sink2.txt"],
            environment: AgentPair.environment, directory: pair.directory, timeout: 30)
        #expect(second.status == 1)
        #expect(
            second.standardError.contains(
                "another agent is already running on the control socket \(pair.cloudSocket)"), "\(second.standardError)"
        )
        #expect(second.standardError.contains("hint:"))
        #expect(try pair.answered())
    }
}

/// Throwaway system groups and users (`tnd-…-<random>`), removed by `remove()`.
final class ThrowawayAccounts {
    let suffix = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
    var monitorGroup: String { "tnd-mon-\(suffix)" }
    var operatorGroup: String { "tnd-op-\(suffix)" }
    var monitor: String { "tnd-m-\(suffix)" }
    var operatorUser: String { "tnd-o-\(suffix)" }
    var outsider: String { "tnd-n-\(suffix)" }
    private var users: [String] = []
    private var groups: [String] = []

    /// Why the test cannot run here, or nil: it needs root and the shadow tools.
    static let unavailableReason: String? = {
        if geteuid() != 0 { return "not running as root (creating users and groups needs it)" }
        for tool in ["/usr/sbin/groupadd", "/usr/sbin/useradd", "/usr/sbin/runuser"]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is missing"
        }
        return nil
    }()

    func create() throws {
        for group in [monitorGroup, operatorGroup] {
            try run("/usr/sbin/groupadd", ["--system", group])
            groups.append(group)
        }
        for (user, group) in [(monitor, monitorGroup), (operatorUser, operatorGroup), (outsider, nil)] {
            try run(
                "/usr/sbin/useradd",
                ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin"] + (group.map { ["-G", $0] } ?? [])
                    + [user])
            users.append(user)
        }
    }

    func remove() {
        for user in users.reversed() { _ = try? run("/usr/sbin/userdel", [user]) }
        for group in groups.reversed() { _ = try? run("/usr/sbin/groupdel", [group]) }
        users = []
        groups = []
    }

    private func run(_ tool: String, _ arguments: [String]) throws {
        let result = try ChildProcess.capture(tool, arguments, timeout: 60)
        guard result.status == 0 else {
            throw FixtureError("\(result.commandLine) exited \(result.status): \(result.standardError)")
        }
    }
}

@Suite("control access by real credentials", .serialized)
struct ControlCredentialTests {
    /// Runs `tandem status` and `tandem log-level` as real users against a running agent: one in
    /// neither group, a monitor, an operator, root. Needs root (to make the users): where it
    /// cannot run it is reported as skipped, and `appliance/test` under CI=true fails on that.
    @Test(
        .enabled(
            if: ThrowawayAccounts.unavailableReason == nil,
            Comment(rawValue: "needs root, useradd and runuser: \(ThrowawayAccounts.unavailableReason ?? "")")))
    func monitorsReadOperatorsActOthersAreRefusedAndEverythingIsAudited() throws {
        let accounts = ThrowawayAccounts()
        defer { accounts.remove() }
        try accounts.create()
        let pair = try AgentPair(batches: 10)
        // The users must reach the config and the socket: the fixture's directories are 0700.
        for path in [pair.directory, pair.directory + "/pair", pair.directory + "/pair/cloud"] {
            #expect(chmod(path, 0o755) == 0)
        }
        #expect(chmod(pair.cloudConfig, 0o644) == 0)
        let config = try String(contentsOfFile: pair.cloudConfig, encoding: .utf8)
        #expect(!config.contains("[control]"))
        try
            (config
            + "\n[control]\nmonitor_group = \"\(accounts.monitorGroup)\"\noperator_group = \"\(accounts.operatorGroup)\"\n")
            .write(toFile: pair.cloudConfig, atomically: false, encoding: .utf8)
        try pair.startApplier()
        try waitFor("the applier's status", seconds: 20) { try pair.answered() }
        let before = try pair.auditLines().count
        let logLevel = { (level: String, user: String?) in
            try pair.tandem(["log-level", level, "--config", pair.cloudConfig], as: user)
        }

        // In neither group: refused, and told which groups and how to fix it.
        let outsider = try pair.status(as: accounts.outsider).run
        #expect(outsider.status == 3, "\(outsider.standardOutput) \(outsider.standardError)")
        #expect(
            outsider.standardError.contains(
                "may not read status: not in group \(accounts.monitorGroup) or \(accounts.operatorGroup)"),
            "\(outsider.standardError)")
        #expect(outsider.standardError.contains("usermod -aG \(accounts.monitorGroup) \(accounts.outsider)"))
        let outsiderAction = try logLevel("debug", accounts.outsider)
        #expect(outsiderAction.status == 3)
        #expect(outsiderAction.standardError.contains("not in group \(accounts.operatorGroup)"))

        // A monitor reads status, but may not change the log level.
        let monitorStatus = try pair.status(as: accounts.monitor)
        #expect(AgentPair.isAnswer(monitorStatus), "\(monitorStatus.run.standardError)")
        #expect((monitorStatus.json?["local"] as? [String: Any])?["role"] as? String == "applier")
        let monitorAction = try logLevel("debug", accounts.monitor)
        #expect(monitorAction.status == 3)
        #expect(
            monitorAction.standardError.contains(
                "may not change the log level: not in group \(accounts.operatorGroup)"),
            "\(monitorAction.standardError)")

        // An operator may do both; so may root.
        #expect(try pair.answered(as: accounts.operatorUser))
        let operatorAction = try logLevel("debug", accounts.operatorUser)
        #expect(operatorAction.status == 0, "\(operatorAction.standardError)")
        #expect(operatorAction.standardOutput.contains("now logs at debug (was info)"))
        #expect(try pair.answered())
        let rootAction = try logLevel("info", nil)
        #expect(rootAction.status == 0)
        #expect(rootAction.standardOutput.contains("now logs at info (was debug)"))
        #expect(pair.applierLog().contains("log level info -> debug, by user \(accounts.operatorUser)"))

        let audit = try pair.auditLines().dropFirst(before)
        let expected: [(String, String, String)] = [
            (accounts.outsider, "status", "refused"), (accounts.outsider, "log-level debug", "refused"),
            (accounts.monitor, "status", "ok"), (accounts.monitor, "log-level debug", "refused"),
            (accounts.operatorUser, "status", "ok"), (accounts.operatorUser, "log-level debug", "ok"),
            ("root", "status", "ok"), ("root", "log-level info", "ok"),
        ]
        #expect(audit.count == expected.count, "\(audit)")
        for (line, (user, request, result)) in zip(audit, expected) {
            #expect(line["user"] as? String == user)
            #expect(line["request"] as? String == request)
            #expect(line["result"] as? String == result, "\(line)")
            let uid = (line["uid"] as? NSNumber)?.uint32Value
            #expect(uid == getpwnam(user).map { $0.pointee.pw_uid })
            #expect(((line["pid"] as? NSNumber)?.int32Value ?? 0) > 0)
        }
        #expect((audit.first?["message"] as? String)?.contains("not in group") == true)
        #expect(pair.terminate(shipper: false) == 0, "\(pair.logs())")
    }
}
