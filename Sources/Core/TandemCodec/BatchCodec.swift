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
    /// `magic` read as a little-endian integer, for storing without an array.
    static let magicWord: UInt32 = 0x4244_4E54
    public static let version: UInt16 = 1
    public static let prefixSize = 16
    public static let trailerSize = 4
}

/// Upper bounds the decoder enforces before allocating anything.
public struct BatchLimits: Sendable, Hashable {
    public var maximumHeaderBytes: Int
    public var maximumBodyBytes: Int
    public var maximumUncompressedBytes: Int

    public init(
        maximumHeaderBytes: Int = 64 * 1024, maximumBodyBytes: Int = 64 * 1024 * 1024,
        maximumUncompressedBytes: Int = 128 * 1024 * 1024
    ) {
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
    /// Working memory kept between batches (one encoder per thread, see above), so
    /// that steady-state encoding allocates only the frame it returns.
    private var bodyScratch: BinaryWriter?
    private var compressedScratch: BinaryWriter?
    /// Room left in front of the transactions for the relation table, learnt from
    /// the previous batch (see `encodeBody`).
    private var relationTableRoom = 1024

    /// Scratch buffers larger than this are released after the batch rather than
    /// kept, so that one huge batch does not pin its memory for good.
    private static let retainedScratchBytes = 8 * 1024 * 1024

    public init(
        compression: BatchCompression = .zstd, level: Int32 = BatchEncoder.defaultCompressionLevel,
        limits: BatchLimits = .default
    ) throws(BatchCodecError) {
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

        var body = bodyScratch.take() ?? BinaryWriter(capacity: 64 * 1024)
        let summary = try encodeBody(batch, into: &body)
        if let problem = body.invalidValue {
            body.removeAll()
            bodyScratch = consume body
            throw .invalidBatch("batch \(batch.sequence) holds a value the format cannot carry: \(problem)")
        }
        let bodyBytes = UnsafeRawBufferPointer(rebasing: body.written[summary.bodyStart...])
        guard bodyBytes.count <= limits.maximumUncompressedBytes else {
            throw .invalidBatch(
                "batch \(batch.sequence) body is \(bodyBytes.count) bytes, over the \(limits.maximumUncompressedBytes)-byte limit; split it"
            )
        }
        let header = BatchHeader(
            stream: batch.stream, sequence: batch.sequence,
            firstPosition: first.commitPosition, lastPosition: last.commitPosition,
            firstCommitTime: summary.firstCommitTime, lastCommitTime: summary.lastCommitTime,
            transactionCount: UInt32(batch.transactions.count), rowCount: UInt64(summary.rows),
            uncompressedSize: UInt32(bodyBytes.count), compression: compression)

        var headerWriter = BinaryWriter(capacity: 128)
        headerWriter.header(header)

        let frame: [UInt8]
        switch compression {
        case .none:
            frame = try assembleFrame(header: headerWriter.written, storedBody: bodyBytes, sequence: batch.sequence)
        case .zstd:
            var compressed = compressedScratch.take() ?? BinaryWriter(capacity: 64 * 1024)
            compressed.removeAll()
            compressed.reserve(ZstdCompressor.compressBound(bodyBytes.count))
            let length: Int
            do {
                length = try compressor!.compress(
                    bodyBytes, into: UnsafeMutableRawBufferPointer(start: compressed.base, count: compressed.capacity))
            } catch {
                throw .compressionFailed(error.description)
            }
            compressed.moveEnd(to: length)
            frame = try assembleFrame(
                header: headerWriter.written, storedBody: compressed.written, sequence: batch.sequence)
            if compressed.capacity <= Self.retainedScratchBytes { compressedScratch = consume compressed }
        }
        if body.capacity <= Self.retainedScratchBytes { bodyScratch = consume body }
        return EncodedBatch(header: header, frame: frame)
    }

    /// Prefix, header, stored body and CRC, in one allocation of the exact size.
    private func assembleFrame(
        header: UnsafeRawBufferPointer, storedBody: UnsafeRawBufferPointer,
        sequence: UInt64
    ) throws(BatchCodecError) -> [UInt8] {
        guard storedBody.count <= limits.maximumBodyBytes else {
            throw .invalidBatch("batch \(sequence) stored body is \(storedBody.count) bytes, over the limit")
        }
        let total = BatchFormat.prefixSize + header.count + storedBody.count + BatchFormat.trailerSize
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            let out = UnsafeMutableRawBufferPointer(buffer)
            let base = out.baseAddress!
            base.storeBytes(of: BatchFormat.magicWord.littleEndian, toByteOffset: 0, as: UInt32.self)
            base.storeBytes(of: BatchFormat.version.littleEndian, toByteOffset: 4, as: UInt16.self)
            base.storeBytes(of: compression.rawValue, toByteOffset: 6, as: UInt8.self)
            base.storeBytes(of: 0, toByteOffset: 7, as: UInt8.self)
            base.storeBytes(of: UInt32(header.count).littleEndian, toByteOffset: 8, as: UInt32.self)
            base.storeBytes(of: UInt32(storedBody.count).littleEndian, toByteOffset: 12, as: UInt32.self)
            var offset = BatchFormat.prefixSize
            if header.count > 0 { (base + offset).copyMemory(from: header.baseAddress!, byteCount: header.count) }
            offset += header.count
            if storedBody.count > 0 {
                (base + offset).copyMemory(from: storedBody.baseAddress!, byteCount: storedBody.count)
            }
            offset += storedBody.count
            let crc = tandem_crc32c(0, base, offset)
            base.storeBytes(of: crc.littleEndian, toByteOffset: offset, as: UInt32.self)
            initialized = total
        }
    }

