import Foundation
import TandemTestSupport
import Testing

/// `appliance/lib/skipped-tests.sh`, which makes `appliance/test` under CI=true fail when a
/// test was skipped, run on lines recorded from real runs: Swift Testing's from this suite's
/// test bundle run as an unprivileged user (so that the tmpfs test skipped), XCTest's from a
/// throwaway package whose one test threw `XCTSkip`.
@Suite("appliance/test: skipped tests fail CI")
struct SkippedTestsScriptTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("appliance/lib/skipped-tests.sh").path

    static let recordedWithSkip = """
        WAN test skipped: not running as root
        ◇ Test run started.
        ↳ Testing Library Version: 6.3.1 (937120cbc281cf2)
        ◇ Suite "Spool on a real full file system" started.
        ◇ Test "a cursor behind the checkpoint is told its batches were released" started.
        ➜ Test "a really full disk: diskFull, nothing corrupted, appends resume once retention frees space" skipped: "needs a tmpfs mount: not root, cannot mount a tmpfs"
        ✔ Test "a cursor behind the checkpoint is told its batches were released" passed after 0.024 seconds.
        ✔ Suite "Spool on a real full file system" passed after 0.024 seconds.
        ✔ Test run with 3 tests in 2 suites passed after 0.035 seconds.
        ◇ Test "transactions replayed under new batch sequences are skipped; the sequence still advances" started.
        ✔ Test "replays are skipped. the sequence still advances" passed after 0.113 seconds.
        /tmp/xcskip/Tests/SkipTests/SkipTests.swift:3: LegacyTests.testNeedsRoot : Test skipped - not root
        Test Case 'LegacyTests.testNeedsRoot' skipped (0.001 seconds)
        	 Executed 2 tests, with 1 test skipped and 0 failures (0 unexpected) in 0.002 (0.002) seconds

        """

    static let recordedWithoutSkip = """
        ◇ Test "a really full disk: diskFull, nothing corrupted, appends resume once retention frees space" started.
        ✔ Test "a really full disk: diskFull, nothing corrupted, appends resume once retention frees space" passed after 0.043 seconds.
        ✔ Test run with 47 tests in 10 suites passed after 3.317 seconds.

        """

    func run(_ arguments: [String], on output: String) throws -> CompletedProcess {
        try withTemporaryDirectory("skipped-tests") { directory in
            let file = directory.file("output.txt")
            try output.write(toFile: file, atomically: true, encoding: .utf8)
            return try ChildProcess.capture("/bin/bash", [Self.script] + arguments + [file], timeout: 30)
        }
    }

    @Test func namesExactlyTheSkippedTests() throws {
        let result = try run([], on: Self.recordedWithSkip)
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(
            result.standardOutput.split(separator: "\n") == [
                "Test \"a really full disk: diskFull, nothing corrupted, appends resume once retention frees space\"",
                "Test LegacyTests.testNeedsRoot",
            ])
        #expect(try run([], on: Self.recordedWithoutSkip).standardOutput == "")
    }

    @Test(
        "the CI verdict: 1 for skips after a passing run, swift test's status otherwise",
        arguments: [(0, true, 1), (0, false, 0), (3, true, 3), (3, false, 3)])
    func verdict(status: Int32, withSkip: Bool, expected: Int32) throws {
        let result = try run(
            ["--fail-on-skips", String(status)],
            on: withSkip ? Self.recordedWithSkip : Self.recordedWithoutSkip)
        #expect(result.exitCode == expected)
        #expect(result.standardError.contains("a really full disk") == withSkip, "\(result.standardError)")
        #expect(result.standardError.contains("WAN test") == false)
    }
}
