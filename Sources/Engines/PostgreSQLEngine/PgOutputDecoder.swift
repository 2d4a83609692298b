import TandemCore

/// A logical decoding message (`pg_logical_emit_message`), which Tandem uses for heartbeats.
public struct PgLogicalMessage: Hashable, Sendable {
    public var lsn: LSN
    public var transactional: Bool
    public var prefix: String
    public var content: [UInt8]

    public init(lsn: LSN, transactional: Bool, prefix: String, content: [UInt8]) {
        self.lsn = lsn
        self.transactional = transactional
        self.prefix = prefix
        self.content = content
    }
}

/// What the decoder hands on after a message: a whole committed transaction (with any
/// transactional logical messages it carried, in order), or a non-transactional message.
///
/// `endLSN` is the end of the commit record. The transaction's position is the commit
/// record's start (what pgoutput calls the commit LSN); confirming the slot at `endLSN`
/// instead tells the server not to resend this transaction after a reconnect, which is
/// what PostgreSQL's own subscriber reports. Which one the shipper acknowledges is the
/// capture layer's decision; both are kept so it can make it.
public enum PgOutputEvent: Hashable, Sendable {
    /// A committed transaction, or the final chunk of one whose earlier chunks came as `.chunk`.
    case transaction(Transaction, endLSN: LSN, messages: [PgLogicalMessage])
    /// A non-final piece of a committed transaction (see `PgOutputDecoder.chunkChanges`):
    /// same commit position and time as the rest, `chunk.isFinal` false. It may be shipped
    /// at once, but the source may not be acknowledged for it.
    case chunk(Transaction)
    case message(PgLogicalMessage)
}

/// A cached Relation message turned into Tandem's model, plus what only PostgreSQL knows.
public struct PgOutputRelation: Hashable, Sendable {
    public var relid: UInt32
    /// `relreplident`: 'd', 'n', 'f' or 'i'. With 'f' every column is flagged as key.
    public var replicaIdentity: UInt8
    public var relation: Relation
    /// Per column, the type modifier (`atttypmod`), -1 when none.
    public var typeModifiers: [Int32]
}

/// Why a stream of otherwise well-formed messages was refused.
public enum PgOutputDecodeError: Error, Hashable, Sendable {
    case parse(PgOutputParseError)
    case beginInsideTransaction(xid: UInt32)
    case commitWithoutBegin
    /// The Begin announced one commit LSN and the Commit carried another.
    case commitLSNMismatch(begin: LSN, commit: LSN)
    /// A change, Origin or transactional Message arrived outside Begin…Commit and outside a stream.
    case outsideTransaction(messageType: UInt8)
    case unknownRelation(relid: UInt32)
    case columnCountMismatch(relation: RelationName, expected: Int, got: Int)
    /// A text value that does not parse as its (built-in) type claims.
    case invalidValue(relation: RelationName, column: String, typeOID: UInt32, text: String)
    case invalidUTF8(relation: RelationName, column: String)
    /// Binary tuple data: only sent when the subscriber asks for `binary 'true'`, which Tandem does not.
    case binaryValueUnsupported(relation: RelationName, column: String)
    case streamAlreadyOpen(open: UInt32, starting: UInt32)
    case streamNotOpen
    case streamInsideTransaction
    case unknownStreamTransaction(xid: UInt32)
    case timestampOutOfRange(postgresMicroseconds: Int64)
    /// The stream store could not keep or read back a streamed transaction.
    case streamStore(String)
}

/// Turns `pgoutput` protocol-version-2 messages into Tandem `Transaction`s. Pure: the
/// caller feeds bytes (from the replication connection, or from a spill file) and gets
/// events back; no I/O, no clocks.
///
/// - Relations are cached by relid and replaced whenever a new Relation message arrives
///   (the server resends one after any schema change, before the first row that needs it).
/// - A plain transaction is Begin, changes, Commit; the result carries the commit LSN as
///   its position, so acknowledging it to the slot is exact.
/// - A streamed transaction arrives in segments (Stream Start … Stream Stop) interleaved
///   with other transactions, and is only final at Stream Commit. The decoder keeps each
///   segment's raw message bytes per top-level xid and decodes them only at Stream Commit,
///   in order, exactly as PostgreSQL's own apply worker replays its spool file: Relation
///   messages inside a stream belong to that stream and must not touch the cache before
///   it commits. Where those bytes live is the `PgStreamStore`'s business: memory by
///   default, a spill file per transaction in the shipper (`PgFileStreamStore`).
public struct PgOutputDecoder: Sendable {
    private struct Pending {
        var finalLSN: UInt64?
        /// The Begin's commit time (plain transactions); a stream learns it at Stream Commit.
        var commitTime: Int64?
        var emittedChunks: UInt32 = 0
        var origin: String?
        var changes: [RowChange] = []
        var messages: [PgLogicalMessage] = []
    }