    private struct BodySummary {
        var bodyStart: Int
        var rows: Int
        var firstCommitTime: Timestamp
        var lastCommitTime: Timestamp
    }

    /// Writes the body into `writer`, which ends up holding it from `bodyStart` on.
    ///
    /// The relation table comes first in the body but is known only once every
    /// change has been seen. Rather than writing the transactions to one buffer and
    /// copying them behind the table in another, they are written after a gap the
    /// size of the previous batch's table; the table is then written at the end and
    /// copied into the gap, just in front of the transactions. If it does not fit,
    /// the transactions are moved up once (and the next batch leaves more room).
    private func encodeBody(_ batch: Batch, into writer: inout BinaryWriter) throws(BatchCodecError) -> BodySummary {
        // Relations are written once per batch and referred to by index, so each
        // batch is self-describing: the applier can replay it from the spool with
        // no state from earlier batches.
        var relations = RelationTable()
        var rows = 0
        var minTime = Int64.max
        var maxTime = Int64.min
        let room = relationTableRoom
        writer.removeAll()
        writer.reserve(room + 64 * 1024)
        writer.moveEnd(to: room)
        // Elements are reached through pointers and only the fields needed are
        // loaded: `for x in array` copies each element, which for a RowChange means
        // retaining every string and array it holds, and that retain/release traffic
        // was the largest cost of encoding.
        try batch.transactions.withUnsafeBufferPointer { (transactions) throws(BatchCodecError) in
            guard var transaction = transactions.baseAddress else { return }
            for _ in 0..<transactions.count {
                defer { transaction += 1 }
                let time = transaction.pointee.commitTime.microsecondsSinceEpoch
                minTime = min(minTime, time)
                maxTime = max(maxTime, time)
                writer.position(transaction.pointee.commitPosition)
                writer.signed(time)
                writer.optionalString(transaction.pointee.origin)
                writer.varint(UInt64(transaction.pointee.chunk.index))
                writer.u8(transaction.pointee.chunk.isFinal ? 1 : 0)
                try transaction.pointee.changes.withUnsafeBufferPointer { (changes) throws(BatchCodecError) in
                    writer.varint(changes.count)
                    guard var change = changes.baseAddress else { return }
                    for _ in 0..<changes.count {
                        defer { change += 1 }
                        let index = try relations.index(of: change, sequence: batch.sequence)
                        let counted = try writer.change(change, relationIndex: index)
                        if counted { rows += 1 }
                    }
                }
            }
        }

        var transactionsStart = room
        let transactionsEnd = writer.count
        writer.varint(relations.relations.count)
        for relation in relations.relations { writer.relation(relation) }
        var tableStart = transactionsEnd
        let tableLength = writer.count - tableStart
        if tableLength > room {
            let distance = tableLength - room
            writer.shift(from: transactionsStart, by: distance)
            transactionsStart += distance
            tableStart += distance
        }
        let bodyStart = transactionsStart - tableLength
        UnsafeMutableRawPointer(writer.base + bodyStart).copyMemory(
            from: writer.base + tableStart, byteCount: tableLength)
        writer.moveEnd(to: transactionsEnd + (transactionsStart - room))
        relationTableRoom = max(1024, tableLength + tableLength / 2)
        return BodySummary(
            bodyStart: bodyStart, rows: rows,
            firstCommitTime: Timestamp(microsecondsSinceEpoch: minTime),
            lastCommitTime: Timestamp(microsecondsSinceEpoch: maxTime))
    }
}

