import CMariaDB

#if canImport(Glibc)
    import Glibc
#endif

/// `mysql_library_init` must run once before any connection is created, and is not itself
/// thread-safe. A global `let` is initialised lazily and exactly once by the Swift runtime,
/// which gives that guarantee without an explicit lock.
private let libraryInitStatus: Int32 = mysql_server_init(0, nil, nil)

/// A MariaDB Connector/C connection (`MYSQL`) owned by Swift.
///
/// Ownership invariant: the `MYSQL` handle is closed exactly once — by the first `close()` or,
/// failing that, by `deinit` — and every `MYSQL_RES` is freed before the call that produced
/// it returns, so neither sockets nor client memory leak on any path, including errors.
///
/// Thread safety: Connector/C allows one thread at a time per `MYSQL`. This class adds no
/// locking and is not `Sendable`; confine each connection to one task, thread or actor.
///
/// Encoding invariant: the connection character set is `utf8mb4`, so Swift strings (UTF-8)
/// round-trip every Unicode scalar, including emoji, and `escape(_:)` escapes for the charset
/// the server actually uses.
public final class MySQLConnection {
    /// The raw `MYSQL` handle, for features built on top of this wrapper (`mariadb_rpl_*`).
    /// Valid only while `isOpen`; never `mysql_close` it yourself — call `close()`.
    public let handle: UnsafeMutablePointer<MYSQL>

    /// `user@host:port` or `user@socket`, used as context in connection-level errors.
    public let target: String

    private var closed = false