    private let parser = PgOutputParser()
    public private(set) var relations: [UInt32: PgOutputRelation] = [:]
    /// Names of non-built-in types from Type messages, used as `Column.nativeType`.
    public private(set) var typeNames: [UInt32: String] = [:]
    private var current: Pending?
    private var openStream: UInt32?
    /// Streamed transactions' raw messages until their commit or abort. Shared by copies
    /// of the decoder (a class): one decoder per store.
    public let streamStore: any PgStreamStore
    /// Bytes of streamed transactions held in memory (a file-backed store keeps this small).
    public var bufferedByteCount: Int { streamStore.memoryBytes }

    /// A transaction holding this many changes is handed on as a `.chunk` and the decoder
    /// keeps going, so memory does not grow with the transaction. Only committed data is
    /// cut this way: a plain transaction (the server sends it after its commit) and a
    /// streamed one while it is replayed at Stream Commit. `Int.max` never cuts.
    public var chunkChanges: Int

    public init(chunkChanges: Int = .max, streamStore: any PgStreamStore = PgMemoryStreamStore()) {
        self.chunkChanges = max(1, chunkChanges)
        self.streamStore = streamStore
    }

    /// True between Begin and Commit.
    public var isInTransaction: Bool { current != nil }
    /// The xid of the stream segment being received, if any.
    public var openStreamXID: UInt32? { openStream }
    /// Top-level xids of streamed transactions held until their commit or abort.
    public var bufferedTransactionIDs: [UInt32] { streamStore.transactionIDs }

    /// Decodes one message. Returns an event when it completes a transaction (Commit,
    /// Stream Commit) or is a non-transactional logical message; nil otherwise.
    ///
    /// A thrown error means the stream cannot be trusted from here on: the capture layer
    /// is expected to stop and later restart from the slot with a fresh decoder (the slot
    /// resends everything after its confirmed position), never to skip the message.
    public mutating func feed(_ bytes: [UInt8]) throws(PgOutputDecodeError) -> PgOutputEvent? {
        var events: [PgOutputEvent] = []
        try feed(bytes, into: &events)
        return events.last
    }

    /// Decodes one message, appending what it completes to `events`: chunks of a large
    /// transaction, then the transaction (or its final chunk), or a non-transactional
    /// message. Same error contract as `feed(_:)`.
    public mutating func feed(_ bytes: [UInt8], into events: inout [PgOutputEvent]) throws(PgOutputDecodeError) {
        var collected: [PgOutputEvent] = []
        do {
            try feed(bytes) { collected.append($0) }
        } catch let error as PgOutputDecodeError {
            throw error
        } catch {
            throw .streamStore("\(error)")
        }
        events += collected
    }

    /// Decodes one message and hands each event to `emit` as soon as it is complete, so a
    /// large transaction (replayed at Stream Commit, or arriving after its commit) never
    /// has to exist in memory whole: the caller batches and ships each chunk, and may
    /// block in `emit` while its own queue is full. Errors from `emit` pass through
    /// unchanged; the decoder's own are `PgOutputDecodeError`.
    public mutating func feed(_ bytes: [UInt8], emit: (PgOutputEvent) throws -> Void) throws {
        if let event = try feedOne(bytes, emit: emit) { try emit(event) }
    }

