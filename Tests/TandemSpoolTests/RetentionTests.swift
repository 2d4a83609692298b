import Foundation
import TandemCodec
import TandemCore
import TandemTestSupport
import Testing

@testable import TandemSpool

@Suite("Spool retention")
struct RetentionTests {
    @Test("release deletes only whole segments at or before the apply checkpoint, never the newest")
    func releaseWholeSegments() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let path = dir.spoolPath()
        let options = SpoolOptions(segmentBytes: 450)
        let spool = try openSpool(path, options: options)
        for sequence in UInt64(1)...20 { try spool.append(Frames.frame(sequence)) }
        let names = segmentNames(path)
        let firsts = names.map { UInt64($0.dropLast(4))! }
        #expect(firsts.count >= 4 && firsts[0] == 1 && firsts[1] >= 3, "segments \(firsts)")
        let sizes = names.map { Int64(fileBytes(path + "/" + $0).count) }

        // Nothing below the checkpoint is a whole segment yet.
        #expect(try spool.release(upTo: 0) == SpoolRelease(segmentsDeleted: 0, bytesFreed: 0))
        #expect(try spool.release(upTo: firsts[1] - 2) == SpoolRelease(segmentsDeleted: 0, bytesFreed: 0))
        #expect(segmentNames(path) == names)

        // Exactly the first segment's last batch.
        #expect(try spool.release(upTo: firsts[1] - 1) == SpoolRelease(segmentsDeleted: 1, bytesFreed: sizes[0]))
        #expect(segmentNames(path) == Array(names.dropFirst()))
        #expect(spool.status.oldestSequence == firsts[1])
        #expect(spool.status.bytes == sizes.dropFirst().reduce(0, +))

        // A checkpoint at the first batch of the third segment keeps that segment.
        #expect(firsts[3] - firsts[2] >= 2)
        #expect(try spool.release(upTo: firsts[2]).segmentsDeleted == 1)
        #expect(segmentNames(path).first == names[2])

        // Even a checkpoint beyond everything keeps the segment being written.
        let all = try spool.release(upTo: 1_000)
        #expect(all.segmentsDeleted == names.count - 3)
        #expect(segmentNames(path) == [names.last!])
        #expect(spool.status.oldestSequence == firsts.last! && spool.status.newestSequence == 20)

        // Released batches are gone for readers; the rest reads on.
        guard
            case .released(_, 1, let oldest) = spoolError({ () throws(SpoolError) in try spool.records(from: 1).next() }
            )
        else {
            Issue.record("reading a released batch was not refused")
            return
        }
        #expect(oldest == firsts.last!)
        #expect(try readAll(spool, from: firsts.last!).map(\.sequence) == Array(firsts.last!...20))
        spool.close()

        // The remaining run reopens cleanly and keeps growing.
        let reopened = try openSpool(path, options: options)
        defer { reopened.close() }
        #expect(reopened.durableSequence == 20 && reopened.status.oldestSequence == firsts.last!)
        for sequence in UInt64(21)...30 { try reopened.append(Frames.frame(sequence)) }
        #expect(try reopened.release(upTo: 30).segmentsDeleted >= 1)
        #expect(segmentNames(path).count == 1)
        #expect(try readAll(reopened, from: reopened.status.oldestSequence!).last?.sequence == 30)
    }

    @Test("a cursor behind the checkpoint is told its batches were released")
    func cursorBehindCheckpoint() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let spool = try openSpool(dir.spoolPath(), options: SpoolOptions(segmentBytes: 450))
        defer { spool.close() }
        for sequence in UInt64(1)...12 { try spool.append(Frames.frame(sequence)) }
        let cursor = spool.records(from: 1)
        #expect(try cursor.next()?.sequence == 1)
        let oldest = spool.status.oldestSequence!
        try spool.release(upTo: 12)
        #expect(spool.status.oldestSequence! > oldest)
        let behindError = spoolError({ () throws(SpoolError) in try cursor.next() })
        guard case .released(_, 2, spool.status.oldestSequence) = behindError else {
            Issue.record("a cursor behind the checkpoint was not told")
            return
        }
        let fresh = spool.records(from: spool.status.oldestSequence!)
        #expect(try fresh.next()?.sequence == spool.status.oldestSequence)
    }
}
