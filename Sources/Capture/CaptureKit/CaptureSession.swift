import TandemCore

/// One connected session of an engine's capture: the port the shared `CaptureDriver` runs.
///
/// An engine connects, checks its source and finds where to start (see `CaptureEngine`); from
/// then on the session only reads and decodes, and says what it decoded. Batching, numbering,
/// encoding, pacing, backpressure and the hand-over to the shipper are the driver's, written
/// once for every engine, so both engines close batches and hold back by the same rule.
public protocol CaptureSession: AnyObject {
    /// Input already arrived and readable without waiting (client buffer, socket). Asked only
    /// while a batch is open, to decide whether to take it before closing the batch.
    var hasPendingInput: Bool { get }

    /// Reads from the source, waiting at most `timeoutNanoseconds` for input, and hands what it
    /// decoded to `take` in source order. A source whose read blocks until its next event may
    /// ignore the timeout when its own heartbeat bounds the wait (the MariaDB binlog dump).
    /// `take` may block while the shipper has no room, answering the source meanwhile through
    /// `stepped(quiescent:)`.
    func read(timeoutNanoseconds: UInt64, take: (Captured) throws(CaptureError) -> Void) throws(CaptureError)

    /// Nothing is half-decoded: no transaction's start has been read without its end. Only then
    /// may a read that found nothing say the capture has everything the source had (`CaughtUp`).
    var isBetweenTransactions: Bool { get }

    /// Commits a heartbeat at the source, so lag stays measurable on an idle primary.
    func writeHeartbeat() throws(CaptureError)

    /// How far this session has read its source's log (nil while it cannot tell). Updated before
    /// a `.transaction` is handed to `take`, so at that moment it is exactly that transaction's
    /// end: a batch's offset is then the end of what it completes, and the source log after it
    /// is what a disaster would lose (never less).
    var logRead: LogOffset? { get }

    /// The source's log end now, in the same space as `logRead` (a query on the session's
    /// control connection; nil when the engine cannot tell). The driver asks about once a second.
    func readLogEnd() throws(CaptureError) -> LogOffset?

    /// Called after every step of the driver, and repeatedly while a hand-over waits for room:
    /// the session answers its source (a PostgreSQL status update) so waiting never times the
    /// connection out. `quiescent`: no batch is open and every delivered batch is durable at the
    /// applier, so a session that also has nothing half-decoded may confirm an idle position.
    func stepped(quiescent: Bool) throws(CaptureError)

    /// Closes the session's connections (the driver's run is over, or failed).
    func close()
}

/// What a capture session decoded, for the driver to batch.
public enum Captured {
    /// A whole committed transaction, ending at `end` (what the source may be acknowledged up to).
    case transaction(Transaction, end: Position)
    /// A piece of a large committed transaction, batched at once; the transaction's last piece
    /// comes as `.transaction` with the end position, so no batch of earlier pieces releases it.
    case chunk(Transaction)
    /// Capture ends in front of this point (a schema change it cannot ship yet): everything
    /// before it is handed over and the session ends. Whatever the same read decodes after it
    /// is not taken; it is read again when capture resumes from the acknowledged position.
    case boundary
}
