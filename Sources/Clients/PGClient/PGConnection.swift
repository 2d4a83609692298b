import CLibPQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A libpq connection (`PGconn`) owned by Swift.
///
/// Ownership invariant: the `PGconn` is finished exactly once — by the first `close()` or,
/// failing that, by `deinit` — so neither sockets nor libpq memory leak even when a caller
/// forgets to close or an error unwinds the stack.
///
/// Thread safety: libpq allows one thread at a time per `PGconn`. This class adds no locking
/// and is not `Sendable`; keep each connection confined to one task, thread or actor. (Results
/// are independent of the connection and *are* `Sendable`.)
///
/// Encoding invariant: every connection asks for `client_encoding=UTF8` in the startup packet,
/// because Swift strings are UTF-8 and text results are decoded as such. This works for
/// ordinary, `replication=database` and physical replication connections alike, since no SQL
/// `SET` is needed.
public final class PGConnection {
    /// The raw `PGconn`, for protocol features built on top of this wrapper (COPY, replication).
    /// Valid only while `isOpen`; never `PQfinish` it yourself — call `close()`.
    public let handle: OpaquePointer

    /// The conninfo with secrets masked, used as context in connection-level errors.
    public let maskedConninfo: String

    private var closed = false
    /// A failure `startCopyIn` met while sending, reported by `finishCopyIn`.
    private var copyFailure: PGError?

    /// Opens a connection and waits until it is established (or fails).
    ///
    /// - Parameter conninfo: a libpq `key=value` string or `postgresql://` URI. Keywords given
    ///   here win over environment variables (`PGHOST`, …) as usual in libpq, except
    ///   `client_encoding`, which is always UTF8.
    /// - Throws: `PGError` of kind `.connection` with libpq's message and the masked conninfo.
    /// - Parameter extraKeywords: libpq keywords that win over the conninfo, such as
    ///   `replication=database` for a logical replication connection.
    public init(conninfo: String, extraKeywords: [(String, String)] = []) throws(PGError) {
        let masked = PGConninfo.masked(conninfo)
        // expand_dbname=1 makes libpq parse the first "dbname" value as a full conninfo; the
        // later entries then override anything the caller's string says.
        let keywords = ["dbname"] + extraKeywords.map(\.0) + ["client_encoding"]
        let values = [conninfo] + extraKeywords.map(\.1) + ["UTF8"]
        let connection = withCStringArray(keywords) { k in
            withCStringArray(values) { v in PQconnectdbParams(k, v, 1) }
        }
        guard let connection else {
            throw PGError(kind: .connection, message: "out of memory allocating PGconn", context: masked)
        }
        if PQstatus(connection) != CONNECTION_OK {
            let message = Self.trimmedMessage(PQerrorMessage(connection))
            PQfinish(connection)
            throw PGError(
                kind: .connection, message: message.isEmpty ? "unknown connection failure" : message,
                context: masked)
        }
        self.handle = connection
        self.maskedConninfo = masked
    }

    deinit {
        if !closed { PQfinish(handle) }
    }

    /// Closes the connection. Safe to call any number of times; later calls do nothing.
    public func close() {
        guard !closed else { return }
        closed = true
        PQfinish(handle)
    }

    public var isOpen: Bool { !closed }

    /// True when the connection is open and libpq still considers it healthy. After a
    /// `.connectionLost` error this is false and the connection must be replaced.
    public var isHealthy: Bool { !closed && PQstatus(handle) == CONNECTION_OK }

    /// Runs one or more SQL statements (simple query protocol) and returns the last result.
    ///
    /// Also the entry point for replication commands such as `IDENTIFY_SYSTEM` on a
    /// `replication=database` connection. Results in COPY states are returned, not thrown,
    /// so replication code can continue with the COPY sub-protocol.
    public func exec(_ sql: String) throws(PGError) -> PGResult {
        try ensureOpen(sql)
        return try check(PQexec(handle, sql), sql: sql)
    }