    private mutating func feedOne(_ bytes: [UInt8], emit: (PgOutputEvent) throws -> Void) throws -> PgOutputEvent? {
        let message: PgOutputMessage
        do { message = try parser.parse(bytes, inStream: openStream != nil) } catch {
            throw PgOutputDecodeError.parse(error)
        }

        if let top = openStream {
            switch message {
            case .streamStop:
                openStream = nil
                return nil
            case .streamStart(let xid, _):
                throw PgOutputDecodeError.streamAlreadyOpen(open: top, starting: xid)
            case .message(_, false, let lsn, let prefix, let content):
                return .message(PgLogicalMessage(lsn: LSN(lsn), transactional: false, prefix: prefix, content: content))
            case .begin, .commit, .streamCommit, .streamAbort:
                throw PgOutputDecodeError.streamInsideTransaction
            default:
                // Origin carries no xid: it belongs to the open stream's top-level transaction.
                try store { () throws in try streamStore.append(bytes, xid: top, subxid: message.streamXID) }
                return nil
            }
        }

        switch message {
        case .begin(let finalLSN, let time, let xid):
            guard current == nil else { throw PgOutputDecodeError.beginInsideTransaction(xid: xid) }
            current = Pending(finalLSN: finalLSN, commitTime: time)
            return nil
        case .commit(_, let commitLSN, let endLSN, let time):
            guard let pending = current else { throw PgOutputDecodeError.commitWithoutBegin }
            current = nil
            if let finalLSN = pending.finalLSN, finalLSN != commitLSN {
                throw PgOutputDecodeError.commitLSNMismatch(begin: LSN(finalLSN), commit: LSN(commitLSN))
            }
            return try finish(pending, commitLSN: commitLSN, endLSN: endLSN, time: time)
        case .streamStart(let xid, _):
            guard current == nil else { throw PgOutputDecodeError.streamInsideTransaction }
            openStream = xid
            try store { () throws in try streamStore.open(xid: xid) }
            return nil
        case .streamStop:
            throw PgOutputDecodeError.streamNotOpen
        case .streamCommit(let xid, _, let commitLSN, let endLSN, let time):
            guard current == nil else { throw PgOutputDecodeError.streamInsideTransaction }
            guard streamStore.contains(xid: xid) else { throw PgOutputDecodeError.unknownStreamTransaction(xid: xid) }
            var pending = Pending(finalLSN: commitLSN, commitTime: time)
            let parser = self.parser
            try streamStore.replay(xid: xid) { raw in
                let replayed: PgOutputMessage
                do throws(PgOutputParseError) { replayed = try parser.parse(raw, inStream: true) } catch {
                    throw PgOutputDecodeError.parse(error)
                }
                try apply(replayed, to: &pending)
                if pending.changes.count >= chunkChanges { try emit(try cut(&pending)) }
            }
            return try finish(pending, commitLSN: commitLSN, endLSN: endLSN, time: time)
        case .streamAbort(let xid, let subxid):
            guard current == nil else { throw PgOutputDecodeError.streamInsideTransaction }
            guard streamStore.contains(xid: xid) else { throw PgOutputDecodeError.unknownStreamTransaction(xid: xid) }
            if xid == subxid {
                streamStore.discard(xid: xid)
            } else {
                // Subtransactions are serialized in order: everything from the aborted one's first
                // change on belongs to it (or to its own children), as in PostgreSQL's apply worker.
                try store { () throws in try streamStore.truncate(xid: xid, fromSubtransaction: subxid) }
            }
            return nil
        case .message(_, false, let lsn, let prefix, let content):
            return .message(PgLogicalMessage(lsn: LSN(lsn), transactional: false, prefix: prefix, content: content))
        case .relation, .type:
            // Schema messages may arrive between transactions; they only touch the cache.
            var scratch = Pending()
            try apply(message, to: &scratch)
            return nil
        default:
            guard var pending = current else { throw PgOutputDecodeError.outsideTransaction(messageType: bytes[0]) }
            // Taken out while applying (exclusive access to self); a refused message leaves it as it was.
            current = nil
            defer { current = pending }
            try apply(message, to: &pending)
            if pending.changes.count >= chunkChanges { try emit(try cut(&pending)) }
            return nil
        }
    }

    /// Store failures (a full disk under a file-backed store) become decoder errors.
    private func store(_ body: () throws -> Void) throws(PgOutputDecodeError) {
        do { try body() } catch let error as PgOutputDecodeError { throw error } catch {
            throw .streamStore("\(error)")
        }
    }

    private func finish(_ pending: Pending, commitLSN: UInt64, endLSN: UInt64, time: Int64) throws(PgOutputDecodeError)
        -> PgOutputEvent
    {
        let transaction = Transaction(
            commitPosition: .postgresql(LSN(commitLSN)), commitTime: try Self.timestamp(time),
            origin: pending.origin, chunk: TransactionChunk(index: pending.emittedChunks, isFinal: true),
            changes: pending.changes)
        return .transaction(transaction, endLSN: LSN(endLSN), messages: pending.messages)
    }

    /// Hands on the changes collected so far as a non-final chunk.
    private func cut(_ pending: inout Pending) throws(PgOutputDecodeError) -> PgOutputEvent {
        let piece = Transaction(
            commitPosition: .postgresql(LSN(pending.finalLSN ?? 0)),
            commitTime: try Self.timestamp(pending.commitTime ?? 0),
            origin: pending.origin, chunk: TransactionChunk(index: pending.emittedChunks, isFinal: false),
            changes: pending.changes)
        pending.changes = []
        pending.changes.reserveCapacity(min(chunkChanges, 65_536))
        pending.emittedChunks += 1
        return .chunk(piece)
    }

