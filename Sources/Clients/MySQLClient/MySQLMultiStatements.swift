import CMariaDB

#if canImport(Glibc)
    import Glibc
#endif

/// What one statement of a multi-statement round reported.
public struct MySQLStatementOutcome: Sendable, Equatable {
    /// `mysql_affected_rows` after the statement: rows inserted, deleted or *changed* (an
    /// UPDATE that writes the values a row already holds does not count it; see `matchedRows`),
    /// or the number of rows of a result set.
    public var affectedRows: UInt64
    /// `mysql_info`, e.g. `Rows matched: 1  Changed: 0  Warnings: 0` after an UPDATE or
    /// `Records: 3  Duplicates: 0  Warnings: 0` after a multi-row INSERT; nil when the server
    /// sent none.
    public var info: String?
    /// `mysql_warning_count` after the statement.
    public var warningCount: UInt32
    /// The rows, when the statement produced a result set (a SELECT).
    public var result: MySQLResult?

    public init(affectedRows: UInt64, info: String? = nil, warningCount: UInt32 = 0, result: MySQLResult? = nil) {
        self.affectedRows = affectedRows
        self.info = info
        self.warningCount = warningCount
        self.result = result
    }

    /// The rows an UPDATE *found* (whether or not it changed them), read from `info`.
    ///
    /// The server writes this text in the session's `lc_messages` language; it is only
    /// readable when that is English (`SET SESSION lc_messages = 'en_US'`). nil when the info
    /// has no `Rows matched:` part (not an UPDATE, or another language).
    public var matchedRows: UInt64? {
        guard let info else { return nil }
        let label = Array("Rows matched:".utf8)
        let bytes = Array(info.utf8)
        guard bytes.count > label.count, Array(bytes[0..<label.count]) == label else { return nil }
        var index = label.count
        while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
        var value: UInt64 = 0
        var digits = 0
        while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(UInt64(bytes[index] - 48))
            if overflow1 || overflow2 { return nil }
            value = sum
            digits += 1
            index += 1
        }
        return digits > 0 ? value : nil
    }
}

/// The outcome of a multi-statement round: the statements that ran, in order, and the error
/// of the one that stopped the round.
///
/// The server runs the statements of one `COM_QUERY` in order and stops at the first error, so
/// when `failure` is set it belongs to statement number `outcomes.count` (zero-based), and no
/// statement after it ran.
public struct MySQLMultiOutcome: Sendable {
    public var outcomes: [MySQLStatementOutcome]
    public var failure: MySQLError?

    public init(outcomes: [MySQLStatementOutcome], failure: MySQLError?) {
        self.outcomes = outcomes
        self.failure = failure
    }
}

extension MySQLConnection {
    /// Lets one `COM_QUERY` carry several statements separated by `;`
    /// (`mysql_set_server_option(MYSQL_OPTION_MULTI_STATEMENTS_ON)`), for the rest of the session.
    ///
    /// Only safe for SQL whose every value is a literal produced by escaping or hex-encoding;
    /// interpolated unescaped input would let one statement become several.
    public func setMultiStatements(_ enabled: Bool) throws(MySQLError) {
        try requireOpen("set multi-statements")
        let option = enabled ? MYSQL_OPTION_MULTI_STATEMENTS_ON : MYSQL_OPTION_MULTI_STATEMENTS_OFF
        if mysql_set_server_option(handle, option) != 0 {
            throw multiStatementError(context: "set multi-statements")
        }
    }

    /// Sends `sql` (one or more statements separated by `;`) in one round trip and reads every
    /// statement's outcome.
    ///
    /// A statement the server rejects does not throw: it ends the round and is reported in
    /// `failure`, so the caller knows exactly which statement failed and what ran before it.
    /// Only a broken or closed connection, or a client-side failure that leaves the result
    /// stream unreadable, throws. Result sets are copied and freed before returning, and every
    /// pending result is consumed, so the connection is idle afterwards.
    ///
    /// Requires `setMultiStatements(true)` for more than one statement.
    public func executeMultiple(_ sql: [UInt8], context: String? = nil) throws(MySQLError) -> MySQLMultiOutcome {
        try sendMultiple(sql, context: context)
        return try readMultiple(context: context)
    }