/// Validates and decodes frames. Every check runs before the data it guards is
/// used: lengths against limits, the checksum over the whole frame, the declared
/// uncompressed size before decompression, every count against the bytes left,
/// and finally the header against what the body really holds.
///
/// `decode` uses the decoder's zstd context and decompression buffer, so one
/// thread at a time; `decodeHeader` touches neither.
public final class BatchDecoder {
    public let limits: BatchLimits
    private let decompressor: ZstdDecompressor
    /// Where bodies are decompressed, kept between frames (the decoder is used by
    /// one thread at a time, like its zstd context) up to `retainedScratchBytes`.
    private var scratch: UnsafeMutablePointer<UInt8>?
    private var scratchCapacity = 0
    private static let retainedScratchBytes = 8 * 1024 * 1024

    public init(limits: BatchLimits = .default) throws(BatchCodecError) {
        self.limits = limits
        do {
            decompressor = try ZstdDecompressor()
        } catch {
            throw .decompressionFailed(error.description)
        }
    }

    deinit { scratch?.deallocate() }

    /// Checks the frame and returns its header without touching the body: what
    /// the receiver needs to spool and acknowledge a batch.
    public func decodeHeader(_ frame: [UInt8]) throws(BatchCodecError) -> BatchHeader {
        try withRawBytes(frame) { raw throws(BatchCodecError) in try validatedFrame(raw).header }
    }