    /// Applies a message that belongs inside a transaction (plain or replayed stream).
    private mutating func apply(_ message: PgOutputMessage, to pending: inout Pending) throws(PgOutputDecodeError) {
        switch message {
        case .origin(_, let name):
            pending.origin = name
        case .relation(let r):
            relations[r.relid] = try Self.relation(r, typeNames: typeNames)
        case .type(_, let oid, let namespace, let name):
            typeNames[oid] = namespace == "pg_catalog" ? name : "\(namespace).\(name)"
        case .insert(_, let relid, let new):
            let rel = try cached(relid)
            pending.changes.append(RowChange(relation: rel.relation, kind: .insert, new: try Self.row(new, rel)))
        case .update(_, let relid, let old, let new):
            let rel = try cached(relid)
            pending.changes.append(
                RowChange(
                    relation: rel.relation, kind: .update,
                    old: try old.map { (o) throws(PgOutputDecodeError) in try Self.old(o, rel) },
                    new: try Self.row(new, rel)))
        case .delete(_, let relid, let old):
            let rel = try cached(relid)
            pending.changes.append(RowChange(relation: rel.relation, kind: .delete, old: try Self.old(old, rel)))
        case .truncate(_, let options, let relids):
            // All relids resolved before any is appended: a refused message changes nothing.
            var truncates: [RowChange] = []
            for relid in relids {
                truncates.append(
                    RowChange(
                        relation: try cached(relid).relation,
                        kind: .truncate(cascade: options & 1 != 0, restartIdentity: options & 2 != 0)))
            }
            pending.changes += truncates
        case .message(_, let transactional, let lsn, let prefix, let content):
            pending.messages.append(
                PgLogicalMessage(
                    lsn: LSN(lsn), transactional: transactional, prefix: prefix,
                    content: content))
        case .begin, .commit, .streamStart, .streamStop, .streamCommit, .streamAbort:
            throw .streamInsideTransaction
        }
    }

    private func cached(_ relid: UInt32) throws(PgOutputDecodeError) -> PgOutputRelation {
        guard let rel = relations[relid] else { throw .unknownRelation(relid: relid) }
        return rel
    }

    /// PostgreSQL counts microseconds from 2000-01-01 00:00 UTC; Tandem from 1970-01-01.
    static let postgresEpochOffset: Int64 = 946_684_800_000_000

    static func timestamp(_ postgres: Int64) throws(PgOutputDecodeError) -> Timestamp {
        let (unix, overflow) = postgres.addingReportingOverflow(postgresEpochOffset)
        guard !overflow else { throw .timestampOutOfRange(postgresMicroseconds: postgres) }
        return Timestamp(microsecondsSinceEpoch: unix)
    }

    static func relation(_ r: PgOutputRelationMessage, typeNames: [UInt32: String]) throws(PgOutputDecodeError)
        -> PgOutputRelation
    {
        let columns = r.columns.map { c in
            let builtin = PgBuiltinType.lookup(c.typeOID, typeModifier: c.typeModifier)
            return Column(
                name: c.name, type: builtin?.type ?? .other,
                nativeType: builtin?.name ?? typeNames[c.typeOID] ?? "oid \(c.typeOID)",
                nativeTypeID: c.typeOID, isKey: c.isKey)
        }
        return PgOutputRelation(
            relid: r.relid, replicaIdentity: r.replicaIdentity,
            relation: Relation(name: RelationName(schema: r.namespace, name: r.name), columns: columns),
            typeModifiers: r.columns.map(\.typeModifier))
    }

    /// A 'K' image holds only key columns; the server sends the others as null, which here
    /// would read as "the column was NULL". They are `.unchanged` ("not known") instead.
    static func old(_ tuple: PgOutputOldTuple, _ rel: PgOutputRelation) throws(PgOutputDecodeError) -> [Value] {
        switch tuple {
        case .oldRow(let row):
            return try Self.row(row, rel)
        case .key(let row):
            var values = try Self.row(row, rel)
            for i in values.indices where !rel.relation.columns[i].isKey { values[i] = .unchanged }
            return values
        }
    }

    static func row(_ tuple: PgOutputTuple, _ rel: PgOutputRelation) throws(PgOutputDecodeError) -> [Value] {
        let columns = rel.relation.columns
        guard tuple.count == columns.count else {
            throw .columnCountMismatch(relation: rel.relation.name, expected: columns.count, got: tuple.count)
        }
        var values: [Value] = []
        values.reserveCapacity(columns.count)
        for (datum, column) in zip(tuple, columns) {
            switch datum {
            case .null: values.append(.null)
            case .unchangedToast: values.append(.unchanged)
            case .binary: throw .binaryValueUnsupported(relation: rel.relation.name, column: column.name)
            case .text(let bytes):
                guard let text = String(validating: bytes, as: UTF8.self) else {
                    throw .invalidUTF8(relation: rel.relation.name, column: column.name)
                }
                guard let value = PgBuiltinType.value(text: text, typeOID: column.nativeTypeID) else {
                    throw .invalidValue(
                        relation: rel.relation.name, column: column.name,
                        typeOID: column.nativeTypeID, text: text)
                }
                values.append(value)
            }
        }
        return values
    }
}
