import Foundation
import TandemCodec
import TandemCore
import TandemTestSupport
import Testing

@testable import TandemSpool

@Suite("Spool round trip")
struct RoundTripTests {
    @Test("append, reopen and read back across several segments")
    func roundTripAcrossSegments() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let path = dir.spoolPath()
        #expect(path == dir.path + "/orders-pg")
        let options = SpoolOptions(segmentBytes: 1000)
        let spool = try openSpool(path, options: options)
        #expect(spool.recovery.created)
        #expect(spool.durableSequence == 0)
        #expect(spool.status.oldestSequence == nil && spool.status.newestSequence == nil)
        for sequence in UInt64(1)...40 {
            #expect(try spool.append(Frames.frame(sequence)) == sequence)
        }
        let names = segmentNames(path)
        #expect(names.count >= 5, "segments: \(names)")
        #expect(names.first == "00000000000000000001.seg")
        // Each segment is named by the sequence of its first record, and stays under
        // the roll size (every append here is one record).
        for name in names {
            let bytes = fileBytes(path + "/" + name)
            #expect(bytes.count <= 1000)
            let first = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian }
            #expect(SpoolFormat.segmentName(first: first) == name)
        }
        let live = try readAll(spool, from: 1)
        #expect(live.count == 40)
        for (index, record) in live.enumerated() { Frames.expectValid(record, sequence: UInt64(index + 1)) }
        spool.close()

        let reopened = try openSpool(path, options: options)
        defer { reopened.close() }
        #expect(!reopened.recovery.created)
        #expect(reopened.recovery.records == 40)
        #expect(reopened.recovery.segments == names.count)
        #expect(reopened.recovery.cutBytes == 0 && reopened.recovery.cutFile == nil)
        #expect(reopened.durableSequence == 40)
        let tail = try readAll(reopened, from: 17)
        #expect(tail.map(\.sequence) == Array(17...40))
        for record in tail { Frames.expectValid(record, sequence: record.sequence) }

        #expect(try reopened.append(Frames.frames(41...45)) == 45)
        let status = reopened.status
        #expect(status.oldestSequence == 1 && status.newestSequence == 45 && status.durableSequence == 45)
        let onDisk = segmentNames(path).reduce(0) { $0 + fileBytes(path + "/" + $1).count }
        #expect(status.bytes == Int64(onDisk))
        #expect(status.segments == segmentNames(path).count)
        #expect(status.acceptsBatches)
    }

    @Test("several frames in one append: one write, one fdatasync (group commit)")
    func groupCommit() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let io = FaultyIO()
        let spool = try openSpool(dir.spoolPath(), io: io)
        defer { spool.close() }
        try spool.append(Frames.frame(1))
        let (syncs, writes) = (io.count("fdatasync"), io.count("pwrite"))
        #expect(try spool.append(Frames.frames(2...11)) == 11)
        #expect(io.count("fdatasync") == syncs + 1)
        #expect(io.count("pwrite") == writes + 1)
        let records = try readAll(spool, from: 1)
        #expect(records.map(\.sequence) == Array(1...11))
        for record in records { Frames.expectValid(record, sequence: record.sequence) }
    }

    @Test("an append never spans segments; the next one rolls")
    func appendStaysInOneSegment() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let path = dir.spoolPath()
        let spool = try openSpool(path, options: SpoolOptions(segmentBytes: 500))
        defer { spool.close() }
        try spool.append(Frames.frame(1))
        try spool.append(Frames.frames(2...9))  // far more than 500 bytes: a segment of its own
        try spool.append(Frames.frame(10))
        #expect(
            segmentNames(path) == ["00000000000000000001.seg", "00000000000000000002.seg", "00000000000000000010.seg"])
        #expect(
            fileBytes(path + "/00000000000000000002.seg").count
                == Frames.frames(2...9).reduce(0) { $0 + recordSize($1) })
        #expect(try readAll(spool, from: 1).map(\.sequence) == Array(1...10))
    }

    @Test("a spool created mid-stream starts at its first sequence, also after reopening empty")
    func firstSequence() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let path = dir.spoolPath()
        do {
            let spool = try openSpool(path, options: SpoolOptions(firstSequence: 501))
            #expect(spool.durableSequence == 500)
            spool.close()
        }
        // Reopened before any batch: the identity file remembers 501, whatever the options say.
        let spool = try openSpool(path)
        #expect(spool.durableSequence == 500)
        guard
            case .outOfSequence(_, 501, 1) = spoolError({ () throws(SpoolError) in try spool.append(Frames.frame(1)) })
        else {
            Issue.record("a batch before the first sequence was not refused")
            return
        }
        #expect(try spool.append(Frames.frame(501)) == 501)
        #expect(segmentNames(path) == ["00000000000000000501.seg"])
        #expect(try readAll(spool, from: 501).map(\.sequence) == [501])
        spool.close()
        #expect(try openSpool(path).durableSequence == 501)
    }

    @Test("zstd frames come back byte for byte and decode to the same batch")
    func zstdFrames() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let spool = try openSpool(dir.spoolPath(), options: SpoolOptions(segmentBytes: 4096))
        defer { spool.close() }
        let frames = (UInt64(1)...20).map { Frames.frame($0, payload: 3000, compression: .zstd) }
        try spool.append(Array(frames[0..<7]))
        try spool.append(Array(frames[7...]))
        let decoder = try BatchDecoder()
        let records = try readAll(spool, from: 1)
        #expect(records.map(\.frame) == frames)
        for record in records {
            #expect(try decoder.decodeHeader(record.frame).sequence == record.sequence)
            #expect(try decoder.decode(record.frame) == Frames.batch(record.sequence, payload: 3000))
        }
    }

    @Test("a cursor started anywhere finds its record, and tails new appends")
    func cursorSeeksAndTails() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let spool = try openSpool(dir.spoolPath(), options: SpoolOptions(segmentBytes: 700))
        defer { spool.close() }
        try spool.append(Frames.frames(1...30))
        for sequence in UInt64(1)...30 {
            #expect(try spool.append([[UInt8]]()) == 30)  // an empty append changes nothing
            let cursor = spool.records(from: sequence)
            let record = try #require(try cursor.next())
            Frames.expectValid(record, sequence: sequence)
        }
        let cursor = spool.records(from: 29)
        #expect(try cursor.next()?.sequence == 29)
        #expect(try cursor.next()?.sequence == 30)
        #expect(try cursor.next() == nil)
        #expect(try cursor.next() == nil)
        try spool.append(Frames.frame(31))
        try spool.append(Frames.frames(32...33))
        #expect(try cursor.next()?.sequence == 31)
        #expect(try cursor.next()?.sequence == 32)
        #expect(try cursor.next()?.sequence == 33)
        #expect(try cursor.next() == nil)
        // A cursor ahead of the spool waits for the batches to arrive.
        let ahead = spool.records(from: 35)
        #expect(try ahead.next() == nil)
        try spool.append(Frames.frames(34...35))
        #expect(try ahead.next()?.sequence == 35)
        #expect(spool.waitForDurable(beyond: 34, timeout: .milliseconds(10)) == 35)
        #expect(spool.waitForDurable(beyond: 35, timeout: .milliseconds(20)) == 35)
    }

    @Test("creation and segment files are made durable: identity via temp + fsync + rename, directory syncs")
    func durableCreation() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let io = FaultyIO()
        let spool = try openSpool(dir.spoolPath(), options: SpoolOptions(segmentBytes: 200), io: io)
        defer { spool.close() }
        // mkdir + parent fsync, identity file fsync, rename, directory fsync.
        #expect(io.count("mkdir") == 1 && io.count("rename") == 1)
        #expect(io.count("fsync") == 3)
        try spool.append(Frames.frame(1))
        #expect(io.count("fsync") == 4, "a new segment's name is synced (directory fsync)")
        #expect(io.count("fdatasync") == 1)
        try spool.append(Frames.frame(2))  // rolls: 200 bytes hold one record
        #expect(io.count("fsync") == 5 && io.count("fdatasync") == 2)
        try spool.append(Frames.frame(3))
        #expect(io.count("fsync") == 6)
        #expect(try spool.release(upTo: 2).segmentsDeleted == 2)
        #expect(io.count("unlink") == 2 && io.count("fsync") == 8, "one directory sync per deleted segment")
    }

    @Test("a cursor checks every record it reads: damage after start-up is reported, not handed out")
    func cursorDetectsLaterDamage() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let spool = try openSpool(dir.spoolPath())
        defer { spool.close() }
        try spool.append(Frames.frames(1...3))
        let segment = dir.spoolPath() + "/" + SpoolFormat.segmentName(first: 1)
        let second = recordInfos(fileBytes(segment))[1]
        flipBit(segment, at: second.offset + 60)
        let cursor = spool.records(from: 1)
        #expect(try cursor.next()?.sequence == 1)
        guard
            case .corrupt(segment, Int64(second.offset), let reason) = spoolError({ () throws(SpoolError) in
                try cursor.next()
            })
        else {
            Issue.record("a damaged record was handed out")
            return
        }
        #expect(reason.contains("checksum") && reason.contains("batch 2"))
        flipBit(segment, at: second.offset + 60)
        flipBit(segment, at: second.offset + 9)  // the header's sequence field
        guard case .corrupt = spoolError({ () throws(SpoolError) in try spool.records(from: 2).next() }) else {
            Issue.record("a damaged header was not reported")
            return
        }
        guard case .corrupt = spoolError({ () throws(SpoolError) in try spool.records(from: 3).next() }) else {
            Issue.record("seeking over a damaged header was not reported")
            return
        }
    }

    @Test("the spool format: record layout and identity file as documented")
    func formatOnDisk() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let path = dir.spoolPath()
        let spool = try openSpool(path)
        let frame = Frames.frame(1)
        try spool.append([frame])
        spool.close()
        let identity = String(decoding: fileBytes(path + "/spool.id"), as: UTF8.self)
        #expect(identity == "tandem-spool\nformat 1\nstream orders-pg\nfirst-sequence 1\n")
        let bytes = fileBytes(path + "/00000000000000000001.seg")
        #expect(bytes.count == frame.count + 32)
        #expect(Array(bytes[0..<4]) == Array("TSPR".utf8))
        bytes.withUnsafeBytes { raw in
            #expect(raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian == UInt32(frame.count))
            #expect(raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian == 1)
            #expect(raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian == 1)
        }
        #expect(Array(bytes[28..<28 + frame.count]) == frame)
        #expect(Array(bytes[28..<32]) == Array("TNDB".utf8))
    }
}

