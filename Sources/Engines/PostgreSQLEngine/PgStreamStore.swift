/// Where the decoder keeps the raw messages of streamed transactions (pgoutput
/// `streaming 'on'`) between their first segment and their Stream Commit or Abort.
///
/// PostgreSQL streams a transaction only once it outgrows `logical_decoding_work_mem`,
/// so whatever lands here is large by definition; the shipper's store writes it to a
/// file so memory stays bounded whatever the transaction size. A store holds messages
/// of several transactions at once (segments interleave), in arrival order per xid.
public protocol PgStreamStore: AnyObject, Sendable {
    /// Starts holding `xid` (no-op when it already is).
    func open(xid: UInt32) throws
    /// Appends one message of top-level transaction `xid`, sent by `subxid` (nil when the
    /// message carries no xid, as Origin).
    func append(_ bytes: [UInt8], xid: UInt32, subxid: UInt32?) throws
    /// A subtransaction aborted: drops its first message and everything after it
    /// (subtransactions are serialized in order, so the rest belongs to it or its children).
    func truncate(xid: UInt32, fromSubtransaction subxid: UInt32) throws
    /// The whole transaction aborted.
    func discard(xid: UInt32)
    /// Hands the messages back in order, then forgets the transaction (also on error).
    func replay(xid: UInt32, _ body: ([UInt8]) throws -> Void) throws
    func contains(xid: UInt32) -> Bool
    /// Top-level xids held, sorted.
    var transactionIDs: [UInt32] { get }
    /// Bytes held in memory.
    var memoryBytes: Int { get }
}

/// The in-memory store: the default, and what the unit tests use.
public final class PgMemoryStreamStore: PgStreamStore, @unchecked Sendable {
    // @unchecked: owned by one decoder, used from one thread at a time.
    private var streams: [UInt32: [(subxid: UInt32?, bytes: [UInt8])]] = [:]
    public private(set) var memoryBytes = 0

    public init() {}

    public func open(xid: UInt32) { if streams[xid] == nil { streams[xid] = [] } }

    public func append(_ bytes: [UInt8], xid: UInt32, subxid: UInt32?) {
        streams[xid, default: []].append((subxid, bytes))
        memoryBytes += bytes.count
    }

    public func truncate(xid: UInt32, fromSubtransaction subxid: UInt32) {
        guard var messages = streams[xid], let cut = messages.firstIndex(where: { $0.subxid == subxid }) else { return }
        memoryBytes -= messages[cut...].reduce(0) { $0 + $1.bytes.count }
        messages.removeSubrange(cut...)
        streams[xid] = messages
    }

    public func discard(xid: UInt32) {
        guard let messages = streams.removeValue(forKey: xid) else { return }
        memoryBytes -= messages.reduce(0) { $0 + $1.bytes.count }
    }

    public func replay(xid: UInt32, _ body: ([UInt8]) throws -> Void) throws {
        guard let messages = streams[xid] else { return }
        defer { discard(xid: xid) }
        for message in messages { try body(message.bytes) }
    }

    public func contains(xid: UInt32) -> Bool { streams[xid] != nil }
    public var transactionIDs: [UInt32] { streams.keys.sorted() }
}