    /// Runs a single statement with `$1, $2, …` parameters sent separately from the SQL text,
    /// in text format; nil means SQL NULL. Parameter types are inferred by the server.
    ///
    /// Text-format parameters are C strings, so a value containing a NUL byte would be silently
    /// truncated by libpq; that is refused up front instead (PostgreSQL text cannot hold NUL
    /// anyway — send such data as `bytea` in hex form).
    public func execParams(_ sql: String, _ params: [String?]) throws(PGError) -> PGResult {
        try ensureOpen(sql)
        if let bad = params.firstIndex(where: { $0?.utf8.contains(0) ?? false }) {
            throw PGError(
                kind: .invalidArgument, message: "parameter $\(bad + 1) contains a NUL byte", context: sql)
        }
        let count = Int32(params.count)
        let result = withOptionalCStringArray(params) { values in
            PQexecParams(handle, sql, count, nil, values, nil, nil, 0)
        }
        return try check(result, sql: sql)
    }

    /// Runs one `COPY … FROM STDIN` statement with `data` as its whole input (in the format the
    /// statement names) and returns its final result; the connection must be idle (not in
    /// pipeline mode). A refusal (a unique violation, a value the column's input function
    /// rejects) is thrown like any statement error, and leaves the connection usable.
    public func copyIn(_ sql: String, data: [UInt8]) throws(PGError) -> PGResult {
        try startCopyIn(sql, data: data)
        return try finishCopyIn(sql)
    }

    /// The first half of `copyIn`: starts the COPY and sends all of `data` and its end, without
    /// waiting for the server to finish, so the caller can prepare its next work meanwhile.
    /// Exactly one `finishCopyIn` must follow before anything else is sent.
    public func startCopyIn(_ sql: String, data: [UInt8]) throws(PGError) {
        let started = try exec(sql)
        guard started.status == .copyIn else {
            throw PGError(kind: .query, message: "COPY did not start (status \(started.status))", context: sql)
        }
        // Pieces of at most 1 MiB: libpq buffers each before it writes.
        var offset = 0
        while offset < data.count {
            let end = min(data.count, offset + (1 << 20))
            let sent = data[offset..<end].withUnsafeBufferPointer { piece in
                piece.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
            }
            guard sent == 1 else { break }
            offset = end
        }
        // The end goes out after a failed send too (as a failure), so that the server's own
        // error, if it has one, can be read by `finishCopyIn`.
        let complete = offset == data.count
        let ended = PQputCopyEnd(handle, complete ? nil : "the client could not send the COPY data")
        guard complete, ended == 1 else {
            copyFailure = PGError(
                kind: PQstatus(handle) == CONNECTION_OK ? .query : .connectionLost,
                message: Self.trimmedMessage(PQerrorMessage(handle)), context: sql)
            return
        }
    }

    /// The second half of `copyIn`: waits for the COPY's result.
    public func finishCopyIn(_ sql: String) throws(PGError) -> PGResult {
        var last: PGResult?
        var failure = copyFailure
        copyFailure = nil
        while let raw = PQgetResult(handle) {
            do { last = try check(raw, sql: sql) } catch { failure = failure ?? error }
            // Still copying means the end was never accepted (a lost connection): no result follows.
            if last?.status == .copyIn { break }
        }
        if let failure { throw failure }
        guard let last, last.status != .copyIn else {
            throw PGError(
                kind: PQstatus(handle) == CONNECTION_OK ? .query : .connectionLost,
                message: Self.trimmedMessage(PQerrorMessage(handle)), context: sql)
        }
        return last
    }

    /// The server version as an integer, e.g. 150020 for 15.20; 0 if unknown.
    public var serverVersion: Int { closed ? 0 : Int(PQserverVersion(handle)) }

    /// A parameter reported by the server at startup or on change (`server_version`,
    /// `client_encoding`, `TimeZone`, `integer_datetimes`, …), or nil if not reported.
    public func parameterStatus(_ name: String) -> String? {
        guard !closed, let value = PQparameterStatus(handle, name) else { return nil }
        return String(cString: value)
    }

    /// The socket descriptor, for polling with `poll`/`epoll`; -1 when closed.
    public var socket: Int32 { closed ? -1 : PQsocket(handle) }

    /// The PID of the server process serving this connection (useful to `pg_terminate_backend`
    /// it in failure tests); 0 when closed.
    public var backendPID: Int32 { closed ? 0 : PQbackendPID(handle) }

    /// Quotes an identifier (`"My Table"`) for safe inclusion in SQL text.
    public func escapeIdentifier(_ identifier: String) throws(PGError) -> String {
        try escape(identifier, using: PQescapeIdentifier)
    }

