import ApplyKit
import Logging
import TandemCore
import Testing

@testable import TandemAgent

/// A sink whose checkpoint read fails with `failures` in turn, then answers `checkpoint`.
private final class FlakySink: BatchSink, @unchecked Sendable {
    var failures: [ApplyError]
    let answer: SinkCheckpoint

    init(failures: [ApplyError], answer: SinkCheckpoint) {
        self.failures = failures
        self.answer = answer
    }

    func checkpoint() throws -> SinkCheckpoint {
        if !failures.isEmpty { throw failures.removeFirst() }
        return answer
    }

    func apply(_ batches: [SinkBatch]) throws -> SinkCheckpoint { answer }
}

/// The window between the applier's start-up check and its first use of the database.
@Suite("opening the applier's sink")
struct OpenSinkTests {
    let logger = Logger(label: "open-sink-tests")
    let retry = FailureRetry(maximumDelay: .milliseconds(10))

    @Test("a database that fails after the check is waited for again, then the sink and its checkpoint are used")
    func outageAfterTheCheckIsWaitedFor() async throws {
        let sink = FlakySink(
            failures: [
                ApplyError(.postgresql, .connection, "connection refused"),
                ApplyError(.postgresql, .connectionLost, "server closed the connection"),
            ], answer: SinkCheckpoint(sequence: 42, position: .postgresql(LSN(0x500))))
        var opens = 0
        var slept: [Duration] = []
        let opened = try await AgentLaunch.openSink(
            retry: retry, logger: logger, sleep: { slept.append($0) },
            open: {
                opens += 1
                return sink
            })
        #expect(opens == 3)
        #expect(slept.count == 2 && slept.allSatisfy { $0 > .zero && $0 <= .milliseconds(10) })
        #expect(opened?.0 === sink)
        #expect(opened?.1 == SinkCheckpoint(sequence: 42, position: .postgresql(LSN(0x500))))
    }

    @Test("a failure that is not an outage ends the start with that error, after one attempt")
    func setupProblemIsThrown() async {
        let sink = FlakySink(failures: [ApplyError(.mariadb, .privilege, "INSERT denied")], answer: .empty)
        var opens = 0
        await #expect {
            _ = try await AgentLaunch.openSink(
                retry: retry, logger: logger, sleep: { _ in },
                open: {
                    opens += 1
                    return sink
                })
        } throws: { error in
            (error as? ApplyError)?.kind == .privilege
        }
        #expect(opens == 1)
    }

    @Test("opening the sink itself can fail the same way; stopped while waiting gives nil")
    func openFailuresAndStop() async throws {
        var opens = 0
        let opened = try await AgentLaunch.openSink(
            retry: retry, logger: logger, sleep: { _ in },
            open: {
                opens += 1
                if opens == 1 { throw ApplyError(.mariadb, .connection, "can't connect") }
                return nil  // the start-up check was cancelled
            })
        #expect(opens == 2)
        #expect(opened == nil)
    }
}
