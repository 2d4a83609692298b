import CLibPQ

/// The outcome class of a statement, mirroring libpq's `ExecStatusType`.
///
/// Kept as a Swift enum so callers can switch exhaustively on the states they expect (the
/// replication work later needs `copyBoth`), with `other` preserving any status a newer libpq
/// might add instead of crashing on it.
public enum PGResultStatus: Sendable, Equatable {
    case emptyQuery
    case commandOK
    case tuplesOK
    case copyOut
    case copyIn
    case copyBoth
    case badResponse
    case nonfatalError
    case fatalError
    case singleTuple
    case pipelineSync
    case pipelineAborted
    case other(UInt32)

    init(_ raw: ExecStatusType) {
        switch raw {
        case PGRES_EMPTY_QUERY: self = .emptyQuery
        case PGRES_COMMAND_OK: self = .commandOK
        case PGRES_TUPLES_OK: self = .tuplesOK
        case PGRES_COPY_OUT: self = .copyOut
        case PGRES_COPY_IN: self = .copyIn
        case PGRES_COPY_BOTH: self = .copyBoth
        case PGRES_BAD_RESPONSE: self = .badResponse
        case PGRES_NONFATAL_ERROR: self = .nonfatalError
        case PGRES_FATAL_ERROR: self = .fatalError
        case PGRES_SINGLE_TUPLE: self = .singleTuple
        case PGRES_PIPELINE_SYNC: self = .pipelineSync
        case PGRES_PIPELINE_ABORTED: self = .pipelineAborted
        default: self = .other(raw.rawValue)
        }
    }

    /// Whether this status means the statement failed. `PGConnection` never hands out a
    /// result for which this is true; it throws a `PGError` instead.
    public var isError: Bool {
        switch self {
        case .badResponse, .fatalError, .pipelineAborted: return true
        default: return false
        }
    }
}

/// One result returned by the server, owning its `PGresult`.
///
/// Invariant: the `PGresult` lives exactly as long as this object and is freed once, in
/// `deinit`. It does not depend on the connection that produced it, so a result stays readable
/// after `PGConnection.close()`.
///
/// libpq documents a `PGresult` as read-only after creation and safe to read from several
/// threads, which is why this class is `@unchecked Sendable`: nothing here mutates it.
///
/// Row and column indexes are zero-based. An index out of range is a programming error and
/// traps, rather than being reported as SQL NULL as libpq's own accessors would.
public final class PGResult: @unchecked Sendable {
    /// The raw `PGresult`, for libpq calls this wrapper does not cover. Do not `PQclear` it;
    /// valid for the lifetime of this object.
    public let handle: OpaquePointer

    /// Takes ownership of `handle`; the caller must not free it.
    public init(owning handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        PQclear(handle)
    }

    public var status: PGResultStatus { PGResultStatus(PQresultStatus(handle)) }

    public var rowCount: Int { Int(PQntuples(handle)) }

    public var columnCount: Int { Int(PQnfields(handle)) }

    public func columnName(_ column: Int) -> String {
        checkColumn(column)
        guard let name = PQfname(handle, Int32(column)) else { return "" }
        return String(cString: name)
    }

    public var columnNames: [String] { (0..<columnCount).map(columnName) }

    /// The index of the column with exactly this name, or nil. Unlike `PQfnumber` this does
    /// not apply SQL identifier case folding, so `"Value"` and `"value"` stay distinct.
    public func columnIndex(named name: String) -> Int? {
        (0..<columnCount).first { columnName($0) == name }
    }

    /// The type OID of a column, e.g. 25 for `text`, 17 for `bytea`.
    public func columnType(_ column: Int) -> UInt32 {
        checkColumn(column)
        return PQftype(handle, Int32(column))
    }

    /// The text value of a field, or nil for SQL NULL.
    ///
    /// The connection always negotiates UTF-8 as client encoding, so text-format values are
    /// valid UTF-8; the length comes from `PQgetlength` rather than the NUL terminator.
    public func value(row: Int, column: Int) -> String? {
        guard let bytes = rawBytes(row: row, column: column) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The field's bytes exactly as received, or nil for SQL NULL. Needed for results in
    /// binary format, where values may contain NUL bytes.
    public func bytes(row: Int, column: Int) -> [UInt8]? {
        rawBytes(row: row, column: column).map(Array.init)
    }

    /// The text value of a field looked up by column name; nil for NULL or an unknown column.
    public func value(row: Int, column name: String) -> String? {
        guard let column = columnIndex(named: name) else { return nil }
        return value(row: row, column: column)
    }

    /// Every row as text, NULL as nil. Copies the whole result: meant for small results.
    public var rows: [[String?]] {
        let columns = columnCount
        return (0..<rowCount).map { row in (0..<columns).map { value(row: row, column: $0) } }
    }

    /// The command tag, e.g. `INSERT 0 3` or `CREATE TABLE`.
    public var commandStatus: String {
        guard let tag = PQcmdStatus(handle) else { return "" }
        return String(cString: tag)
    }

    /// The number of rows affected by INSERT/UPDATE/DELETE/MERGE/SELECT/MOVE/FETCH/COPY, or nil
    /// for commands that report no count.
    public var commandTuples: Int? {
        guard let text = PQcmdTuples(handle) else { return nil }
        return Int(String(cString: text))
    }

    /// A view into libpq's storage; valid only while `self` is alive, so never let it escape.
    private func rawBytes(row: Int, column: Int) -> UnsafeRawBufferPointer? {
        precondition(row >= 0 && row < rowCount, "PGResult row \(row) out of range 0..<\(rowCount)")
        checkColumn(column)
        let r = Int32(row)
        let c = Int32(column)
        if PQgetisnull(handle, r, c) != 0 { return nil }
        let length = Int(PQgetlength(handle, r, c))
        return UnsafeRawBufferPointer(start: PQgetvalue(handle, r, c), count: length)
    }

    private func checkColumn(_ column: Int) {
        precondition(
            column >= 0 && column < columnCount, "PGResult column \(column) out of range 0..<\(columnCount)")
    }
}