    /// Connects and authenticates.
    ///
    /// - Parameters:
    ///   - host: host name or IP. `nil` or `"localhost"` makes Connector/C use the Unix socket
    ///     (`unixSocket`, or its compiled-in default); use `127.0.0.1` to force TCP.
    ///   - connectTimeout: seconds before giving up on an unresponsive host.
    ///   - readTimeout/writeTimeout: seconds a single network read/write may block (nil keeps
    ///     the library default). Replication readers will want these set.
    /// - Throws: `MySQLError` of kind `.connection` (or `.client` if the library is unusable).
    public init(
        host: String? = "127.0.0.1", port: Int = 3306, user: String, password: String? = nil,
        database: String? = nil, unixSocket: String? = nil, connectTimeout: Int = 10,
        readTimeout: Int? = nil, writeTimeout: Int? = nil
    ) throws(MySQLError) {
        let usesSocket = host == nil || host == "localhost"
        let target = usesSocket ? "\(user)@\(unixSocket ?? "default socket")" : "\(user)@\(host!):\(port)"
        guard libraryInitStatus == 0 else {
            throw MySQLError(
                kind: .client, code: 0, sqlState: "HY000",
                message: "mysql_library_init failed with status \(libraryInitStatus)", context: target)
        }
        guard let mysql = mysql_init(nil) else {
            throw MySQLError(
                kind: .client, code: 2008, sqlState: "HY000", message: "mysql_init: out of memory",
                context: target)
        }
        // Options must be set before mysql_real_connect. mysql_options is non-variadic (unlike
        // mysql_optionsv), so it is callable from Swift.
        var timeout = UInt32(clamping: connectTimeout)
        _ = mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout)
        if let readTimeout {
            var value = UInt32(clamping: readTimeout)
            _ = mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &value)
        }
        if let writeTimeout {
            var value = UInt32(clamping: writeTimeout)
            _ = mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &value)
        }
        _ = mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4")

        let connected = mysql_real_connect(
            mysql, host, user, password, database, UInt32(clamping: port), unixSocket, 0)
        if connected == nil {
            let error = Self.error(from: mysql, kind: .connection, context: target)
            mysql_close(mysql)
            throw error
        }
        self.handle = mysql
        self.target = target
    }

    deinit {
        if !closed { mysql_close(handle) }
    }

    /// Closes the connection. Safe to call any number of times; later calls do nothing.
    public func close() {
        guard !closed else { return }
        closed = true
        mysql_close(handle)
    }

    public var isOpen: Bool { !closed }

    /// Runs a statement, discards any rows it produced, and returns the affected-row count.
    ///
    /// All pending result sets are consumed (a `CALL` can produce several), because
    /// Connector/C refuses the next command with "Commands out of sync" otherwise.
    @discardableResult
    public func execute(_ sql: String) throws(MySQLError) -> UInt64 {
        try send(sql)
        var affected: UInt64 = 0
        var first = true
        repeat {
            if !first {
                let status = mysql_next_result(handle)
                if status > 0 { throw error(context: sql) }
                if status < 0 { break }
            }
            if let result = mysql_store_result(handle) {
                mysql_free_result(result)
            } else if mysql_field_count(handle) != 0 {
                throw error(context: sql)
            }
            if first { affected = mysql_affected_rows(handle) }
            first = false
        } while mysql_more_results(handle) != 0
        return affected
    }

    /// Runs a statement and returns its (first) result set, fully buffered.
    ///
    /// A statement that produces no result set (an INSERT, say) yields an empty result with
    /// zero columns and its affected-row count. Further result sets are consumed and dropped so
    /// the connection stays usable.
    public func query(_ sql: String) throws(MySQLError) -> MySQLResult {
        try send(sql)
        var output: MySQLResult
        if let result = mysql_store_result(handle) {
            output = Self.copy(result)
            mysql_free_result(result)
            output.affectedRows = mysql_affected_rows(handle)
        } else if mysql_field_count(handle) != 0 {
            throw error(context: sql)
        } else {
            output = MySQLResult(columns: [], rawRows: [], affectedRows: mysql_affected_rows(handle))
        }
        while mysql_more_results(handle) != 0 {
            let status = mysql_next_result(handle)
            if status > 0 { throw error(context: sql) }
            if status < 0 { break }
            if let extra = mysql_store_result(handle) { mysql_free_result(extra) }
        }
        return output
    }

    /// Escapes text for use inside a quoted SQL string literal (`'…'`), according to the
    /// connection's character set and SQL mode. The quotes themselves are not added.
    public func escape(_ text: String) throws(MySQLError) -> String {
        try ensureOpen(nil)
        let source = Array(text.utf8)
        let length = source.count
        var buffer = [CChar](repeating: 0, count: length * 2 + 1)
        let written = source.withUnsafeBufferPointer { src in
            src.withMemoryRebound(to: CChar.self) { from in
                mysql_real_escape_string(handle, &buffer, from.baseAddress, UInt(length))
            }
        }
        if written == UInt.max {
            throw MySQLError(
                kind: .query, code: 0, sqlState: "HY000",
                message: "mysql_real_escape_string cannot escape this text in the current SQL mode")
        }
        return String(decoding: buffer[0..<Int(written)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A hexadecimal literal (`X'00ff'`) for binary data, which needs no escaping at all and
    /// is immune to character-set conversion.
    public static func hexLiteral(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = Array("X'".utf8)
        out.reserveCapacity(bytes.count * 2 + 3)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        out.append(UInt8(ascii: "'"))
        return String(decoding: out, as: UTF8.self)
    }

    /// The server version as an integer, e.g. 101119 for 10.11.19; 0 when closed.
    public var serverVersion: Int { closed ? 0 : Int(mysql_get_server_version(handle)) }

    /// The full server version string, e.g. `10.11.19-MariaDB-0+deb12u1-log`.
    public var serverInfo: String {
        guard !closed, let info = mysql_get_server_info(handle) else { return "" }
        return String(cString: info)
    }

    /// The server-side connection id (for `KILL` in failure tests); 0 when closed.
    public var connectionID: UInt { closed ? 0 : UInt(mysql_thread_id(handle)) }

    /// The socket descriptor, for polling; -1 when closed.
    public var socket: Int32 { closed ? -1 : Int32(mysql_get_socket(handle)) }

    /// Whether the next read returns without waiting for the server: bytes are in
    /// Connector/C's read-ahead cache or readable on the socket. Lets a caller that reads
    /// many small packets wait for several at once instead of waking for each.
    public var hasPendingInput: Bool {
        guard !closed else { return false }
        if tandem_mysql_read_ahead_bytes(handle) > 0 { return true }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) > 0
    }

    /// The AUTO_INCREMENT value generated by the last INSERT on this connection.
    public var lastInsertID: UInt64 { closed ? 0 : mysql_insert_id(handle) }

    /// Checks that the server is still reachable.
    public func ping() throws(MySQLError) {
        try ensureOpen(nil)
        if mysql_ping(handle) != 0 { throw error(context: "ping") }
    }

    // MARK: - Internals

    private func send(_ sql: String) throws(MySQLError) {
        try ensureOpen(sql)
        var text = sql
        let status = text.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { chars in
                mysql_real_query(handle, chars.baseAddress, UInt(chars.count))
            }
        }
        if status != 0 { throw error(context: sql) }
    }

    private func ensureOpen(_ sql: String?) throws(MySQLError) {
        if closed {
            throw MySQLError(
                kind: .closed, code: 0, sqlState: "HY000", message: "the connection was closed by close()",
                context: sql)
        }
    }

    private func error(context: String?) -> MySQLError {
        Self.error(from: handle, kind: .query, context: context)
    }

    /// Error codes meaning the session is gone and the handle must be replaced:
    /// CR_SERVER_GONE_ERROR (2006), CR_SERVER_LOST (2013), CR_SERVER_LOST_EXTENDED (2055), and
    /// the server's ER_CONNECTION_KILLED (1927), sent when the session was KILLed.
    private static let lostConnectionCodes: Set<UInt32> = [1927, 2006, 2013, 2055]

    private static func error(
        from mysql: UnsafeMutablePointer<MYSQL>, kind: MySQLError.Kind, context: String?
    ) -> MySQLError {
        let code = mysql_errno(mysql)
        let state = mysql_sqlstate(mysql).map { String(cString: $0) } ?? "HY000"
        var message = mysql_error(mysql).map { String(cString: $0) } ?? ""
        message = message.trimmingWhitespace()
        if message.isEmpty { message = "unknown error" }
        let resolvedKind = kind == .query && lostConnectionCodes.contains(code) ? .connectionLost : kind
        return MySQLError(kind: resolvedKind, code: code, sqlState: state, message: message, context: context)
    }

    private static func copy(_ result: UnsafeMutablePointer<MYSQL_RES>) -> MySQLResult {
        let fieldCount = Int(mysql_num_fields(result))
        var columns: [MySQLColumn] = []
        columns.reserveCapacity(fieldCount)
        if let fields = mysql_fetch_fields(result) {
            for index in 0..<fieldCount {
                let field = fields[index]
                columns.append(
                    MySQLColumn(
                        name: text(field.name, field.name_length),
                        originalName: text(field.org_name, field.org_name_length),
                        table: text(field.table, field.table_length),
                        originalTable: text(field.org_table, field.org_table_length),
                        database: text(field.db, field.db_length),
                        typeCode: field.type.rawValue,
                        charsetNumber: field.charsetnr,
                        flags: field.flags))
            }
        }
        var rows: [[[UInt8]?]] = []
        rows.reserveCapacity(Int(mysql_num_rows(result)))
        while let row = mysql_fetch_row(result) {
            guard let lengths = mysql_fetch_lengths(result) else { break }
            var values: [[UInt8]?] = []
            values.reserveCapacity(fieldCount)
            for index in 0..<fieldCount {
                if let field = row[index] {
                    values.append(Array(UnsafeRawBufferPointer(start: field, count: Int(lengths[index]))))
                } else {
                    values.append(nil)
                }
            }
            rows.append(values)
        }
        return MySQLResult(columns: columns, rawRows: rows, affectedRows: 0)
    }

    private static func text(_ pointer: UnsafeMutablePointer<CChar>?, _ length: UInt32) -> String {
        guard let pointer else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: Int(length)), as: UTF8.self)
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var view = Substring(self)
        while let last = view.last, last.isWhitespace { view.removeLast() }
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        return String(view)
    }
}
