import Foundation
import TandemCodec
import TandemCore
import TandemTestSupport
import Testing

@testable import TandemSpool

/// Where each record of an intact segment file starts (the test's own reading of the format).
struct RecordInfo {
    var sequence: UInt64
    var offset: Int
    var size: Int
}

func recordInfos(_ bytes: [UInt8]) -> [RecordInfo] {
    var out: [RecordInfo] = []
    var offset = 0
    bytes.withUnsafeBytes { raw in
        while offset + 28 <= raw.count {
            let length = Int(raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self).littleEndian)
            let sequence = raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self).littleEndian
            out.append(RecordInfo(sequence: sequence, offset: offset, size: length + 32))
            offset += length + 32
        }
    }
    return out
}

@Suite("Spool start-up recovery")
struct RecoveryTests {
    /// Batches 1…`count`, one append each, in one segment; closed. Returns the segment path.
    private func singleSegment(_ dir: TemporaryDirectory, count: UInt64 = 5) throws -> String {
        let spool = try openSpool(dir.spoolPath())
        for sequence in 1...count { try spool.append(Frames.frame(sequence)) }
        spool.close()
        return dir.spoolPath() + "/" + SpoolFormat.segmentName(first: 1)
    }

    @Test(
        "torn last record: cut at every byte inside it, recovery keeps the previous one and appending resumes",
        arguments: [false, true])
    func tornAtEveryOffset(lastRecordStartsSegment: Bool) throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let path = dir.spoolPath()
        let options = SpoolOptions(segmentBytes: lastRecordStartsSegment ? 300 : 1 << 20)
        do {
            let spool = try openSpool(path, options: options)
            try spool.append(Frames.frames(1...4))
            try spool.append(Frames.frame(5))
            spool.close()
        }
        let names = segmentNames(path)
        #expect(names.count == (lastRecordStartsSegment ? 2 : 1))
        let segment = path + "/" + names.last!
        let pristine = fileBytes(segment)
        let last = try #require(recordInfos(pristine).last)
        #expect(last.sequence == 5 && last.offset + last.size == pristine.count)

