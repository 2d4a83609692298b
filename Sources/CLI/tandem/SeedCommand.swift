import ArgumentParser
import Foundation
import TandemAgent
import TandemControl
import TandemCore
import TandemSeed
import TandemStatus

#if canImport(Glibc)
    import Glibc
#endif

/// `tandem seed --config site.toml`: starts (or continues) the initial copy and follows it.
struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy schema and data to the DR site while the primary stays online.",
        discussion: """
            Run at either site once both agents run: the primary's agent reads each table in \
            key-ordered chunks, each under share locks in a transaction that writes a watermark \
            into the primary's log, so the rows reach the DR site in the change stream exactly \
            where they are current (README, "Seed"). Tables missing at the DR site are created from \
            the primary's schema; a DR table that holds rows stops the seed unless \
            --truncate-target. Progress is durable per chunk: after a crash of either agent the \
            primary's agent continues by itself, and running this command again follows it (or \
            continues a seed that stopped). Interrupting this command does not stop the seed. \
            Needs the [control] operator_group (or root).

            Exit codes: 0 the seed is done; 1 it stopped with an error (run again to continue); \
            2 the agent is not running; 3 refused or failed (access, configuration).
            """)

    @Option(help: "The site's TOML configuration.") var config: String
    @Option(help: "Only these tables (schema.table), comma-separated; default every replicated table.")
    var tables: String?
    @Flag(help: "Empty DR tables that already hold rows (their rows are lost at the DR site).")
    var truncateTarget = false
    @Option(help: "Rows per chunk (default 5000).") var chunkRows: Int?
    @Option(help: "Chunks read at once, one primary connection each (default 2).") var readers: Int?
    @Flag(help: "Print the progress as JSON lines.") var json = false

    func validate() throws {
        if let chunkRows, chunkRows < 1 { throw ValidationError("--chunk-rows must be positive") }
        if let readers, !(1...16).contains(readers) { throw ValidationError("--readers must be 1 to 16") }
    }

    func run() async throws {
        let call = try ControlCall(configPath: config)
        let names = tables?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let request = SeedControlRequest(
            tables: names, truncateTarget: truncateTarget, chunkRows: chunkRows, readers: readers)
        var stderr = StandardError()
        let first = try call.send(.seed(request)) { error in print(operatorReport(error), terminator: "", to: &stderr) }
        var status = try Self.decode(first)
        let display = SeedDisplay(mode: json ? .json : (isatty(1) == 1 ? .terminal : .lines))
        for line in status.resumed { display.note("continuing: \(line)") }
        // Asked four times a second, so the command ends soon after the seed does; shown once a
        // second (and on every change of state).
        var failures = 0
        var shown: (at: Date, state: SeedStatus.State)?
        while true {
            let ended = [SeedStatus.State.done, .failed, .none].contains(status.state)
            if ended || shown == nil || shown!.state != status.state || Date().timeIntervalSince(shown!.at) >= 1 {
                display.show(status)
                shown = (Date(), status.state)
            }
            if ended { break }
            try await Task.sleep(for: .milliseconds(250))
            do {
                let result = try call.client.send(.seedStatus)
                guard case .ok(let bytes) = result else {
                    if case .failed(let error, let hint) = result { display.note("\(error) (\(hint))") }
                    failures += 1
                    if failures >= 120 { throw ExitCode(1) }
                    continue
                }
                status = try Self.decode(bytes)
                failures = 0
            } catch let exit as ExitCode {
                throw exit
            } catch {
                failures += 1
                display.note("cannot ask the agent (\(error)); trying again")
                if failures >= 120 { throw ExitCode(ControlExit.notRunning) }
            }
        }
        display.finish(status)
        if status.state == .none {
            print("tandem: no seed has run on this pair", to: &stderr)
            throw ExitCode(1)
        }
        if status.exitCode != 0 { throw ExitCode(status.exitCode) }
    }

    static func decode(_ bytes: [UInt8]) throws(ExitCode) -> SeedStatus {
        do { return try SeedStatusJSON.decode(bytes) } catch {
            var stderr = StandardError()
            print("tandem: the agent's seed status is unreadable: \(error)", to: &stderr)
            throw ExitCode(ControlExit.failed)
        }
    }
}

