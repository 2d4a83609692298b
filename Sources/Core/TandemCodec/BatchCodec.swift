import CTandemShims
import TandemCore
import ZstdSupport

/// The batch frame layout, shared by the wire and the spool so that a received
/// frame is stored as it arrived and its checksum stays valid end to end.
///
/// ```
/// offset  size  field
///  0      4     magic "TNDB"
///  4      2     format version (little-endian)
///  6      1     body compression (BatchCompression)
///  7      1     flags (none defined; must be 0)
///  8      4     header length H
/// 12      4     body length B (as stored, i.e. compressed)
/// 16      H     header: stream, sequence, first/last position, commit-time range,
///               transaction and row counts, uncompressed body size
/// 16+H    B     body: relation table, then the transactions
/// 16+H+B  4     CRC32C of every byte before it
/// ```
/// All integers inside header and body are LEB128 varints (zig-zag for signed).
public enum BatchFormat {
    public static let magic: [UInt8] = Array("TNDB".utf8)
    public static let version: UInt16 = 1
    public static let prefixSize = 16
    public static let trailerSize = 4
}

/// Upper bounds the decoder enforces before allocating anything.
public struct BatchLimits: Sendable, Hashable {
    public var maximumHeaderBytes: Int
    public var maximumBodyBytes: Int
    public var maximumUncompressedBytes: Int

    public init(maximumHeaderBytes: Int = 64 * 1024, maximumBodyBytes: Int = 64 * 1024 * 1024,
                maximumUncompressedBytes: Int = 128 * 1024 * 1024) {
        self.maximumHeaderBytes = maximumHeaderBytes
        self.maximumBodyBytes = maximumBodyBytes
        self.maximumUncompressedBytes = maximumUncompressedBytes
    }

    public static let `default` = BatchLimits()

    public var maximumFrameBytes: Int {
        BatchFormat.prefixSize + maximumHeaderBytes + maximumBodyBytes + BatchFormat.trailerSize
    }
}

/// A batch in its frame form, with the header kept decoded beside the bytes.
public struct EncodedBatch: Sendable, Hashable {
    public var header: BatchHeader
    public var frame: [UInt8]
}

/// Turns batches into checksummed, compressed frames. Holds a zstd context, so
/// keep one per capture thread and reuse it.
public final class BatchEncoder {
    /// zstd level 1. Chosen by the codec benchmark (README, "Measured performance"): on this
    /// class of machine level 1 compresses pgbench-shaped batches several times
    /// faster than level 3 for a ratio only a few percent worse, and encoding speed
    /// is what keeps capture ahead of a busy primary.
    public static let defaultCompressionLevel: Int32 = 1

    public let compression: BatchCompression
    private let compressor: ZstdCompressor?
    private let limits: BatchLimits

    public init(compression: BatchCompression = .zstd, level: Int32 = BatchEncoder.defaultCompressionLevel,
                limits: BatchLimits = .default) throws(BatchCodecError) {
        self.compression = compression
        self.limits = limits
        do {
            compressor = compression == .zstd ? try ZstdCompressor(level: level) : nil
        } catch {
            throw .compressionFailed(error.description)
        }
    }

    public func encode(_ batch: Batch) throws(BatchCodecError) -> EncodedBatch {
        guard let first = batch.transactions.first, let last = batch.transactions.last else {
            throw .invalidBatch("batch \(batch.sequence) holds no transaction")
        }
        guard batch.sequence >= 1 else { throw .invalidBatch("batch sequence numbers start at 1") }

        let body = try encodeBody(batch)
        guard body.count <= limits.maximumUncompressedBytes else {
            throw .invalidBatch("batch \(batch.sequence) body is \(body.count) bytes, over the \(limits.maximumUncompressedBytes)-byte limit; split it")
        }
        let commitTimes = batch.transactions.lazy.map(\.commitTime)
        let header = BatchHeader(
            stream: batch.stream, sequence: batch.sequence,
            firstPosition: first.commitPosition, lastPosition: last.commitPosition,
            firstCommitTime: commitTimes.min()!, lastCommitTime: commitTimes.max()!,
            transactionCount: UInt32(batch.transactions.count), rowCount: UInt64(batch.rowCount),
            uncompressedSize: UInt32(body.count), compression: compression)

        var headerWriter = BinaryWriter(capacity: 128)
        headerWriter.header(header)

        var frame = BinaryWriter(capacity: BatchFormat.prefixSize + headerWriter.bytes.count + body.count / 2 + 64)
        frame.bytes.append(contentsOf: BatchFormat.magic)
        frame.u16(BatchFormat.version)
        frame.u8(compression.rawValue)
        frame.u8(0)
        frame.u32(UInt32(headerWriter.bytes.count))
        frame.u32(0)  // body length, patched below
        frame.bytes.append(contentsOf: headerWriter.bytes)
        let bodyStart = frame.bytes.count
        switch compression {
        case .none:
            frame.bytes.append(contentsOf: body)
        case .zstd:
            do {
                try withRawBytes(body) { raw throws(ZstdError) in try compressor!.compress(raw, appendingTo: &frame.bytes) }
            } catch {
                throw .compressionFailed(error.description)
            }
        }
        let bodyLength = frame.bytes.count - bodyStart
        guard bodyLength <= limits.maximumBodyBytes else {
            throw .invalidBatch("batch \(batch.sequence) stored body is \(bodyLength) bytes, over the limit")
        }
        frame.patchU32(UInt32(bodyLength), at: 12)
        let crc = frame.bytes.withUnsafeBytes { tandem_crc32c(0, $0.baseAddress, $0.count) }
        frame.u32(crc)
        return EncodedBatch(header: header, frame: frame.bytes)
    }