        for cut in last.offset..<(last.offset + last.size) {
            writeFile(segment, Array(pristine[..<cut]))
            let spool = try openSpool(path, options: options)
            let recovery = spool.recovery
            #expect(recovery.durableSequence == 4, "cut at \(cut)")
            #expect(recovery.cutBytes == Int64(cut - last.offset), "cut at \(cut)")
            if cut > last.offset {
                #expect(recovery.cutFile == segment && recovery.cutOffset == Int64(last.offset), "cut at \(cut)")
            } else {
                #expect(recovery.cutFile == nil, "a file ending exactly after a record is not torn")
            }
            #expect(fileBytes(segment).count == last.offset, "the torn bytes are gone from the file")
            #expect(try spool.append(Frames.frame(5)) == 5)
            #expect(fileBytes(segment) == pristine, "re-appended record lands exactly where the torn one was")
            spool.close()
        }
        let spool = try openSpool(path, options: options)
        defer { spool.close() }
        let records = try readAll(spool, from: 1)
        #expect(records.map(\.sequence) == Array(1...5))
        for record in records { Frames.expectValid(record, sequence: record.sequence) }
    }

    @Test("torn inside a group: its intact records are kept, the rest cut")
    func tornInsideGroup() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let path = dir.spoolPath()
        do {
            let spool = try openSpool(path)
            try spool.append(Frames.frames(1...3))
            try spool.append(Frames.frames(4...8))
            spool.close()
        }
        let segment = path + "/" + SpoolFormat.segmentName(first: 1)
        let pristine = fileBytes(segment)
        let six = recordInfos(pristine)[5]
        writeFile(segment, Array(pristine[..<(six.offset + six.size / 2)]))
        let spool = try openSpool(path)
        defer { spool.close() }
        #expect(spool.durableSequence == 5)
        #expect(spool.recovery.cutOffset == Int64(six.offset))
        #expect(try spool.append(Frames.frames(6...8)) == 8)
        // Same size, but not the same bytes: the new append's records carry append start 6.
        #expect(fileBytes(segment).count == pristine.count)
        let records = try readAll(spool, from: 1)
        #expect(records.map(\.sequence) == Array(1...8))
        for record in records { Frames.expectValid(record, sequence: record.sequence) }
    }

    @Test("a bit flip anywhere in the last record is a torn tail")
    func bitFlipInLastRecord() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let segment = try singleSegment(dir)
        let pristine = fileBytes(segment)
        let last = recordInfos(pristine).last!
        // magic, length, sequence, append start, header CRC, frame (prefix, middle, its CRC), record CRC
        let places = [0, 5, 9, 17, 25, 28, 28 + (last.size - 32) / 2, last.size - 6, last.size - 1]
        for place in places {
            writeFile(segment, pristine)
            flipBit(segment, at: last.offset + place)
            let io = FaultyIO()
            let spool = try openSpool(dir.spoolPath(), io: io)
            #expect(io.count("ftruncate") == 1 && io.count("fsync") == 1, "the cut is synced")
            #expect(spool.durableSequence == 4, "flip at +\(place)")
            #expect(spool.recovery.cutOffset == Int64(last.offset), "flip at +\(place)")
            #expect(spool.recovery.cutBytes == Int64(last.size), "flip at +\(place)")
            #expect(try spool.append(Frames.frame(5)) == 5)
            spool.close()
            #expect(fileBytes(segment) == pristine)
        }
    }

    @Test("a bit flip in an earlier record refuses to open, naming file and offset")
    func bitFlipInEarlierRecord() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let segment = try singleSegment(dir)
        let pristine = fileBytes(segment)
        for victim in recordInfos(pristine).dropLast() {
            for place in [0, 5, 9, 25, 40, victim.size - 1] {
                writeFile(segment, pristine)
                flipBit(segment, at: victim.offset + place)
                let before = fileBytes(segment)
                let error = openError(dir.spoolPath())
                guard case .corrupt(let file, let offset, let reason) = error else {
                    Issue.record(
                        "batch \(victim.sequence) +\(place): expected corrupt, got \(String(describing: error))")
                    continue
                }
                #expect(file == segment && offset == Int64(victim.offset), "batch \(victim.sequence) +\(place)")
                #expect(reason.contains("later append"), "\(reason)")
                #expect(error!.description.contains(segment) && error!.description.contains("offset \(victim.offset)"))
                #expect(error!.hint.contains("re-seed"))
                #expect(fileBytes(segment) == before, "a refused open changes nothing")
            }
        }
    }

    @Test(
        "pages of the last append reaching the disk out of order: torn; the same damage in an earlier append: refused")
    func outOfOrderWriteback() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let path = dir.spoolPath()
        do {
            let spool = try openSpool(path)
            try spool.append(Frames.frame(1))
            try spool.append(Frames.frame(2))
            try spool.append(Frames.frames(3...5))
            spool.close()
        }
        let segment = path + "/" + SpoolFormat.segmentName(first: 1)
        let pristine = fileBytes(segment)
        let infos = recordInfos(pristine)
        func zeroed(_ record: RecordInfo, in bytes: [UInt8]) -> [UInt8] {
            var bytes = bytes
            for i in (record.offset + 30)..<(record.offset + 50) { bytes[i] = 0 }
            return bytes
        }

        // Batch 3's middle never reached the disk, batches 4 and 5 did: one unfinished append.
        writeFile(segment, zeroed(infos[2], in: pristine))
        do {
            let spool = try openSpool(path)
            #expect(spool.durableSequence == 2)
            #expect(spool.recovery.cutOffset == Int64(infos[2].offset))
            #expect(spool.recovery.cutBytes == Int64(pristine.count - infos[2].offset))
            try spool.append(Frames.frames(3...5))
            spool.close()
            #expect(fileBytes(segment) == pristine)
        }

        // Batch 2 was its own append and batches 3–5 were written after it was synced.
        writeFile(segment, zeroed(infos[1], in: pristine))
        guard case .corrupt(segment, Int64(infos[1].offset), let reason) = openError(path) else {
            Issue.record("damage followed by a later append was not refused")
            return
        }
        #expect(reason.contains("batch 3"))

        // Batch 3 damaged, but a later append (6) exists.
        writeFile(segment, pristine)
        do {
            let spool = try openSpool(path)
            try spool.append(Frames.frame(6))
            spool.close()
        }
        writeFile(segment, zeroed(infos[2], in: fileBytes(segment)))
        guard case .corrupt(segment, Int64(infos[2].offset), _) = openError(path) else {
            Issue.record("damage in a synced append followed by a later append was not refused")
            return
        }
    }

    @Test("garbage after the last record (a file extended by a crash) is cut")
    func garbageTail() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let segment = try singleSegment(dir)
        let pristine = fileBytes(segment)
        let tails: [[UInt8]] = [
            [UInt8](repeating: 0, count: 4096),
            Array("TSPR".utf8),
            Array(pristine[0..<27]),  // a partial header
            (0..<500).map { UInt8(truncatingIfNeeded: $0 &* 151 &+ 7) },
        ]
        for tail in tails {
            writeFile(segment, pristine + tail)
            let spool = try openSpool(dir.spoolPath())
            #expect(spool.durableSequence == 5)
            #expect(spool.recovery.cutBytes == Int64(tail.count))
            spool.close()
            #expect(fileBytes(segment) == pristine)
        }
    }

    @Test("damage in a segment that is not the newest refuses to open, even at its end")
    func damageInOlderSegment() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let path = dir.spoolPath()
        do {
            let spool = try openSpool(path, options: SpoolOptions(segmentBytes: 400))
            for sequence in UInt64(1)...9 { try spool.append(Frames.frame(sequence)) }
            spool.close()
        }
        let names = segmentNames(path)
        #expect(names.count >= 3)
        let older = path + "/" + names[0]
        let pristine = fileBytes(older)
        let last = recordInfos(pristine).last!

        writeFile(older, Array(pristine.dropLast(3)))  // torn-looking end, but not the newest segment
        guard
            case .corrupt(older, Int64(last.offset), let reason) = openError(
                path, options: SpoolOptions(segmentBytes: 400))
        else {
            Issue.record("a cut-off record in an older segment was not refused")
            return
        }
        #expect(reason.contains("not the newest"))

        writeFile(older, pristine)
        flipBit(older, at: last.offset + 40)
        guard case .corrupt(older, Int64(last.offset), _) = openError(path) else {
            Issue.record("a bit flip in an older segment's last record was not refused")
            return
        }

        writeFile(older, [])
        guard case .corrupt(older, 0, let emptyReason) = openError(path) else {
            Issue.record("an empty older segment was not refused")
            return
        }
        #expect(emptyReason.contains("no record"))
    }

    @Test("a missing segment (a sequence gap between segments) refuses to open")
    func gapBetweenSegments() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let path = dir.spoolPath()
        do {
            let spool = try openSpool(path, options: SpoolOptions(segmentBytes: 400))
            for sequence in UInt64(1)...9 { try spool.append(Frames.frame(sequence)) }
            spool.close()
        }
        let names = segmentNames(path)
        try FileManager.default.removeItem(atPath: path + "/" + names[1])
        guard case .corrupt(let file, 0, let reason) = openError(path) else {
            Issue.record("a missing middle segment was not refused")
            return
        }
        #expect(file == path + "/" + names[2])
        #expect(reason.contains("missing"))
    }

    @Test("an intact record out of place (a stale duplicate) refuses to open")
    func staleRecord() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let segment = try singleSegment(dir)
        let pristine = fileBytes(segment)
        let third = recordInfos(pristine)[2]
        writeFile(segment, pristine + Array(pristine[third.offset..<(third.offset + third.size)]))
        guard case .corrupt(segment, Int64(pristine.count), let reason) = openError(dir.spoolPath()) else {
            Issue.record("a duplicate record at the end was not refused")
            return
        }
        #expect(reason.contains("batch 3") && reason.contains("batch 6"))
    }

    @Test("identity: another stream's spool, a malformed or future identity, segments without identity")
    func identity() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let path = dir.spoolPath()
        do {
            let spool = try openSpool(path)
            try spool.append(Frames.frame(1))
            spool.close()
        }
        #expect(!FileManager.default.fileExists(atPath: path + "/spool.id.tmp"))
        guard case .streamMismatch(path + "/spool.id", otherStream, "orders-pg") = openError(path, stream: otherStream)
        else {
            Issue.record("opening another stream's spool was not refused")
            return
        }
        #expect(openError(path, stream: otherStream)!.description.contains("billing-maria"))

        let identity = fileBytes(path + "/spool.id")
        writeFile(path + "/spool.id", Array("tandem-spool\nformat 2\nstream orders-pg\nfirst-sequence 1\n".utf8))
        guard case .unsupportedFormat(_, 2) = openError(path) else {
            Issue.record("a future format was not refused")
            return
        }
        writeFile(path + "/spool.id", Array("hello\n".utf8))
        guard case .notASpool = openError(path) else {
            Issue.record("a malformed identity was not refused")
            return
        }
        try FileManager.default.removeItem(atPath: path + "/spool.id")
        guard case .notASpool(_, let reason) = openError(path) else {
            Issue.record("segments without an identity were not refused")
            return
        }
        #expect(reason.contains("spool.id"))

        writeFile(path + "/spool.id", identity)
        writeFile(path + "/spool.id.tmp", Array("tandem-spool\n".utf8))  // left by a crash
        let spool = try openSpool(path)
        #expect(spool.durableSequence == 1)
        #expect(!FileManager.default.fileExists(atPath: path + "/spool.id.tmp"))
        spool.close()
    }

    @Test("a crash while creating the spool (only a temporary identity) leaves it creatable")
    func crashDuringCreation() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let path = dir.spoolPath()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        writeFile(path + "/spool.id.tmp", Array("tandem-sp".utf8))
        let spool = try openSpool(path)
        defer { spool.close() }
        #expect(spool.recovery.created)
        #expect(try spool.append(Frames.frame(1)) == 1)
    }

    @Test("a second open of the same spool is refused until the first closes")
    func exclusive() throws {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        let spool = try openSpool(dir.spoolPath())
        guard case .locked = openError(dir.spoolPath()) else {
            Issue.record("a second open was not refused")
            return
        }
        spool.close()
        #expect(openError(dir.spoolPath()) == nil)
        guard case .closed = spoolError({ () throws(SpoolError) in try spool.append(Frames.frame(1)) }) else {
            Issue.record("append on a closed spool was not refused")
            return
        }
    }

    @Test("a missing parent directory is an I/O error naming it")
    func missingParent() {
        let dir = TemporaryDirectory("spooltest")
        defer { dir.remove() }
        guard case .io(let path, _, ENOENT) = openError(dir.path + "/nope/orders-pg") else {
            Issue.record("expected ENOENT")
            return
        }
        #expect(path.hasSuffix("nope/orders-pg"))
    }
}
