import Foundation
import TandemCodec
import TandemCore
import TandemTestSupport
import Testing

@testable import TandemSpool

/// The shapes of append a write failure can hit.
enum AppendShape: String, CaseIterable, CustomTestStringConvertible {
    /// One frame at the end of the current segment.
    case single
    /// Four frames in one append.
    case group
    /// One frame that has to start a new segment (created, then removed again on failure).
    case rolling

    var testDescription: String { rawValue }

    var options: SpoolOptions { SpoolOptions(segmentBytes: self == .rolling ? 300 : 1 << 20) }
    var unit: [[UInt8]] { self == .group ? Frames.frames(3...6) : [Frames.frame(3)] }
    var unitBytes: Int { unit.reduce(0) { $0 + recordSize($1) } }
}

@Suite("Spool write failures")
struct FaultTests {
    /// A spool holding batches 1 and 2 (one append each), opened on `io`.
    private func prepared(_ dir: TemporaryDirectory, _ shape: AppendShape, io: FaultyIO) throws -> Spool {
        let spool = try openSpool(dir.spoolPath(), options: shape.options, io: io)
        try spool.append(Frames.frame(1))
        try spool.append(Frames.frame(2))
        return spool
    }

    /// Reopens with the real I/O layer and checks every batch up to `through`.
    private func expectIntact(
        _ dir: TemporaryDirectory, _ shape: AppendShape, through last: UInt64,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let spool = try openSpool(dir.spoolPath(), options: shape.options)
        defer { spool.close() }
        #expect(spool.durableSequence == last, sourceLocation: sourceLocation)
        let records = try readAll(spool, from: 1)
        #expect(records.map(\.sequence) == Array(1...last), sourceLocation: sourceLocation)
        for record in records { Frames.expectValid(record, sequence: record.sequence, sourceLocation: sourceLocation) }
    }

