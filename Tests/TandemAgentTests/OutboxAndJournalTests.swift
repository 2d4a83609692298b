import ApplyKit
import CaptureKit
import Foundation
import Logging
import TandemConfig
import TandemCore
import TandemProcedures
import TandemSynthetic
import TandemVerify
import Testing

@testable import TandemAgent

@Suite("shipper outbox and pair journal")
struct OutboxAndJournalTests {
    func batch(_ sequence: UInt64) -> SourceBatch {
        SourceBatch(sequence: sequence, lastPosition: SyntheticBatches.position(of: sequence), frame: [1, 2, 3])
    }

    @Test func releaseReturnsTheHighestDurableBatchForTheSourceAcknowledgement() throws {
        var outbox = Outbox(maximumBatches: 10)
        for sequence in 1...5 { try outbox.append(batch(UInt64(sequence))) }
        let released = outbox.release(through: 3)
        #expect(released?.sequence == 3)
        #expect(outbox.firstSequence == 4)
        let again = outbox.release(through: 3)
        #expect(again == nil)  // nothing new is durable: no acknowledgement
        #expect(outbox.bytes == 6)
    }

    @Test func rewindKeepsHeldBatchesAndAsksForARestartOtherwise() throws {
        var outbox = Outbox(maximumBatches: 10)
        for sequence in 1...5 { try outbox.append(batch(UInt64(sequence))) }
        let kept = outbox.rewind(to: 3)
        #expect(kept)  // receiver durable through 2: resend 3… from memory
        #expect(outbox.batch(3) != nil && outbox.batch(2) == nil)
        let restarted = outbox.rewind(to: 9)
        #expect(!restarted)  // receiver ahead of this process: restart the source
        #expect(outbox.count == 0 && outbox.nextSequence == 9)
        var copy = outbox
        #expect(throws: AgentError.self) { try copy.append(batch(8)) }
    }

    @Test func outboxIsBounded() throws {
        var outbox = Outbox(maximumBatches: 2)
        try outbox.append(batch(1))
        #expect(!outbox.isFull)
        try outbox.append(batch(2))
        #expect(outbox.isFull)
    }

    @Test func roleIsBootstrappedOnceAndThenComesFromTheJournal() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-journal-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let journal = RoleJournal(spoolRoot: root)
        #expect(throws: JournalError.self) { try journal.resolve(requested: nil) }
        #expect(try journal.resolve(requested: .applier) == .applier)
        #expect(try journal.resolve(requested: nil) == .applier)
        #expect(throws: JournalError.self) { try journal.resolve(requested: .shipper) }
    }

    @Test("a damaged or unreadable pair journal is refused, never taken for a first start")
    func damagedJournalIsRefused() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-journal-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let journal = RoleJournal(spoolRoot: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for content in ["role=primary\n", "garbage\n", "# no role at all\n"] {
            try content.write(toFile: journal.path, atomically: true, encoding: .utf8)
            #expect {
                _ = try journal.resolve(requested: .shipper)
            } throws: { error in
                let text = "\(error)"
                return text.contains(journal.path) && text.contains("damaged")
            }
            #expect(try String(contentsOfFile: journal.path, encoding: .utf8) == content, "the journal was overwritten")
        }
        try FileManager.default.removeItem(atPath: journal.path)
        try FileManager.default.createDirectory(atPath: journal.path, withIntermediateDirectories: false)
        #expect(throws: JournalError.self) { try journal.resolve(requested: .shipper) }
    }

    @Test func syntheticSinkCutsATornLineAndResumesFromItsCheckpoint() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-sink-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let stream = StreamID("acme-idc")!
        let source = try SyntheticSource(stream: stream, count: 3)
        var frames: [SinkBatch] = []
        while let next = try source.next() { frames.append(SinkBatch(sequence: next.sequence, frame: next.frame)) }
        do {
            let sink = try SyntheticSink(path: path)
            #expect(try sink.apply(Array(frames.prefix(2))).sequence == 2)
        }
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seekToEndOfFile()
        handle.write(Data("3 12".utf8))  // a torn line, as a crash mid-write leaves it
        try handle.close()
        let reopened = try SyntheticSink(path: path)
        #expect(try reopened.checkpoint() == SinkCheckpoint(sequence: 2, position: SyntheticBatches.position(of: 2)))
        #expect(throws: (any Error).self) { try reopened.apply([frames[0]]) }  // never applied twice
        _ = try reopened.apply([frames[2]])
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[2] == "3 \(SyntheticBatches.expectedChecksum(stream: stream, sequence: 3))")
    }
}

@Suite("engine registry")
struct EngineRegistryTests {
    struct Stub: AgentEngine {
        var engine: DatabaseEngine
        func source(site: SiteConfig, link: AgentLinkSettings, logger: Logger) throws -> any BatchSource {
            try SyntheticSource(stream: StreamID("s")!, count: 1)
        }
        func sink(site: SiteConfig, stream: StreamID, logger: Logger) throws -> any BatchSink {
            throw AgentError("stub", hint: "")
        }
        func check(site: SiteConfig, link: AgentLinkSettings, for use: DatabaseUse, logger: Logger)
            -> [DatabaseProblem]
        { [] }
        func verifySide(site: SiteConfig) throws -> any VerifySide { throw AgentError("stub", hint: "") }
    }

    @Test("an engine the build lacks is refused by name, with the engines it has")
    func lookup() throws {
        let registry = EngineRegistry([Stub(engine: .postgresql), Stub(engine: .mariadb)])
        #expect(try registry.entry(for: .mariadb).engine == .mariadb)
        #expect {
            _ = try registry.entry(for: .mysql)
        } throws: { error in
            guard let error = error as? AgentError else { return false }
            return error.description.contains("MySQL") && error.hint.contains("postgresql, mariadb")
        }
    }
}