    private func encodeBody(_ batch: Batch) throws(BatchCodecError) -> [UInt8] {
        // Relations are written once per batch and referred to by index, so each
        // batch is self-describing: the applier can replay it from the spool with
        // no state from earlier batches.
        var relations: [Relation] = []
        var transactions = BinaryWriter(capacity: 64 * 1024)
        for transaction in batch.transactions {
            transactions.position(transaction.commitPosition)
            transactions.signed(transaction.commitTime.microsecondsSinceEpoch)
            transactions.optionalString(transaction.origin)
            transactions.varint(UInt64(transaction.chunk.index))
            transactions.u8(transaction.chunk.isFinal ? 1 : 0)
            transactions.varint(transaction.changes.count)
            for change in transaction.changes {
                // Batches touch few tables; a linear scan comparing names (which
                // short-circuits on shared string storage) beats hashing per row.
                let index: Int
                if let known = relations.firstIndex(where: { $0.name == change.relation.name }) {
                    guard relations[known] == change.relation else {
                        throw .invalidBatch("relation \(change.relation.name) changes shape inside batch \(batch.sequence); start a new batch at a relation change")
                    }
                    index = known
                } else {
                    index = relations.count
                    relations.append(change.relation)
                }
                try transactions.change(change, relationIndex: index)
            }
        }
        var body = BinaryWriter(capacity: transactions.bytes.count + 256 * relations.count + 16)
        body.varint(relations.count)
        for relation in relations { body.relation(relation) }
        body.bytes.append(contentsOf: transactions.bytes)
        return body.bytes
    }
}

/// Validates and decodes frames. Every check runs before the data it guards is
/// used: lengths against limits, the checksum over the whole frame, the declared
/// uncompressed size before decompression, every count against the bytes left,
/// and finally the header against what the body really holds.
public final class BatchDecoder {
    public let limits: BatchLimits
    private let decompressor: ZstdDecompressor

    public init(limits: BatchLimits = .default) throws(BatchCodecError) {
        self.limits = limits
        do {
            decompressor = try ZstdDecompressor()
        } catch {
            throw .decompressionFailed(error.description)
        }
    }

    /// Checks the frame and returns its header without touching the body: what
    /// the receiver needs to spool and acknowledge a batch.
    public func decodeHeader(_ frame: [UInt8]) throws(BatchCodecError) -> BatchHeader {
        try withRawBytes(frame) { raw throws(BatchCodecError) in try validatedFrame(raw).header }
    }

    public func decode(_ frame: [UInt8]) throws(BatchCodecError) -> Batch {
        try withRawBytes(frame) { raw throws(BatchCodecError) in
            let parts = try validatedFrame(raw)
            let header = parts.header
            let body: [UInt8]
            switch header.compression {
            case .none:
                guard parts.body.count == Int(header.uncompressedSize) else {
                    throw .inconsistent("uncompressed body is \(parts.body.count) bytes, header says \(header.uncompressedSize)")
                }
                body = Array(parts.body)
            case .zstd:
                do throws(ZstdError) {
                    body = try decompressor.decompress(parts.body, expectedSize: Int(header.uncompressedSize))
                } catch {
                    throw .decompressionFailed(error.reason)
                }
            }
            return try withRawBytes(body) { raw throws(BatchCodecError) in try decodeBody(raw, header: header) }
        }
    }

    private struct FrameParts {
        var header: BatchHeader
        var body: UnsafeRawBufferPointer
    }