    /// The first half of `executeMultiple`: sends `sql` and returns without waiting for the
    /// server, so the caller can prepare its next round while this one executes. Exactly one
    /// `readMultiple` must follow before anything else uses the connection (the MySQL protocol
    /// has one command in flight at a time; escaping values is fine, it does no I/O).
    public func sendMultiple(_ sql: [UInt8], context: String? = nil) throws(MySQLError) {
        try requireOpen(context)
        let status = sql.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                mysql_send_query(handle, chars.baseAddress, UInt(chars.count))
            }
        }
        if status != 0 { throw multiStatementError(context: context, forceLost: true) }
    }

    /// The second half of `executeMultiple`: reads every outcome of the round `sendMultiple`
    /// sent (see `executeMultiple` for what throws and what is reported).
    ///
    /// - Parameter statements: how many statements the round holds, if known. Then, while
    ///   many outcomes are still to come and none has arrived, the read waits briefly so
    ///   that several arrive together: the server reports each statement on its own, and
    ///   waking for every report cost more CPU than building the statements. The wait is
    ///   bounded by what the remaining statements take at the least, so the server is
    ///   never left idle for long at the end of the round. After `gatherLimitMicroseconds`
    ///   without an outcome (a lock wait, a long statement, a vanished server) the read
    ///   blocks as usual, so the connection's read timeout still applies.
    public func readMultiple(context: String? = nil, statements: Int? = nil) throws(MySQLError) -> MySQLMultiOutcome {
        try requireOpen(context)
        func gather(received: Int) {
            guard let statements else { return }
            // About 10 µs per statement still to report is a floor on the server's time.
            let remaining = statements - received
            guard remaining >= Self.gatherMinimumStatements else { return }
            let step = min(remaining * 10, Self.gatherMaximumMicroseconds)
            var waited = 0
            while waited < Self.gatherLimitMicroseconds, !hasPendingInput {
                usleep(UInt32(step))
                waited += step
            }
        }
        gather(received: 0)
        let status = mysql_read_query_result(handle)
        var outcomes: [MySQLStatementOutcome] = []
        if status != 0 {
            let error = multiStatementError(context: context)
            if error.kind != .query { throw error }
            return MySQLMultiOutcome(outcomes: [], failure: error)
        }
        while true {
            if let result = mysql_store_result(handle) {
                let copied = Self.copyRows(result)
                mysql_free_result(result)
                outcomes.append(
                    MySQLStatementOutcome(
                        affectedRows: UInt64(copied.rowCount), info: nil, warningCount: mysql_warning_count(handle),
                        result: copied))
            } else if mysql_field_count(handle) != 0 {
                // A result set was announced but could not be read.
                throw multiStatementError(context: context, forceLost: true)
            } else {
                let info = mysql_info(handle).map { String(cString: $0) }
                outcomes.append(
                    MySQLStatementOutcome(
                        affectedRows: mysql_affected_rows(handle), info: info, warningCount: mysql_warning_count(handle)
                    ))
            }
            if mysql_more_results(handle) == 0 { break }
            gather(received: outcomes.count)
            let next = mysql_next_result(handle)
            if next < 0 { break }
            if next > 0 {
                let error = multiStatementError(context: context)
                if error.kind != .query { throw error }
                return MySQLMultiOutcome(outcomes: outcomes, failure: error)
            }
        }
        return MySQLMultiOutcome(outcomes: outcomes, failure: nil)
    }

    /// Below this many outstanding statements a read blocks as usual.
    static let gatherMinimumStatements = 8
    /// The longest single wait for outcomes to gather.
    static let gatherMaximumMicroseconds = 2_000
    /// The longest time waited for one outcome before reading blocks (with its timeout).
    static let gatherLimitMicroseconds = 50_000

    /// Appends `text` escaped for a single-quoted string literal (`mysql_real_escape_string`,
    /// for the connection's character set and SQL mode) to `buffer`; the quotes are not added.
    /// Unlike `escape(_:)` it writes straight into the caller's buffer, without a temporary
    /// array and string per value.
    public func appendEscaped(_ text: String, to buffer: inout [UInt8]) throws(MySQLError) {
        try requireOpen(nil)
        var source = text
        let start = buffer.count
        let written: UInt = source.withUTF8 { utf8 -> UInt in
            let room = utf8.count * 2 + 1
            buffer.append(contentsOf: repeatElement(0, count: room))
            return buffer.withUnsafeMutableBufferPointer { out -> UInt in
                let target = UnsafeMutableRawPointer(out.baseAddress! + start).assumingMemoryBound(to: CChar.self)
                return utf8.withMemoryRebound(to: CChar.self) { from in
                    mysql_real_escape_string(handle, target, from.baseAddress, UInt(from.count))
                }
            }
        }
        if written == UInt.max {
            buffer.removeSubrange(start...)
            throw MySQLError(
                kind: .query, code: 0, sqlState: "HY000",
                message: "mysql_real_escape_string cannot escape this text in the current SQL mode")
        }
        buffer.removeSubrange((start + Int(written))...)
    }

    // MARK: Internals

    private func requireOpen(_ context: String?) throws(MySQLError) {
        if !isOpen {
            throw MySQLError(
                kind: .closed, code: 0, sqlState: "HY000", message: "the connection was closed by close()",
                context: context)
        }
    }

    /// The current error of the handle. Server-side "the session is gone" codes (1927 killed,
    /// 1053 shutdown in progress) and every client-side error after which the result stream
    /// cannot be trusted (2000–2999) are `.connectionLost`: the handle must be replaced.
    private func multiStatementError(context: String?, forceLost: Bool = false) -> MySQLError {
        let code = mysql_errno(handle)
        let state = mysql_sqlstate(handle).map { String(cString: $0) } ?? "HY000"
        var message = mysql_error(handle).map { String(cString: $0) } ?? ""
        while let last = message.last, last.isWhitespace { message.removeLast() }
        if message.isEmpty { message = "unknown error" }
        let lost = forceLost || code == 1927 || code == 1053 || (2000...2999).contains(code)
        return MySQLError(
            kind: lost ? .connectionLost : .query, code: code, sqlState: state, message: message,
            context: context.map { String($0.prefix(300)) })
    }

    private static func copyRows(_ result: UnsafeMutablePointer<MYSQL_RES>) -> MySQLResult {
        let fieldCount = Int(mysql_num_fields(result))
        var columns: [MySQLColumn] = []
        if let fields = mysql_fetch_fields(result) {
            for index in 0..<fieldCount {
                let field = fields[index]
                let name =
                    field.name.map {
                        String(
                            decoding: UnsafeRawBufferPointer(start: $0, count: Int(field.name_length)), as: UTF8.self)
                    } ?? ""
                columns.append(MySQLColumn(name: name, typeCode: field.type.rawValue, charsetNumber: field.charsetnr))
            }
        }
        var rows: [[[UInt8]?]] = []
        while let row = mysql_fetch_row(result) {
            guard let lengths = mysql_fetch_lengths(result) else { break }
            var values: [[UInt8]?] = []
            values.reserveCapacity(fieldCount)
            for index in 0..<fieldCount {
                values.append(row[index].map { Array(UnsafeRawBufferPointer(start: $0, count: Int(lengths[index]))) })
            }
            rows.append(values)
        }
        return MySQLResult(columns: columns, rawRows: rows, affectedRows: UInt64(rows.count))
    }
}
