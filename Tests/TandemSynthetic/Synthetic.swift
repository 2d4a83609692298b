import ApplyKit
import CaptureKit
import Foundation
import TandemCodec
import TandemCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Test-only batches: batch N is a pure function of N, so a restarted shipper can
/// regenerate any batch from the receiver's durable point on, as a replication slot
/// replays from its flush position. Each holds one transaction with one inserted row.
public enum SyntheticBatches {
    public static let relation = Relation(
        name: RelationName(schema: "synthetic", name: "stream"),
        columns: [
            Column(
                name: "id", type: .integer(bits: 64, signed: true), nativeType: "bigint", isKey: true,
                isNullable: false),
            Column(name: "payload", type: .text, nativeType: "text"),
        ])

    /// The source position of batch `sequence`'s (only) commit.
    public static func position(of sequence: UInt64) -> Position { .postgresql(LSN(sequence &* 64)) }

    public static func batch(stream: StreamID, sequence: UInt64) -> Batch {
        // A payload whose length and content vary with the sequence, so a batch
        // swapped for another (or shifted by one) shows in the checksum.
        var mix = sequence &* 0x9E37_79B9_7F4A_7C15
        mix ^= mix >> 29
        let payload = "row-\(sequence)-" + String(repeating: String(mix % 36, radix: 36), count: Int(mix % 24) + 8)
        let transaction = Transaction(
            commitPosition: position(of: sequence),
            commitTime: Timestamp(microsecondsSinceEpoch: 1_700_000_000_000_000 + Int64(sequence)),
            changes: [
                RowChange(
                    relation: relation, kind: .insert,
                    new: [.int(Int64(sequence)), .text(payload)])
            ])
        return Batch(stream: stream, sequence: sequence, transactions: [transaction])
    }

    /// What the synthetic sink records for a batch: FNV-1a over its sequence, its
    /// commit position and its row. Computed from the decoded batch on the applier
    /// side and from the regenerated batch by the tests.
    public static func checksum(of batch: Batch) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ text: String) {
            for byte in text.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
            hash ^= 0xFF
            hash = hash &* 0x0000_0100_0000_01B3
        }
        mix(String(batch.sequence))
        for transaction in batch.transactions {
            mix(transaction.commitPosition.description)
            for change in transaction.changes {
                for value in change.new ?? [] {
                    switch value {
                    case .int(let number): mix("i\(number)")
                    case .text(let text): mix("t\(text)")
                    default: mix("?")
                    }
                }
            }
        }
        return hash
    }

    public static func expectedChecksum(stream: StreamID, sequence: UInt64) -> UInt64 {
        checksum(of: batch(stream: stream, sequence: sequence))
    }
}

/// Test-only failures of the synthetic source or sink: reaching batch `at` fails `times` times
/// (what a database that fails and recovers looks like to the agent), then works.
public final class SyntheticFailures: @unchecked Sendable {
    // @unchecked: used by one thread (the shipper's loop, or the applier's apply thread).
    public let at: UInt64
    public private(set) var remaining: Int

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public init(at: UInt64, times: Int) {
        self.at = at
        self.remaining = times
    }

    /// Throws while failures remain, when `sequences` reach batch `at`.
    func check(_ sequences: ClosedRange<UInt64>, _ what: String) throws(Failure) {
        guard remaining > 0, sequences.contains(at) else { return }
        remaining -= 1
        throw Failure(description: "synthetic \(what) failure at batch \(at)")
    }
}

/// Test-only capture: batches 1…`count`, regenerated from any sequence on request.
/// Records the highest acknowledged sequence, so a test can check the safety rule.
public final class SyntheticSource: BatchSource {
    public let stream: StreamID
    public let count: UInt64
    private let encoder: BatchEncoder
    private var nextSequence: UInt64 = 1
    /// The highest batch acknowledged as durable (for tests and the log).
    public private(set) var acknowledgedSequence: UInt64 = 0
    public private(set) var acknowledgedPosition: Position?

    private let failures: SyntheticFailures?

    public init(stream: StreamID, count: UInt64, failures: SyntheticFailures? = nil) throws {
        self.stream = stream
        self.count = count
        self.failures = failures
        encoder = try BatchEncoder()
    }