    private func validatedFrame(_ raw: UnsafeRawBufferPointer) throws(BatchCodecError) -> FrameParts {
        guard raw.count >= BatchFormat.prefixSize + BatchFormat.trailerSize else { throw .tooShort(length: raw.count) }
        guard raw.prefix(4).elementsEqual(BatchFormat.magic) else { throw .badMagic }
        var reader = BinaryReader(raw, offset: 4)
        let version = try reader.u16("format version")
        guard version == BatchFormat.version else { throw .unsupportedVersion(version) }
        let compressionCode = try reader.u8("compression")
        guard let compression = BatchCompression(rawValue: compressionCode) else {
            throw .unknownCompression(compressionCode)
        }
        let flags = try reader.u8("flags")
        guard flags == 0 else { throw .unknownFlags(flags) }
        let headerLength = try reader.u32("header length")
        let bodyLength = try reader.u32("body length")
        guard headerLength <= limits.maximumHeaderBytes else {
            throw .lengthOutOfBounds(field: "header length", value: UInt64(headerLength), limit: UInt64(limits.maximumHeaderBytes))
        }
        guard bodyLength <= limits.maximumBodyBytes else {
            throw .lengthOutOfBounds(field: "body length", value: UInt64(bodyLength), limit: UInt64(limits.maximumBodyBytes))
        }
        let declared = UInt64(BatchFormat.prefixSize) + UInt64(headerLength) + UInt64(bodyLength) + UInt64(BatchFormat.trailerSize)
        guard declared == UInt64(raw.count) else { throw .lengthMismatch(expected: declared, actual: raw.count) }

        let checked = raw.count - BatchFormat.trailerSize
        let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: checked, as: UInt32.self))
        let computed = tandem_crc32c(0, raw.baseAddress, checked)
        guard stored == computed else { throw .checksumMismatch(stored: stored, computed: computed) }

        let headerBytes = UnsafeRawBufferPointer(rebasing: raw[BatchFormat.prefixSize..<(BatchFormat.prefixSize + Int(headerLength))])
        var headerReader = BinaryReader(headerBytes)
        let header = try headerReader.header(compression: compression)
        guard headerReader.isAtEnd else {
            throw .malformed(field: "batch header", reason: "\(headerReader.remaining) unexpected trailing bytes")
        }
        guard Int(header.uncompressedSize) <= limits.maximumUncompressedBytes else {
            throw .lengthOutOfBounds(field: "uncompressed body size", value: UInt64(header.uncompressedSize),
                                     limit: UInt64(limits.maximumUncompressedBytes))
        }
        let bodyStart = BatchFormat.prefixSize + Int(headerLength)
        return FrameParts(header: header, body: UnsafeRawBufferPointer(rebasing: raw[bodyStart..<(bodyStart + Int(bodyLength))]))
    }

    private func decodeBody(_ raw: UnsafeRawBufferPointer, header: BatchHeader) throws(BatchCodecError) -> Batch {
        var reader = BinaryReader(raw)
        let relationCount = try reader.count("relation count", minimumItemSize: 3)
        var relations: [Relation] = []
        relations.reserveCapacity(relationCount)
        for _ in 0..<relationCount { relations.append(try reader.relation()) }

        guard Int(header.transactionCount) <= reader.remaining / 8 + 1 else {
            throw .lengthOutOfBounds(field: "transaction count", value: UInt64(header.transactionCount), limit: UInt64(reader.remaining / 8 + 1))
        }
        var transactions: [Transaction] = []
        transactions.reserveCapacity(Int(header.transactionCount))
        var rows: UInt64 = 0
        for _ in 0..<header.transactionCount {
            let position = try reader.position()
            let commitTime = Timestamp(microsecondsSinceEpoch: try reader.signed("commit time"))
            let origin = try reader.optionalString("origin")
            let chunkIndex = try reader.unsigned32("chunk index")
            let finalFlag = try reader.u8("chunk final flag")
            guard finalFlag <= 1 else { throw .malformed(field: "chunk final flag", reason: "value \(finalFlag)") }
            let changeCount = try reader.count("change count", minimumItemSize: 3)
            var changes: [RowChange] = []
            changes.reserveCapacity(changeCount)
            for _ in 0..<changeCount {
                let change = try reader.change(relations: relations)
                rows += UInt64(change.rowCount)
                changes.append(change)
            }
            transactions.append(Transaction(commitPosition: position, commitTime: commitTime, origin: origin,
                                            chunk: TransactionChunk(index: chunkIndex, isFinal: finalFlag == 1),
                                            changes: changes))
        }
        guard reader.isAtEnd else { throw .inconsistent("\(reader.remaining) bytes follow the last transaction") }
        try check(header: header, against: transactions, rows: rows)
        return Batch(stream: header.stream, sequence: header.sequence, transactions: transactions)
    }

    private func check(header: BatchHeader, against transactions: [Transaction], rows: UInt64) throws(BatchCodecError) {
        guard let first = transactions.first, let last = transactions.last else {
            throw .inconsistent("batch holds no transaction")
        }
        guard rows == header.rowCount else { throw .inconsistent("body has \(rows) rows, header says \(header.rowCount)") }
        guard first.commitPosition == header.firstPosition, last.commitPosition == header.lastPosition else {
            throw .inconsistent("first/last commit positions differ from the header")
        }
        let times = transactions.lazy.map(\.commitTime)
        guard times.min() == header.firstCommitTime, times.max() == header.lastCommitTime else {
            throw .inconsistent("commit-time range differs from the header")
        }
    }
}