    /// Quotes a string literal (`'it''s'`, or `E'…'` when backslashes need it) for safe
    /// inclusion in SQL text. Prefer `execParams` where the protocol allows parameters;
    /// replication commands and DDL do not.
    public func escapeLiteral(_ literal: String) throws(PGError) -> String {
        try escape(literal, using: PQescapeLiteral)
    }

    // MARK: - Internals

    private func escape(
        _ text: String,
        using function: (OpaquePointer?, UnsafePointer<CChar>?, Int) -> UnsafeMutablePointer<CChar>?
    ) throws(PGError) -> String {
        try ensureOpen(nil)
        let escaped = text.withCString { function(handle, $0, strlen($0)) }
        guard let escaped else {
            throw PGError(kind: .invalidArgument, message: Self.trimmedMessage(PQerrorMessage(handle)))
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }

    private func ensureOpen(_ sql: String?) throws(PGError) {
        if closed {
            throw PGError(kind: .closed, message: "the connection was closed by close()", context: sql)
        }
    }

    /// Turns a raw result into either an owned `PGResult` or a `PGError`, freeing the
    /// `PGresult` on the error path so nothing leaks.
    private func check(_ raw: OpaquePointer?, sql: String) throws(PGError) -> PGResult {
        guard let raw else {
            // libpq returns no result only for out-of-memory or a connection that is unusable.
            throw PGError(
                kind: PQstatus(handle) == CONNECTION_OK ? .query : .connectionLost,
                message: Self.trimmedMessage(PQerrorMessage(handle)), context: sql)
        }
        let result = PGResult(owning: raw)
        guard result.status.isError else { return result }
        let sqlState = Self.field(raw, "C")
        let primary = Self.field(raw, "M") ?? Self.trimmedMessage(PQresultErrorMessage(raw))
        // A connection that is no longer OK after the statement was lost — whether the server
        // said why (a FATAL error such as 57P01 admin_shutdown) or the socket just closed —
        // and must be replaced; anything else is a statement error on a usable connection.
        let lost = PQstatus(handle) != CONNECTION_OK
        throw PGError(
            kind: lost ? .connectionLost : .query,
            message: primary.isEmpty ? "statement failed with status \(result.status)" : primary,
            sqlState: sqlState, detail: Self.field(raw, "D"), hint: Self.field(raw, "H"), context: sql)
    }

    private static func field(_ result: OpaquePointer, _ code: Unicode.Scalar) -> String? {
        guard let value = PQresultErrorField(result, Int32(code.value)) else { return nil }
        let text = trimmedMessage(value)
        return text.isEmpty ? nil : text
    }

    static func trimmedMessage(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "" }
        let text = String(cString: message)
        var view = Substring(text)
        while let last = view.last, last.isWhitespace { view.removeLast() }
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        return String(view)
    }
}

/// Calls `body` with a NULL-terminated array of C string pointers (nil entries stay NULL) that
/// stay valid for the duration of the call. The copies are freed afterwards on every path.
private func withCStringArray<R>(
    _ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R
) -> R {
    withOptionalCStringArray(strings.map { Optional($0) }, body)
}

private func withOptionalCStringArray<R>(
    _ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R
) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } }
    defer { for copy in copies { free(copy) } }
    var pointers = copies.map { UnsafePointer($0) }
    // libpq's arrays for PQconnectdbParams must be NULL-terminated; PQexecParams ignores
    // the extra slot because it is given an explicit count.
    pointers.append(nil)
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

extension PGConnection {
    /// What a server at an address answers before any login (libpq's `PQping`).
    public enum Ping: Sendable, Equatable {
        /// A server accepts connections: a failed connection was refused by it (credentials,
        /// database, pg_hba.conf).
        case accepting
        /// A server answered but accepts no connections now (starting up, shutting down,
        /// recovering).
        case rejecting
        /// Nothing answered: the server is down, or the host or port is wrong.
        case noResponse
        /// The conninfo is unusable (no attempt was made).
        case noAttempt
    }

    /// Asks the server of `conninfo` whether it accepts connections, without logging in: tells a
    /// database that is down from one that refuses the login.
    public static func ping(conninfo: String) -> Ping {
        switch PQping(conninfo) {
        case PQPING_OK: return .accepting
        case PQPING_REJECT: return .rejecting
        case PQPING_NO_RESPONSE: return .noResponse
        default: return .noAttempt
        }
    }
}