@Suite("Spool sequence and frame checks")
struct SequenceTests {
    private func spoolWith(_ count: UInt64, in dir: TemporaryDirectory) throws -> Spool {
        let spool = try openSpool(dir.spoolPath(), options: SpoolOptions(segmentBytes: 600))
        if count > 0 { try spool.append(Frames.frames(1...count)) }
        return spool
    }

    @Test("a gap is refused and nothing is written")
    func gap() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let spool = try spoolWith(2, in: dir)
        defer { spool.close() }
        let before = snapshot(dir.spoolPath())
        let error = spoolError { () throws(SpoolError) in try spool.append(Frames.frame(4)) }
        guard case .outOfSequence(_, 3, 4) = error else {
            Issue.record("expected outOfSequence(3, 4), got \(String(describing: error))")
            return
        }
        #expect(error!.description.contains("batches 3–3 are missing"))
        #expect(snapshot(dir.spoolPath()) == before)
        #expect(spool.durableSequence == 2)
        #expect(try spool.append(Frames.frame(3)) == 3)
    }

    @Test("a duplicate is refused and nothing is written")
    func duplicate() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let spool = try spoolWith(5, in: dir)
        defer { spool.close() }
        let before = snapshot(dir.spoolPath())
        for old in UInt64(1)...5 {
            let error = spoolError { () throws(SpoolError) in try spool.append(Frames.frame(old)) }
            guard case .outOfSequence(_, 6, old) = error else {
                Issue.record("expected outOfSequence(6, \(old)), got \(String(describing: error))")
                continue
            }
            #expect(error!.description.contains("already holds batch \(old)"))
        }
        #expect(snapshot(dir.spoolPath()) == before)
        #expect(try spool.append(Frames.frame(6)) == 6)
    }

    @Test("one bad frame in a group refuses the whole group", arguments: [0, 2, 4])
    func badFrameInGroup(badIndex: Int) throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let spool = try spoolWith(3, in: dir)
        defer { spool.close() }
        let before = snapshot(dir.spoolPath())
        var group = Frames.frames(4...8)
        group[badIndex] = Frames.frame(4 + UInt64(badIndex) + 1)  // skips one
        let error = spoolError { () throws(SpoolError) in try spool.append(group) }
        guard case .outOfSequence(_, let expected, _) = error, expected == 4 + UInt64(badIndex) else {
            Issue.record("expected outOfSequence at index \(badIndex), got \(String(describing: error))")
            return
        }
        #expect(snapshot(dir.spoolPath()) == before)
        #expect(spool.durableSequence == 3)
        #expect(try spool.append(Frames.frames(4...8)) == 8)
    }

    @Test("frames of another stream, garbage and damaged frames are refused")
    func invalidFrames() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let spool = try spoolWith(1, in: dir)
        defer { spool.close() }
        let before = snapshot(dir.spoolPath())

        let foreign = spoolError { () throws(SpoolError) in try spool.append(Frames.frame(2, stream: otherStream)) }
        guard case .wrongStream(_, testStream, otherStream, 2) = foreign else {
            Issue.record("expected wrongStream, got \(String(describing: foreign))")
            return
        }
        let garbage = spoolError { () throws(SpoolError) in try spool.append([Frames.frame(2), Array("hello".utf8)]) }
        guard case .invalidFrame(_, 1, .tooShort) = garbage else {
            Issue.record("expected invalidFrame(1, tooShort), got \(String(describing: garbage))")
            return
        }
        var flipped = Frames.frame(2)
        flipped[flipped.count / 2] ^= 0x10
        let damaged = spoolError { () throws(SpoolError) in try spool.append(flipped) }
        guard case .invalidFrame(_, 0, .checksumMismatch) = damaged else {
            Issue.record("expected invalidFrame(0, checksumMismatch), got \(String(describing: damaged))")
            return
        }
        #expect(snapshot(dir.spoolPath()) == before)
        #expect(try spool.append(Frames.frame(2)) == 2)
    }
}