    public func decode(_ frame: [UInt8]) throws(BatchCodecError) -> Batch {
        try withRawBytes(frame) { raw throws(BatchCodecError) in
            let parts = try validatedFrame(raw)
            let header = parts.header
            switch header.compression {
            case .none:
                guard parts.body.count == Int(header.uncompressedSize) else {
                    throw .inconsistent(
                        "uncompressed body is \(parts.body.count) bytes, header says \(header.uncompressedSize)")
                }
                // Decoded in place: every value the decoder produces is a copy, so
                // nothing refers to the frame afterwards.
                return try decodeBody(parts.body, header: header)
            case .zstd:
                let size = Int(header.uncompressedSize)
                let temporary = size > Self.retainedScratchBytes
                let body: UnsafeMutableBufferPointer<UInt8>
                if temporary {
                    body = .allocate(capacity: size)
                } else {
                    if scratchCapacity < max(size, 1) {
                        scratch?.deallocate()
                        scratchCapacity = max(size, 64 * 1024)
                        scratch = .allocate(capacity: scratchCapacity)
                    }
                    body = UnsafeMutableBufferPointer(start: scratch, count: size)
                }
                defer { if temporary { body.deallocate() } }
                do throws(ZstdError) {
                    try decompressor.decompress(parts.body, into: UnsafeMutableRawBufferPointer(body))
                } catch {
                    throw .decompressionFailed(error.reason)
                }
                return try decodeBody(UnsafeRawBufferPointer(body), header: header)
            }
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
            throw .lengthOutOfBounds(
                field: "header length", value: UInt64(headerLength), limit: UInt64(limits.maximumHeaderBytes))
        }
        guard bodyLength <= limits.maximumBodyBytes else {
            throw .lengthOutOfBounds(
                field: "body length", value: UInt64(bodyLength), limit: UInt64(limits.maximumBodyBytes))
        }
        let declared =
            UInt64(BatchFormat.prefixSize) + UInt64(headerLength) + UInt64(bodyLength) + UInt64(BatchFormat.trailerSize)
        guard declared == UInt64(raw.count) else { throw .lengthMismatch(expected: declared, actual: raw.count) }

        let checked = raw.count - BatchFormat.trailerSize
        let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: checked, as: UInt32.self))
        let computed = tandem_crc32c(0, raw.baseAddress, checked)
        guard stored == computed else { throw .checksumMismatch(stored: stored, computed: computed) }

        let headerBytes = UnsafeRawBufferPointer(
            rebasing: raw[BatchFormat.prefixSize..<(BatchFormat.prefixSize + Int(headerLength))])
        var headerReader = BinaryReader(headerBytes)
        let header = try headerReader.header(compression: compression)
        guard headerReader.isAtEnd else {
            throw .malformed(field: "batch header", reason: "\(headerReader.remaining) unexpected trailing bytes")
        }
        guard Int(header.uncompressedSize) <= limits.maximumUncompressedBytes else {
            throw .lengthOutOfBounds(
                field: "uncompressed body size", value: UInt64(header.uncompressedSize),
                limit: UInt64(limits.maximumUncompressedBytes))
        }
        let bodyStart = BatchFormat.prefixSize + Int(headerLength)
        return FrameParts(
            header: header, body: UnsafeRawBufferPointer(rebasing: raw[bodyStart..<(bodyStart + Int(bodyLength))]))
    }

    private func decodeBody(_ raw: UnsafeRawBufferPointer, header: BatchHeader) throws(BatchCodecError) -> Batch {
        var reader = BinaryReader(raw)
        let relationCount = try reader.count("relation count", minimumItemSize: 3)
        var relations: [Relation] = []
        relations.reserveCapacity(relationCount)
        for _ in 0..<relationCount { relations.append(try reader.relation()) }

        // The smallest transaction takes 7 bytes (an empty MariaDB position, commit
        // time, origin flag, chunk index and flag, change count), so more than
        // remaining / 7 transactions cannot be there.
        guard Int(header.transactionCount) <= reader.remaining / 7 else {
            throw .lengthOutOfBounds(
                field: "transaction count", value: UInt64(header.transactionCount), limit: UInt64(reader.remaining / 7))
        }
        var transactions: [Transaction] = []
        transactions.reserveCapacity(Int(header.transactionCount))
        var rows: UInt64 = 0
        var minTime = Int64.max
        var maxTime = Int64.min
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
                if case .truncate = change.kind {} else { rows += 1 }  // RowChange.rowCount
                changes.append(change)
            }
            minTime = min(minTime, commitTime.microsecondsSinceEpoch)
            maxTime = max(maxTime, commitTime.microsecondsSinceEpoch)
            transactions.append(
                Transaction(
                    commitPosition: position, commitTime: commitTime, origin: origin,
                    chunk: TransactionChunk(index: chunkIndex, isFinal: finalFlag == 1),
                    changes: changes))
        }
        guard reader.isAtEnd else { throw .inconsistent("\(reader.remaining) bytes follow the last transaction") }
        try check(
            header: header, against: transactions, rows: rows,
            firstCommitTime: Timestamp(microsecondsSinceEpoch: minTime),
            lastCommitTime: Timestamp(microsecondsSinceEpoch: maxTime))
        return Batch(stream: header.stream, sequence: header.sequence, transactions: transactions)
    }

    /// `firstCommitTime`/`lastCommitTime` are the earliest and latest commit times
    /// of `transactions` (meaningless, and unused, when there are none).
    private func check(
        header: BatchHeader, against transactions: [Transaction], rows: UInt64,
        firstCommitTime: Timestamp, lastCommitTime: Timestamp
    ) throws(BatchCodecError) {
        guard let first = transactions.first, let last = transactions.last else {
            throw .inconsistent("batch holds no transaction")
        }
        guard rows == header.rowCount else {
            throw .inconsistent("body has \(rows) rows, header says \(header.rowCount)")
        }
        guard first.commitPosition == header.firstPosition, last.commitPosition == header.lastPosition else {
            throw .inconsistent("first/last commit positions differ from the header")
        }
        guard firstCommitTime == header.firstCommitTime, lastCommitTime == header.lastCommitTime else {
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

    /// Writes one change; returns whether it counts as a row (see `RowChange.rowCount`).
    @inline(__always)
    mutating func change(_ change: UnsafePointer<RowChange>, relationIndex: Int) throws(BatchCodecError) -> Bool {
        let counted: Bool
        switch change.pointee.kind {
        case .insert: u8(ChangeKindTag.insert.rawValue); counted = true
        case .copy:
            guard change.pointee.new?.contains(where: \.isUnchanged) == false else {
                throw .invalidBatch("a copied row of \(change.pointee.relation.name) must carry every column")
            }
            u8(ChangeKindTag.copy.rawValue)
            counted = true
        case .update:
            u8((change.pointee.duringCopy ? ChangeKindTag.updateDuringCopy : .update).rawValue)
            counted = true
        case .delete:
            u8((change.pointee.duringCopy ? ChangeKindTag.deleteDuringCopy : .delete).rawValue)
            counted = true
        case let .truncate(cascade, restartIdentity):
            u8(ChangeKindTag.truncate.rawValue)
            u8((cascade ? 1 : 0) | (restartIdentity ? 2 : 0))
            counted = false
        }
        varint(relationIndex)
        let width = change.pointee.relation.columns.count
        try image(change.pointee.old, width: width, of: change)
        try image(change.pointee.new, width: width, of: change)
        return counted
    }

    @inline(__always)
    private mutating func image(_ image: [Value]?, width: Int, of change: UnsafePointer<RowChange>)
        throws(BatchCodecError)
    {
        guard let image else { u8(0); return }
        guard image.count == width else {
            throw .invalidBatch(
                "row image for \(change.pointee.relation.name) has \(image.count) values for \(width) columns")
        }
        u8(1)
        image.withUnsafeBufferPointer { values in
            guard var value = values.baseAddress else { return }
            for _ in 0..<values.count {
                self.value(value)
                value += 1
            }
        }
    }
}

/// The relations of the batch being encoded, in order of first use.
///
/// Batches touch few tables; a linear scan comparing names (which short-circuits
/// on shared string storage) beats hashing per row. The common case, a change
/// whose relation shares its column array with a known relation of the same name,
/// is settled by comparing the arrays' identities instead of their contents.
struct RelationTable {
    private(set) var relations: [Relation] = []
    /// Identity of each known relation's column storage.
    private var columnStorage: [UnsafeRawPointer?] = []

    @inline(__always)
    mutating func index(of change: UnsafePointer<RowChange>, sequence: UInt64) throws(BatchCodecError) -> Int {
        let storage = change.pointee.relation.columns.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        for i in columnStorage.indices where columnStorage[i] == storage && storage != nil {
            if relations[i].name == change.pointee.relation.name { return i }
        }
        return try slowIndex(of: change, sequence: sequence)
    }

    /// The original rule: the first relation with the same name, which must be
    /// equal in every respect, or else a new entry.
    @inline(never)
    private mutating func slowIndex(of change: UnsafePointer<RowChange>, sequence: UInt64) throws(BatchCodecError)
        -> Int
    {
        let relation = change.pointee.relation
        if let known = relations.firstIndex(where: { $0.name == relation.name }) {
            guard relations[known] == relation else {
                throw .invalidBatch(
                    "relation \(relation.name) changes shape inside batch \(sequence); start a new batch at a relation change"
                )
            }
            return known
        }
        if let problem = BinaryWriter.problem(with: relation) {
            throw .invalidBatch("batch \(sequence): \(problem)")
        }
        relations.append(relation)
        columnStorage.append(relation.columns.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) })
        return relations.count - 1
    }
}

