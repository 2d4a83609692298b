import CaptureKit
import Dispatch
import Foundation
import Logging
import TandemCodec
import TandemCore
import Testing

@Suite("capture thread and batch numbering")
struct CaptureThreadTests {
    struct Failure: OperatorError {
        var final: Bool
        var description: String { final ? "needs the operator" : "connection refused" }
        var hint: String { "test" }
    }

    static let quickBackoff = ReconnectBackoff(minimumDelay: .milliseconds(1), maximumDelay: .milliseconds(2))

    @Test func connectionFailuresAreRetriedAndAFinalOneStopsTheThread() {
        let thread = CaptureThread()
        let attempts = Counter()
        let failures = Counter()
        let done = DispatchSemaphore(value: 0)
        thread.start(
            logger: Logger(label: "test"), backoff: Self.quickBackoff,
            session: { () throws(Failure) in
                // Three broken connections, then something only the operator can fix.
                throw Failure(final: attempts.increment() == 4)
            },
            recovery: { $0.final ? .stop : .retry },
            failed: { _ in
                failures.increment()
                done.signal()
            })
        done.wait()
        thread.stopAndWait()
        #expect(attempts.value == 4)
        #expect(failures.value == 1)
    }

    @Test func stoppingEndsARunningSessionAndSkipsTheFailureReport() {
        let thread = CaptureThread()
        let started = DispatchSemaphore(value: 0)
        let failures = Counter()
        thread.start(
            logger: Logger(label: "test"), backoff: Self.quickBackoff,
            session: { [thread] () throws(Failure) in
                started.signal()
                while !thread.isStopping { usleep(1_000) }
                // A session interrupted by the stop may fail on its closed socket: not reported.
                throw Failure(final: true)
            },
            recovery: { _ in .stop },
            failed: { _ in failures.increment() })
        started.wait()
        thread.stopAndWait()
        #expect(thread.isStopping)
        #expect(failures.value == 0)
        #expect(!thread.register(3), "a stopped thread accepts no socket")
    }

    static let relation = Relation(
        name: RelationName(schema: "s", name: "t"),
        columns: [
            Column(
                name: "id", type: .integer(bits: 64, signed: true), nativeType: "bigint", isKey: true, isNullable: false
            )
        ])

    static func transaction(_ commit: UInt64, chunk: TransactionChunk = .whole) -> Transaction {
        Transaction(
            commitPosition: .postgresql(LSN(commit)), commitTime: Timestamp(microsecondsSinceEpoch: 0),
            chunk: chunk, changes: [RowChange(relation: relation, kind: .insert, new: [.int(Int64(commit))])])
    }

    @Test func aBatchOfChunksOnlyRepeatsThePositionBeforeIt() throws {
        let encoder = try BatchEncoder()
        var numbering = BatchNumbering(stream: StreamID("s")!, firstSequence: 7)
        numbering.startingAt(.postgresql(LSN(100)))
        let whole = try numbering.seal(
            .init(transactions: [Self.transaction(110)], ackPosition: .postgresql(LSN(111))), with: encoder)
        #expect(whole.sequence == 7 && whole.lastPosition == .postgresql(LSN(111)))
        let chunk = try numbering.seal(
            .init(
                transactions: [Self.transaction(200, chunk: TransactionChunk(index: 0, isFinal: false))],
                ackPosition: nil),
            with: encoder)
        #expect(chunk.sequence == 8 && chunk.lastPosition == .postgresql(LSN(111)))
        // A later start position does not move a capture that already completed transactions.
        numbering.startingAt(.postgresql(LSN(50)))
        #expect(numbering.completedThrough == .postgresql(LSN(111)))
        #expect(numbering.nextSequence == 9)
        let decoded = try BatchDecoder().decode(chunk.frame)
        #expect(decoded.sequence == 8 && decoded.stream == StreamID("s")!)
    }

    @Test func aChunkBatchWithoutAStartPositionIsRefused() throws {
        let encoder = try BatchEncoder()
        var numbering = BatchNumbering(stream: StreamID("s")!, firstSequence: 1)
        #expect(throws: BatchCodecError.self) {
            try numbering.seal(
                .init(
                    transactions: [Self.transaction(200, chunk: TransactionChunk(index: 0, isFinal: false))],
                    ackPosition: nil),
                with: encoder)
        }
        #expect(numbering.nextSequence == 1, "a refused batch uses no sequence number")
    }
}

/// A counter shared with closures that run on the capture thread.
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    @discardableResult func increment() -> Int {
        lock.withLock {
            count += 1; return count
        }
    }
    var value: Int { lock.withLock { count } }
}