    @Test(
        "ENOSPC at any byte of an append: diskFull, the spool exactly as before, later appends work",
        arguments: AppendShape.allCases)
    func diskFullAtByte(shape: AppendShape) throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let io = FaultyIO()
        let spool = try prepared(dir, shape, io: io)
        let size = shape.unitBytes
        let positions = Array(Set([0, 1, 4, 27, 28, 29, 60, size / 2, size - 5, size - 1])).sorted()
        for position in positions {
            let before = snapshot(dir.spoolPath())
            let status = spool.status
            io.failWrites(afterBytes: position, errno: ENOSPC)
            for attempt in 1...2 {  // still full on the retry
                let error = spoolError { () throws(SpoolError) in try spool.append(shape.unit) }
                guard case .diskFull(let path) = error else {
                    Issue.record(
                        "byte \(position), attempt \(attempt): expected diskFull, got \(String(describing: error))")
                    continue
                }
                #expect(path.hasSuffix(".seg"))
                #expect(error!.hint.contains("free space"))
                #expect(snapshot(dir.spoolPath()) == before, "byte \(position): the spool changed")
                #expect(spool.status == status, "byte \(position)")
            }
            io.heal()
        }
        #expect(spool.status.acceptsBatches)
        let last = UInt64(2 + shape.unit.count)
        #expect(try spool.append(shape.unit) == last)
        try spool.append(Frames.frame(last + 1))
        spool.close()
        try expectIntact(dir, shape, through: last + 1)
    }

    @Test(
        "EIO at a byte, or from fdatasync, or from the directory sync of a new segment: writeFailed, unchanged",
        arguments: AppendShape.allCases)
    func otherWriteErrors(shape: AppendShape) throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let io = FaultyIO()
        let spool = try prepared(dir, shape, io: io)
        let before = snapshot(dir.spoolPath())
        let append = { () throws(SpoolError) in try spool.append(shape.unit) }

        io.failWrites(afterBytes: 30, errno: EIO)
        guard case .writeFailed(_, "pwrite", EIO) = spoolError(append) else {
            Issue.record("EIO from pwrite was not reported as writeFailed")
            return
        }
        #expect(snapshot(dir.spoolPath()) == before)
        io.heal()

        io.failNext("fdatasync", errno: EIO)
        guard case .writeFailed(_, "fdatasync", EIO) = spoolError(append) else {
            Issue.record("EIO from fdatasync was not reported as writeFailed")
            return
        }
        #expect(snapshot(dir.spoolPath()) == before)

        io.failNext("fdatasync", errno: ENOSPC)
        guard case .diskFull = spoolError(append) else {
            Issue.record("ENOSPC from fdatasync was not reported as diskFull")
            return
        }
        #expect(snapshot(dir.spoolPath()) == before)

        if shape == .rolling {
            io.failNext("fsync", errno: EIO)  // the directory sync after creating the segment
            guard case .writeFailed(_, "fsync", EIO) = spoolError(append) else {
                Issue.record("a failed directory sync was not reported")
                return
            }
            #expect(snapshot(dir.spoolPath()) == before, "the new segment must be removed again")
        }
        #expect(spool.durableSequence == 2)
        #expect(try spool.append(shape.unit) == UInt64(2 + shape.unit.count))
        spool.close()
        try expectIntact(dir, shape, through: UInt64(2 + shape.unit.count))
    }

    @Test(
        "when the cleanup fails too, intake stops until restart; recovery then cuts the partial append",
        arguments: AppendShape.allCases)
    func cleanupFails(shape: AppendShape) throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let io = FaultyIO()
        let spool = try prepared(dir, shape, io: io)
        io.failWrites(afterBytes: 50, errno: ENOSPC)
        io.failNext(shape == .rolling ? "unlink" : "ftruncate", errno: EIO)
        guard case .diskFull = spoolError({ () throws(SpoolError) in try spool.append(shape.unit) }) else {
            Issue.record("expected diskFull first")
            return
        }
        io.heal()
        #expect(!spool.status.acceptsBatches)
        #expect(spool.durableSequence == 2)
        let refused = spoolError { () throws(SpoolError) in try spool.append(shape.unit) }
        guard case .needsRestart(_, let reason) = refused else {
            Issue.record("expected needsRestart, got \(String(describing: refused))")
            return
        }
        #expect(reason.contains("ftruncate") || reason.contains("unlink"))
        #expect(refused!.hint.contains("restart"))
        #expect(try readAll(spool, from: 1).map(\.sequence) == [1, 2], "readers still see the durable batches")
        spool.close()

        let reopened = try openSpool(dir.spoolPath(), options: shape.options)
        #expect(reopened.durableSequence == 2)
        #expect(reopened.recovery.cutBytes == 50)
        #expect(try reopened.append(shape.unit) == UInt64(2 + shape.unit.count))
        reopened.close()
        try expectIntact(dir, shape, through: UInt64(2 + shape.unit.count))
    }

    @Test(
        "crash simulation: the process dies at any byte of an append; the restart keeps exactly the whole records",
        arguments: AppendShape.allCases)
    func crashAndRestart(shape: AppendShape) throws {
        let size = shape.unitBytes
        let recordEnds = shape.unit.reduce(into: [Int]()) { ends, frame in
            ends.append((ends.last ?? 0) + recordSize(frame))
        }
        let positions = Array(
            Set([0, 1, 28, 29, 100, recordEnds[0] - 1, recordEnds[0], recordEnds[0] + 3, size - 1, size])
        ).sorted()
        for position in positions where position <= size {
            let dir = TemporaryDirectory("spooltest")
            defer { dir.remove() }
            let io = FaultyIO()
            let spool = try prepared(dir, shape, io: io)
            io.crash(afterBytes: position)
            let error = spoolError { () throws(SpoolError) in try spool.append(shape.unit) }
            guard case .writeFailed(_, _, EIO) = error else {
                Issue.record("crash at byte \(position): expected writeFailed(EIO), got \(String(describing: error))")
                continue
            }
            #expect(io.hasCrashed)
            spool.close()

            // Restart: whole records that reached the file are kept (nobody was told
            // they were durable, and the sender resends from the durable sequence).
            let whole = UInt64(recordEnds.filter { $0 <= position }.count)
            let restarted = try openSpool(dir.spoolPath(), options: shape.options)
            #expect(restarted.durableSequence == 2 + whole, "crash at byte \(position)")
            let partial = Int64(position - (recordEnds.filter { $0 <= position }.last ?? 0))
            #expect(restarted.recovery.cutBytes == partial, "crash at byte \(position)")
            let rest = Array(shape.unit.dropFirst(Int(whole)))
            if !rest.isEmpty { try restarted.append(rest) }
            try restarted.append(Frames.frame(UInt64(3 + shape.unit.count)))
            restarted.close()
            try expectIntact(dir, shape, through: UInt64(3 + shape.unit.count))
        }
    }

    @Test("the maximum spool size stops intake with spoolFull, and releasing makes room")
    func maximumSize() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let frameBytes = recordSize(Frames.frame(1))
        let options = SpoolOptions(segmentBytes: Int64(2 * frameBytes), maximumBytes: Int64(6 * frameBytes + 10))
        let spool = try openSpool(dir.spoolPath(), options: options)
        defer { spool.close() }
        for sequence in UInt64(1)...6 { try spool.append(Frames.frame(sequence)) }
        let before = snapshot(dir.spoolPath())
        let error = spoolError { () throws(SpoolError) in try spool.append(Frames.frame(7)) }
        guard case .spoolFull(_, let bytes, let needed, let limit) = error else {
            Issue.record("expected spoolFull, got \(String(describing: error))")
            return
        }
        #expect(bytes == Int64(6 * frameBytes) && needed == Int64(frameBytes) && limit == options.maximumBytes)
        #expect(error!.hint.contains("spool.max_bytes"))
        #expect(snapshot(dir.spoolPath()) == before)
        #expect(spool.durableSequence == 6)
        // A group that would cross the limit is refused whole.
        guard case .spoolFull = spoolError({ () throws(SpoolError) in try spool.append(Frames.frames(7...8)) }) else {
            Issue.record("a group over the limit was not refused")
            return
        }
        // Apply catches up to 4: segments [1,2] and [3,4] go, and intake resumes.
        let released = try spool.release(upTo: 4)
        #expect(released.segmentsDeleted == 2 && released.bytesFreed == Int64(4 * frameBytes))
        #expect(try spool.append(Frames.frames(7...10)) == 10)
        guard case .spoolFull = spoolError({ () throws(SpoolError) in try spool.append(Frames.frame(11)) }) else {
            Issue.record("the limit no longer holds after a release")
            return
        }
    }
}
