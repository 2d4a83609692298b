import Dispatch
import Foundation
import TandemCodec
import TandemCore
import TandemTestSupport
import Testing

@testable import TandemSpool

/// A value shared with a background thread.
final class Shared<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.lock(); defer { lock.unlock() }; return value }
    func update(_ body: (inout Value) -> Void) { lock.lock(); body(&value); lock.unlock() }
}

@Suite("Spool readers and writer on different threads")
struct ConcurrencyTests {
    @Test("a record written but not yet synced is invisible to readers, who are not held up by the sync")
    func readersSeeOnlyDurable() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let io = FaultyIO()
        let spool = try openSpool(dir.spoolPath(), io: io)
        defer { spool.close() }
        try spool.append(Frames.frames(1...2))
        let segment = dir.spoolPath() + "/" + SpoolFormat.segmentName(first: 1)
        let sizeBefore = fileBytes(segment).count

        let inSync = DispatchSemaphore(value: 0)
        let letSyncFinish = DispatchSemaphore(value: 0)
        let appended = DispatchSemaphore(value: 0)
        let result = Shared<UInt64?>(nil)
        io.beforeFdatasync = {
            inSync.signal()
            letSyncFinish.wait()
        }
        // Whatever fails below, the held sync must end before `close` (deferred above)
        // waits for the writer, or a failing test would hang instead of failing.
        var released = false
        defer {
            if !released {
                letSyncFinish.signal()
                _ = appended.wait(timeout: .now() + 10)
            }
        }
        DispatchQueue.global().async {
            let durable = try? spool.append(Frames.frame(3))
            result.update { $0 = durable }
            appended.signal()
        }
        #expect(inSync.wait(timeout: .now() + 10) == .success)
        io.beforeFdatasync = nil

        // Batch 3 is in the file, but its sync has not returned.
        #expect(fileBytes(segment).count > sizeBefore)
        #expect(spool.durableSequence == 2)
        #expect(spool.status.newestSequence == 2)
        let cursor = spool.records(from: 1)
        #expect(try cursor.next()?.sequence == 1)
        #expect(try cursor.next()?.sequence == 2)
        #expect(try cursor.next() == nil)
        #expect(try spool.records(from: 3).next() == nil)
        #expect(spool.waitForDurable(beyond: 2, timeout: .milliseconds(50)) == 2)

        letSyncFinish.signal()
        released = true
        #expect(appended.wait(timeout: .now() + 10) == .success)
        #expect(result.get() == 3)
        let third = try #require(try cursor.next())
        Frames.expectValid(third, sequence: 3)
    }

    @Test("a reader tailing a busy writer sees every batch once, in order, each already durable")
    func tailingReader() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let spool = try openSpool(dir.spoolPath(), options: SpoolOptions(segmentBytes: 2048))
        defer { spool.close() }
        let total: UInt64 = 400
        let frames = (UInt64(1)...total).map { Frames.frame($0) }
        let writerDone = DispatchSemaphore(value: 0)
        let readerDone = DispatchSemaphore(value: 0)
        let writerError = Shared<String?>(nil)
        let seen = Shared<[UInt64]>([])
        let problems = Shared<[String]>([])

        DispatchQueue.global().async {
            var next: UInt64 = 1
            var group = 1
            while next <= total {
                let last = min(total, next + UInt64(group) - 1)
                do {
                    try spool.append(Array(frames[Int(next - 1)..<Int(last)]))
                } catch {
                    writerError.update { $0 = "\(error)" }
                    break
                }
                next = last + 1
                group = group % 7 + 1
            }
            writerDone.signal()
        }
        DispatchQueue.global().async {
            let cursor = spool.records(from: 1)
            let decoder = try! BatchDecoder()
            var expected: UInt64 = 1
            let deadline = ContinuousClock.now + .seconds(60)
            while expected <= total && ContinuousClock.now < deadline {
                do {
                    guard let record = try cursor.next() else {
                        _ = spool.waitForDurable(beyond: expected - 1, timeout: .milliseconds(200))
                        continue
                    }
                    if record.sequence != expected {
                        problems.update { $0.append("got \(record.sequence), expected \(expected)") }
                    }
                    if record.sequence > spool.durableSequence {
                        problems.update { $0.append("\(record.sequence) read before durable") }
                    }
                    if (try? decoder.decodeHeader(record.frame).sequence) != record.sequence {
                        problems.update { $0.append("frame \(record.sequence) does not decode") }
                    }
                    seen.update { $0.append(record.sequence) }
                    expected = record.sequence + 1
                } catch {
                    problems.update { $0.append("reader: \(error)") }
                    break
                }
            }
            readerDone.signal()
        }
        #expect(writerDone.wait(timeout: .now() + 120) == .success)
        #expect(readerDone.wait(timeout: .now() + 120) == .success)
        #expect(writerError.get() == nil)
        #expect(problems.get().isEmpty, "\(problems.get().prefix(5))")
        #expect(seen.get() == Array(1...total))
    }
}