    public func restart(at sequence: UInt64) throws {
        nextSequence = max(1, sequence)
    }

    public func next() throws -> SourceBatch? {
        guard nextSequence <= count else { return nil }
        let sequence = nextSequence
        try failures?.check(sequence...sequence, "source")
        let encoded = try encoder.encode(SyntheticBatches.batch(stream: stream, sequence: sequence))
        nextSequence += 1
        return SourceBatch(
            sequence: sequence, lastPosition: encoded.header.lastPosition, frame: encoded.frame, header: encoded.header)
    }

    /// Once every batch was produced, the synthetic source has nothing more: caught up now.
    public var caughtUp: CaughtUp? {
        guard nextSequence > count else { return nil }
        return CaughtUp(
            sequence: count, time: Timestamp(microsecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1_000_000)))
    }

    /// The synthetic source has no log to measure.
    public var sourceLog: SourceLogProgress? { nil }

    public func stop() {}

    public func acknowledge(durableThrough position: Position, sequence: UInt64) throws {
        acknowledgedSequence = max(acknowledgedSequence, sequence)
        acknowledgedPosition = position
    }
}

/// Test-only apply step: appends one line "sequence checksum" per batch to a file,
/// and fsyncs once per group. The file is its own checkpoint — the data and the
/// checkpoint are the same bytes, so they commit together: at open, a torn last
/// line (no newline) is cut, and the last whole line is the checkpoint.
public final class SyntheticSink: BatchSink, @unchecked Sendable {
    // @unchecked: used only by the applier's apply thread (see `BatchSink`).
    public let path: String
    private let descriptor: Int32
    private var current: SinkCheckpoint
    private let decoder: BatchDecoder

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private let failures: SyntheticFailures?

    public init(path: String, failures: SyntheticFailures? = nil) throws {
        self.path = path
        self.failures = failures
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw Failure(description: "cannot open synthetic sink \(path): \(String(cString: strerror(errno)))")
        }
        decoder = try BatchDecoder()
        let data = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
        var keep = data.count
        while keep > 0, data[data.startIndex + keep - 1] != UInt8(ascii: "\n") { keep -= 1 }
        if keep != data.count {
            guard ftruncate(descriptor, off_t(keep)) == 0, fsync(descriptor) == 0 else {
                throw Failure(description: "cannot cut the torn tail of \(path): \(String(cString: strerror(errno)))")
            }
        }
        current = .empty
        let text = String(decoding: data.prefix(keep), as: UTF8.self)
        if let last = text.split(separator: "\n").last,
            let sequence = last.split(separator: " ").first.flatMap({ UInt64($0) })
        {
            current = SinkCheckpoint(sequence: sequence, position: SyntheticBatches.position(of: sequence))
        }
        lseek(descriptor, 0, SEEK_END)
    }

    deinit { close(descriptor) }

    public func checkpoint() throws -> SinkCheckpoint { current }

    public func apply(_ batches: [SinkBatch]) throws -> SinkCheckpoint {
        guard let first = batches.first?.sequence, let final = batches.last?.sequence else { return current }
        // Before anything is written: a failed group leaves the sink (and its checkpoint) as it was.
        try failures?.check(first...final, "sink")
        var text = ""
        var last = current
        for item in batches {
            guard item.sequence == last.sequence + 1 else {
                throw Failure(description: "synthetic sink: batch \(item.sequence) after \(last.sequence)")
            }
            let batch = try decoder.decode(item.frame)
            text += "\(item.sequence) \(SyntheticBatches.checksum(of: batch))\n"
            last = SinkCheckpoint(sequence: item.sequence, position: batch.transactions.last?.commitPosition)
        }
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes {
                write(descriptor, $0.baseAddress! + offset, $0.count - offset)
            }
            guard written > 0 else {
                throw Failure(description: "synthetic sink write to \(path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        guard fdatasync(descriptor) == 0 else {
            throw Failure(description: "synthetic sink sync of \(path): \(String(cString: strerror(errno)))")
        }
        current = last
        return last
    }
}
