import Foundation
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `tandem status --watch` as an operator sees it: on a terminal (tmux, its screen read back
/// with capture-pane) the report is redrawn in place; into a pipe, one line per refresh.
@Suite("tandem status --watch", .serialized)
struct StatusWatchTests {
    static let tmux = "/usr/bin/tmux"

    @Test(
        "on a terminal the report is redrawn in place, refresh after refresh",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: tmux),
            "tmux is not installed (appliance/lib/packages.sh lists it)"))
    func redrawnInPlaceOnATerminal() throws {
        let pair = try AgentPair(batches: 50)
        try pair.startApplier()
        try pair.startShipper()
        #expect(pair.waitForAll(timeout: 60), "\(pair.logs())")
        let session = "tandem-watch-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let command = "\(AgentPair.executable) status --watch --interval 0.3 --config \(pair.cloudConfig)"
        func tmux(_ arguments: [String]) throws -> CompletedProcess {
            try ChildProcess.capture(Self.tmux, arguments, environment: nil, directory: "/", timeout: 30)
        }
        #expect(try tmux(["new-session", "-d", "-s", session, "-x", "150", "-y", "50", command]).status == 0)
        defer { _ = try? tmux(["kill-session", "-t", session]) }
        var screens: [String] = []
        let refreshed = try eventually(30, pollMicroseconds: 200_000) {
            let screen = try tmux(["capture-pane", "-p", "-t", session]).standardOutput
            if screen.contains("refreshing every"), screens.last != screen { screens.append(screen) }
            return screens.count >= 3
        }
        #expect(refreshed, "screens seen: \(screens)")
        for screen in screens {
            // Redrawn in place: one report on the screen, from its first line, never scrolled on.
            #expect(screen.hasPrefix("Tandem pair \"acme\" — site cloud (applier)"), "\(screen)")
            #expect(screen.components(separatedBy: "Tandem pair").count == 2, "\(screen)")
            #expect(screen.contains("If the primary vanished now") && screen.contains("A switchover would wait"))
        }
        #expect(screens.last?.contains("Peer site idc (shipper)") == true, "\(screens.last ?? "")")
    }

    @Test("into a pipe: one line per refresh, and an agent that stops is said to be down")
    func linesIntoAPipe() throws {
        let pair = try AgentPair(batches: 50)
        try pair.startApplier()
        try pair.startShipper()
        #expect(pair.waitForAll(timeout: 60), "\(pair.logs())")
        let log = pair.directory + "/watch.log"
        let watch = try ChildProcess.start(
            AgentPair.executable, ["status", "--watch", "--interval", "0.2", "--config", pair.cloudConfig], log: log)
        defer {
            watch.signal(SIGKILL)
            _ = watch.wait(timeout: 5)
        }
        func lines() -> [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        #expect(try eventually(30) { lines().count >= 3 }, "\(lines())")
        for line in lines().prefix(3) {
            #expect(line.contains(" rpo=") && line.contains(" apply_lag=") && line.contains(" link="), "\(line)")
            #expect(!line.contains("\u{1B}"), "no terminal escapes into a pipe: \(line)")
        }
        #expect(pair.terminate(shipper: false) == 0, "\(pair.logs())")
        #expect(
            try eventually(30) { lines().last?.contains("down: the agent of site cloud does not answer") == true },
            "\(lines())")
        #expect(watch.isRunning, "the watch goes on while the agent is away")
    }
}