/// How a seed's progress is shown: a bar redrawn in place on a terminal, a plain line every 10 s
/// otherwise (logs, pipes), or a JSON line per second for machines.
final class SeedDisplay {
    enum Mode { case terminal, lines, json }
    let mode: Mode
    private var lastLine = Date.distantPast
    private var lastState: SeedStatus.State?
    private var drawn = false

    init(mode: Mode) {
        self.mode = mode
    }

    func note(_ text: String) {
        if mode == .terminal && drawn { print("") }
        drawn = false
        if mode == .json {
            var stderr = StandardError()
            print("tandem: \(text)", to: &stderr)
        } else {
            print("seed: \(text)")
        }
    }

    func show(_ status: SeedStatus) {
        let changed = status.state != lastState
        lastState = status.state
        switch mode {
        case .json:
            // Flushed per line: a script reading a pipe or a file follows the seed as it goes.
            print(String(decoding: SeedStatusJSON.encode(status), as: UTF8.self))
            fflush(nil)
        case .terminal:
            if changed && drawn { print("") }
            print("\r\u{1B}[2K" + Self.bar(status) + " " + Self.line(status), terminator: "")
            fflush(nil)
            drawn = true
        case .lines:
            guard changed || Date().timeIntervalSince(lastLine) >= 10 else { return }
            lastLine = Date()
            print("seed: " + Self.line(status))
            fflush(nil)
        }
    }

    func finish(_ status: SeedStatus) {
        if mode == .terminal && drawn { print("") }
        guard mode != .json else { return }
        for table in status.tables {
            print(
                "  \(table.name): \(table.state.rawValue), \(table.rows) rows, \(Format.bytes(UInt64(max(table.bytes, 0))))"
            )
        }
        if let error = status.error {
            print("seed: stopped: \(error.description)")
            print("      hint: \(error.hint)")
        }
    }

    /// `copying  1 204 000 / 3 000 000 rows (40%), 118.2 MiB, 31 000 rows/s, 2.1 MiB/s, ETA 58 s,
    /// primary log kept 12.0 MiB, 1/3 tables done`.
    static func line(_ status: SeedStatus) -> String {
        var parts = [status.state.rawValue]
        if status.estimatedRows > 0 || status.rows > 0 {
            var rows = "\(status.rows) / \(status.estimatedRows) rows"
            if let percent = percent(status) { rows += " (\(percent)%)" }
            parts.append(rows)
            parts.append(Format.bytes(UInt64(max(status.bytes, 0))))
        }
        if let rate = status.rowsPerSecond { parts.append(String(format: "%.0f rows/s", rate)) }
        if let rate = status.bytesPerSecond { parts.append(Format.bytes(UInt64(max(rate, 0))) + "/s") }
        if let eta = status.etaSeconds { parts.append("ETA " + Format.seconds(eta)) }
        if let retained = status.sourceLogRetainedBytes { parts.append("primary log kept " + Format.bytes(retained)) }
        let done = status.tables.filter { $0.state == .done }.count
        if !status.tables.isEmpty { parts.append("\(done)/\(status.tables.count) tables done") }
        return parts.joined(separator: ", ")
    }

    static func percent(_ status: SeedStatus) -> Int? {
        guard status.estimatedRows > 0 else { return nil }
        return min(100, Int(Double(status.rows) * 100 / Double(status.estimatedRows)))
    }

    static func bar(_ status: SeedStatus) -> String {
        let width = 24
        let filled = status.state == .done ? width : (percent(status) ?? 0) * width / 100
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
    }
}