extension BinaryWriter {
    mutating func header(_ header: BatchHeader) {
        string(header.stream.rawValue)
        varint(header.sequence)
        position(header.firstPosition)
        position(header.lastPosition)
        signed(header.firstCommitTime.microsecondsSinceEpoch)
        signed(header.lastCommitTime.microsecondsSinceEpoch)
        varint(UInt64(header.transactionCount))
        varint(header.rowCount)
        varint(UInt64(header.uncompressedSize))
    }

    mutating func change(_ change: RowChange, relationIndex: Int) throws(BatchCodecError) {
        switch change.kind {
        case .insert: u8(ChangeKindTag.insert.rawValue)
        case .update: u8(ChangeKindTag.update.rawValue)
        case .delete: u8(ChangeKindTag.delete.rawValue)
        case let .truncate(cascade, restartIdentity):
            u8(ChangeKindTag.truncate.rawValue)
            u8((cascade ? 1 : 0) | (restartIdentity ? 2 : 0))
        }
        varint(relationIndex)
        try image(change.old, of: change.relation)
        try image(change.new, of: change.relation)
    }

    private mutating func image(_ image: [Value]?, of relation: Relation) throws(BatchCodecError) {
        guard let image else { u8(0); return }
        guard image.count == relation.columns.count else {
            throw .invalidBatch("row image for \(relation.name) has \(image.count) values for \(relation.columns.count) columns")
        }
        u8(1)
        for value in image { self.value(value) }
    }
}

extension BinaryReader {
    mutating func header(compression: BatchCompression) throws(BatchCodecError) -> BatchHeader {
        let streamText = try string("stream id")
        guard let stream = StreamID(streamText) else {
            throw .malformed(field: "stream id", reason: "\"\(streamText.prefix(70))\" is not a valid stream id")
        }
        let sequence = try varint("batch sequence")
        guard sequence >= 1 else { throw .malformed(field: "batch sequence", reason: "sequence numbers start at 1") }
        let first = try position()
        let last = try position()
        let firstTime = Timestamp(microsecondsSinceEpoch: try signed("first commit time"))
        let lastTime = Timestamp(microsecondsSinceEpoch: try signed("last commit time"))
        let transactionCount = try unsigned32("transaction count")
        guard transactionCount >= 1 else { throw .malformed(field: "transaction count", reason: "a batch holds at least one transaction") }
        let rowCount = try varint("row count")
        let uncompressed = try unsigned32("uncompressed body size")
        return BatchHeader(stream: stream, sequence: sequence, firstPosition: first, lastPosition: last,
                           firstCommitTime: firstTime, lastCommitTime: lastTime, transactionCount: transactionCount,
                           rowCount: rowCount, uncompressedSize: uncompressed, compression: compression)
    }

    mutating func change(relations: [Relation]) throws(BatchCodecError) -> RowChange {
        let rawKind = try u8("change kind")
        let kind: RowChange.Kind
        switch ChangeKindTag(rawValue: rawKind) {
        case .insert: kind = .insert
        case .update: kind = .update
        case .delete: kind = .delete
        case .truncate:
            let options = try u8("truncate options")
            guard options & ~3 == 0 else { throw .malformed(field: "truncate options", reason: "unknown bits \(options)") }
            kind = .truncate(cascade: options & 1 != 0, restartIdentity: options & 2 != 0)
        case nil:
            throw .malformed(field: "change kind", reason: "unknown kind \(rawKind)")
        }
        let index = try varint("relation index")
        guard index < UInt64(relations.count) else {
            throw .malformed(field: "relation index", reason: "\(index) but the batch has \(relations.count) relations")
        }
        let relation = relations[Int(index)]
        let old = try image(relation)
        let new = try image(relation)
        switch kind {
        case .insert where old != nil || new == nil, .delete where old == nil || new != nil,
             .update where new == nil, .truncate where old != nil || new != nil:
            throw .malformed(field: "row change", reason: "\(kind) on \(relation.name) with the wrong row images")
        default:
            break
        }
        return RowChange(relation: relation, kind: kind, old: old, new: new)
    }

    private mutating func image(_ relation: Relation) throws(BatchCodecError) -> [Value]? {
        switch try u8("row image flag") {
        case 0:
            return nil
        case 1:
            let width = relation.columns.count
            guard width <= remaining else { throw .truncated(field: "row image of \(relation.name)") }
            var values: [Value] = []
            values.reserveCapacity(width)
            for _ in 0..<width { values.append(try value()) }
            return values
        case let flag:
            throw .malformed(field: "row image flag", reason: "value \(flag)")
        }
    }
}