extension BinaryReader {
    mutating func header(compression: BatchCompression) throws(BatchCodecError) -> BatchHeader {
        let streamText = try string("stream id")
        guard let stream = StreamID(streamText) else {
            throw .malformed(field: "stream id", reason: "\"\(loggable(streamText))\" is not a valid stream id")
        }
        let sequence = try varint("batch sequence")
        guard sequence >= 1 else { throw .malformed(field: "batch sequence", reason: "sequence numbers start at 1") }
        let first = try position()
        let last = try position()
        let firstTime = Timestamp(microsecondsSinceEpoch: try signed("first commit time"))
        let lastTime = Timestamp(microsecondsSinceEpoch: try signed("last commit time"))
        let transactionCount = try unsigned32("transaction count")
        guard transactionCount >= 1 else {
            throw .malformed(field: "transaction count", reason: "a batch holds at least one transaction")
        }
        let rowCount = try varint("row count")
        let uncompressed = try unsigned32("uncompressed body size")
        return BatchHeader(
            stream: stream, sequence: sequence, firstPosition: first, lastPosition: last,
            firstCommitTime: firstTime, lastCommitTime: lastTime, transactionCount: transactionCount,
            rowCount: rowCount, uncompressedSize: uncompressed, compression: compression)
    }

    @inline(__always)
    mutating func change(relations: [Relation]) throws(BatchCodecError) -> RowChange {
        let rawKind = try u8("change kind")
        let kind: RowChange.Kind
        var duringCopy = false
        switch ChangeKindTag(rawValue: rawKind) {
        case .insert: kind = .insert
        case .copy: kind = .copy
        case .update: kind = .update
        case .delete: kind = .delete
        case .updateDuringCopy:
            kind = .update
            duringCopy = true
        case .deleteDuringCopy:
            kind = .delete
            duringCopy = true
        case .truncate:
            let options = try u8("truncate options")
            guard options & ~3 == 0 else {
                throw .malformed(field: "truncate options", reason: "unknown bits \(options)")
            }
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
        // Insert: new only; copy: new only, every column sent; delete: old only; update: new,
        // and old if the source sent it; truncate: neither.
        let imagesFit =
            switch kind {
            case .insert: old == nil && new != nil
            case .copy: old == nil && new.map { image in !image.contains { $0.isUnchanged } } == true
            case .delete: old != nil && new == nil
            case .update: new != nil
            case .truncate: old == nil && new == nil
            }
        guard imagesFit else {
            throw .malformed(
                field: "row change",
                reason: "\(kind) on \(loggable(relation.name.description)) with the wrong row images")
        }
        return RowChange(relation: relation, kind: kind, old: old, new: new, duringCopy: duringCopy)
    }

    private mutating func image(_ relation: Relation) throws(BatchCodecError) -> [Value]? {
        switch try u8("row image flag") {
        case 0:
            return nil
        case 1:
            let width = relation.columns.count
            guard width <= remaining else {
                throw .truncated(field: "row image of \(loggable(relation.name.description))")
            }
            return try values(count: width)
        case let flag:
            throw .malformed(field: "row image flag", reason: "value \(flag)")
        }
    }
}
