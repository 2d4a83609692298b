import TandemCodec
import TandemCore

/// Why the spool refused to open, to take a batch, or to hand one out.
///
/// Every case names the file (and offset or sequence where there is one) and what
/// was wrong. A refused `append` never leaves anything behind: the spool is exactly
/// as it was before the call, unless the case is `needsRestart`.
public enum SpoolError: OperatorError, Sendable, Hashable {
    /// A system call failed outside the write path (opening, listing, reading, locking).
    case io(path: String, operation: String, errno: Int32)
    /// Another process (or another `Spool` in this one) has this spool open.
    case locked(path: String)
    /// The directory holds something that is not a spool of this format.
    case notASpool(path: String, reason: String)
    /// The identity file names another stream: the directory belongs to someone else.
    case streamMismatch(path: String, expected: StreamID, found: String)
    /// The identity file declares a format version this build does not read.
    case unsupportedFormat(path: String, version: Int)
    /// Damage that is not a torn tail (or damage found while reading): nothing after
    /// `offset` can be trusted, and the spool does not guess.
    case corrupt(path: String, offset: Int64, reason: String)
    /// `append` was given a batch that is not exactly the next one.
    case outOfSequence(path: String, expected: UInt64, received: UInt64)
    /// `append` was given a frame of another stream.
    case wrongStream(path: String, expected: StreamID, found: StreamID, sequence: UInt64)
    /// `append` was given bytes that are not a valid batch frame (`index` in the call).
    case invalidFrame(path: String, index: Int, reason: BatchCodecError)
    /// The file system is full (ENOSPC or EDQUOT). Nothing was kept of the failed append.
    case diskFull(path: String)
    /// Another write error (EIO, …). Nothing was kept of the failed append.
    case writeFailed(path: String, operation: String, errno: Int32)
    /// The configured maximum spool size would be exceeded. Nothing was written.
    case spoolFull(path: String, bytes: Int64, needed: Int64, limit: Int64)
    /// A failed append could not be undone (the cleanup failed too). The files may
    /// end in a partial record, which start-up recovery cuts; until then no append is
    /// accepted.
    case needsRestart(path: String, reason: String)
    /// A reader asked for a batch that retention has already deleted.
    case released(path: String, sequence: UInt64, oldest: UInt64?)
    /// The spool was closed.
    case closed(path: String)

    public var description: String {
        switch self {
        case let .io(path, operation, code):
            "spool \(path): \(operation) failed: \(errnoText(code))"
        case .locked(let path):
            "spool \(path) is already open in another process (or twice in this one)"
        case let .notASpool(path, reason):
            "\(path) is not a Tandem spool: \(reason)"
        case let .streamMismatch(path, expected, found):
            "spool \(path) belongs to stream \"\(found)\", not \"\(expected)\""
        case let .unsupportedFormat(path, version):
            "spool \(path) has format version \(version); this build reads version \(SpoolFormat.version)"
        case let .corrupt(path, offset, reason):
            "spool file \(path) is damaged at offset \(offset): \(reason)"
        case let .outOfSequence(path, expected, received):
            received <= expected &- 1
                ? "spool \(path) already holds batch \(received); it expects batch \(expected) next"
                : "spool \(path) expects batch \(expected) next, got batch \(received) (batches \(expected)–\(received - 1) are missing)"
        case let .wrongStream(path, expected, found, sequence):
            "spool \(path) is for stream \"\(expected)\" but batch \(sequence) belongs to stream \"\(found)\""
        case let .invalidFrame(path, index, reason):
            "spool \(path): frame \(index) of the append is not a valid batch: \(reason)"
        case .diskFull(let path):
            "no space left on the device holding spool \(path); intake stopped, the failed batch was not kept"
        case let .writeFailed(path, operation, code):
            "writing spool \(path) failed (\(operation): \(errnoText(code))); intake stopped, the failed batch was not kept"
        case let .spoolFull(path, bytes, needed, limit):
            "spool \(path) holds \(bytes) bytes; \(needed) more would exceed its maximum of \(limit) bytes"
        case let .needsRestart(path, reason):
            "spool \(path) stopped taking batches: \(reason)"
        case let .released(path, sequence, oldest):
            if let oldest {
                "spool \(path) no longer holds batch \(sequence) (retention released it; the oldest kept is \(oldest))"
            } else {
                "spool \(path) no longer holds batch \(sequence) (retention released it; the spool is empty)"
            }
        case .closed(let path):
            "spool \(path) is closed"
        }
    }

    public var hint: String {
        switch self {
        case .io:
            "check that the spool directory exists, is writable by the tandem user, and that its file system is healthy"
        case .locked:
            "stop the other tandem agent using this spool directory (each stream's spool has one owner)"
        case .notASpool, .unsupportedFormat:
            "point [spool] directory at a Tandem spool of this version, or move the directory aside so a new spool is created"
        case .streamMismatch:
            "each stream needs its own spool directory; check [spool] directory, or move this one aside if it is stale"
        case .corrupt:
            "do not delete records by hand: move the stream's spool directory aside (keep it for diagnosis) and restart; "
                + "if the shipper can no longer resend from the apply checkpoint, re-seed the stream"
        case .outOfSequence, .wrongStream, .invalidFrame:
            "the sender and this spool disagree about the stream; reconnect so the sender resends from the spool's durable batch"
        case .diskFull:
            "free space on the spool's file system (let apply catch up so retention can release segments, or grow the volume); "
                + "the stream resumes on its own"
        case .writeFailed:
            "check the disk and the kernel log; the stream resumes from the last durable batch once writes succeed"
        case .spoolFull:
            "apply is behind: intake pauses until retention releases applied segments, or raise spool.max_bytes"
        case .needsRestart:
            "restart the tandem agent; start-up recovery cuts the partial record and the stream resumes from the last durable batch"
        case .released:
            "read from the apply checkpoint onward; batches at or before it are already applied"
        case .closed:
            "open the spool again"
        }
    }
}
