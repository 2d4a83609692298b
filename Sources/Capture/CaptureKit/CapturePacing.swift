/// When a capture reads, waits, closes its open batch or writes a heartbeat: one pure rule for
/// every engine (events in, actions out), so that both captures close batches and hold back
/// under backpressure the same way. The capture's loop asks `next(_:)` with what it observes
/// and carries out the one action it gets; it decides nothing itself.
///
/// The rules, in order:
/// 1. **Close a due batch**, once what already arrived behind it has been taken (so a batch is
///    as full as the delay allows), unless it is overdue by a whole delay: a source that never
///    pauses (catching up) must not keep a batch open for ever. Batches close on size in the
///    batcher; closing whenever the input is momentarily empty made one batch per transaction
///    under steady load (2.5× the bytes, per-batch costs at every stage).
/// 2. **Heartbeat** when its interval has passed: lag stays measurable on an idle source.
/// 3. **Hold back** while the shipper has not taken `maximumReadyBytes` of finished batches:
///    the source keeps its log, memory stays bounded. The capture still answers its source
///    while it waits (a PostgreSQL status update), so the wait is short.
/// 4. **Gather**: with a batch open, nothing arrived and the batch not yet due, sleep until it is
///    due instead of waking for each event; what arrives meanwhile is read in a few large reads.
/// 5. Otherwise **read**: what already arrived while a batch is open (timeout 0), or, without one,
///    wait up to `idleRead` for input, so the first change after a pause is taken the moment it
///    arrives. (A read that blocks until the next event, as MariaDB's binlog dump does, is
///    bounded by the source's own heartbeat instead.)
///
/// Times are monotonic nanoseconds (the capture's clock), passed in.
public struct CapturePacing: Sendable, Hashable {
    public var batchDelay: UInt64
    public var heartbeatInterval: UInt64
    public var maximumReadyBytes: Int
    /// The longest read without an open batch.
    public var idleRead: UInt64
    /// The longest a backpressure or gathering wait lasts before looking again.
    public var longestWait: UInt64
    /// When the next heartbeat is due; nil: heartbeats are off.
    public private(set) var nextHeartbeat: UInt64?

    public init(
        batchDelay: UInt64, heartbeatInterval: UInt64, maximumReadyBytes: Int, now: UInt64,
        idleRead: UInt64 = 100_000_000, longestWait: UInt64 = 50_000_000
    ) {
        self.batchDelay = batchDelay
        self.heartbeatInterval = heartbeatInterval
        self.maximumReadyBytes = maximumReadyBytes
        self.idleRead = idleRead
        self.longestWait = longestWait
        nextHeartbeat = heartbeatInterval > 0 ? now &+ heartbeatInterval : nil
    }

    /// What the capture observes before each step.
    public struct Observation: Sendable, Hashable {
        public var now: UInt64
        /// When the open batch becomes due (`TransactionBatcher.dueAt`); nil without one.
        public var batchDueAt: UInt64?
        /// Input already arrived and readable without waiting (the client's buffer, the socket).
        public var inputPending: Bool
        /// Bytes of finished batches the shipper has not taken yet.
        public var readyBytes: Int

        public init(now: UInt64, batchDueAt: UInt64?, inputPending: Bool, readyBytes: Int) {
            self.now = now
            self.batchDueAt = batchDueAt
            self.inputPending = inputPending
            self.readyBytes = readyBytes
        }
    }

    public enum Action: Sendable, Hashable {
        /// Close the open batch and hand it over.
        case closeBatch
        /// Write a heartbeat at the source.
        case heartbeat
        /// Sleep this long (backpressure, or gathering), still answering the source if it asks.
        case wait(nanoseconds: UInt64)
        /// Read from the source, waiting at most this long for input.
        case read(timeoutNanoseconds: UInt64)
    }

    public mutating func next(_ observed: Observation) -> Action {
        let now = observed.now
        if let dueAt = observed.batchDueAt, now >= dueAt,
            !observed.inputPending || now - dueAt >= batchDelay
        {
            return .closeBatch
        }
        if let due = nextHeartbeat, now >= due {
            nextHeartbeat = now &+ heartbeatInterval
            return .heartbeat
        }
        if observed.readyBytes >= maximumReadyBytes {
            return .wait(nanoseconds: min(5_000_000, longestWait))
        }
        if let dueAt = observed.batchDueAt {
            if !observed.inputPending, now < dueAt {
                return .wait(nanoseconds: min(dueAt - now, longestWait))
            }
            return .read(timeoutNanoseconds: 0)
        }
        return .read(timeoutNanoseconds: idleRead)
    }
}
