import CMariaDB
import CaptureKit
import Foundation
import MariaDBEngine
import MySQLClient
import TandemCore

#if canImport(Glibc)
    import Glibc
#endif

/// The binlog dump connection (`COM_BINLOG_DUMP` in GTID mode) through Connector/C's
/// replication API: the I/O edge of capture. Confined to the capture thread, except that
/// another thread may `shutdown(2)` its socket to end a blocking read (see `CaptureThread`).
///
/// Only the transport of Connector/C is used: each fetched event's raw bytes go to Tandem's
/// own parser and decoder (`BinlogDecoder`). Connector/C 3.3's own interpretation of the
/// events is not relied on (its row decoding and its ROTATE parsing after a
/// FORMAT_DESCRIPTION are wrong), and `MARIADB_RPL_IGNORE_HEARTBEAT` does not fit its 16-bit
/// flags field, so heartbeats arrive and are passed on like any event.
///
/// Memory: `mariadb_rpl_fetch` reuses the one event structure it is given, freeing what the
/// previous fetch allocated into it; the bytes handed out are copied before the next fetch.
/// When a fetch fails Connector/C may already have freed the event, so it is then dropped
/// without being freed again (at most one event leaks per broken connection).
final class BinlogStream {
    let connection: MySQLConnection
    /// Where the dump started (for messages).
    let start: MariaDBGTIDList
    private var rpl: UnsafeMutablePointer<MARIADB_RPL>?
    private var event: UnsafeMutablePointer<MARIADB_RPL_EVENT>?

    /// Error code of `ER_MASTER_FATAL_ERROR_READING_BINLOG`: the primary cannot serve the
    /// requested position (purged binlogs, unknown GTID, diverged history).
    static let fatalReadingBinlog: UInt32 = 1236

    /// Opens the dump from `start` (the GTID position after the last transaction the
    /// capture wants no more of).
    ///
    /// - Parameters:
    ///   - heartbeatNanoseconds: the primary sends a HEARTBEAT event after this much
    ///     silence, so an idle stream still wakes the capture thread.
    ///   - register: called with the socket before anything can block on it; returns
    ///     false when the capture is stopping (the stream is then closed and not opened).
    init(
        settings: MariaDBCaptureSettings, start: MariaDBGTIDList, heartbeatNanoseconds: UInt64,
        readTimeoutSeconds: Int, register: (Int32) -> Bool
    ) throws(CaptureError) {
        self.start = start
        do {
            connection = try MySQLConnection(
                settings.primary, connectTimeout: 5, readTimeout: readTimeoutSeconds, writeTimeout: 30)
        } catch {
            throw CaptureError.database(error, doing: "opening the binlog dump connection")
        }
        guard register(connection.socket) else {
            connection.close()
            throw CaptureError(.connection, "capture is stopping", hint: "None needed.")
        }
        // The dump protocol is configured through user variables of the session:
        // - capability 4 (GTID): GTID events, and the start given as a GTID position;
        // - the checksum: events keep the CRC-32 the binlog has, and the decoder checks it;
        // - strict mode: a start position the primary's binlog does not hold exactly
        //   (a gap, or GTIDs the primary never had) is refused with error 1236 instead of
        //   being streamed around;
        // - the heartbeat period, in nanoseconds.
        let statements = [
            "SET @mariadb_slave_capability = 4",
            "SET @master_binlog_checksum = @@GLOBAL.binlog_checksum",
            "SET @slave_connect_state = '\(start.description)'",
            "SET @slave_gtid_strict_mode = 1",
            "SET @master_heartbeat_period = \(heartbeatNanoseconds)",
        ]
        for sql in statements {
            do { try connection.execute(sql) } catch {
                connection.close()
                throw CaptureError.database(error, doing: "preparing the binlog dump")
            }
        }
        guard let rpl = mariadb_rpl_init_ex(connection.handle, UInt32(MARIADB_RPL_VERSION)) else {
            let error = Self.failure(connection.handle, rpl: nil, doing: "mariadb_rpl_init_ex", start: start)
            connection.close()
            throw error
        }
        // mariadb_rpl_optionsv is variadic (not callable from Swift): the fields are set
        // directly. No file name: the GTID position in @slave_connect_state decides where
        // the primary starts. Flags 0: a blocking dump, no ANNOTATE_ROWS events.
        rpl.pointee.server_id = settings.serverID
        rpl.pointee.flags = 0
        rpl.pointee.start_position = 4
        self.rpl = rpl
        if mariadb_rpl_open(rpl) != 0 {
            let error = Self.failure(connection.handle, rpl: rpl, doing: "starting the binlog dump", start: start)
            close()
            throw error
        }
    }

    deinit { close() }

    func close() {
        if let event { mariadb_free_rpl_event(event) }
        event = nil
        if let rpl { mariadb_rpl_close(rpl) }
        rpl = nil
        connection.close()
    }

    /// Whether `next()` would return without waiting for the primary: bytes are in
    /// Connector/C's read-ahead cache or readable on the socket.
    var hasPendingInput: Bool { connection.hasPendingInput }

    /// Blocks until the next event and returns its bytes (header, body, checksum), or
    /// throws once the connection ends, breaks or the primary refuses to go on.
    func next() throws(CaptureError) -> [UInt8] {
        guard let rpl else {
            throw CaptureError(.connection, "the binlog dump connection is closed", hint: "Capture reconnects.")
        }
        guard let fetched = mariadb_rpl_fetch(rpl, event) else {
            event = nil
            throw Self.failure(connection.handle, rpl: rpl, doing: "reading the binlog", start: start)
        }
        event = fetched
        guard let raw = fetched.pointee.raw_data else {
            throw CaptureError(
                .protocolViolation, "Connector/C returned an event without its bytes",
                hint: "Check the Connector/C version (3.3 or later is needed).")
        }
        let buffer = UnsafeBufferPointer(start: raw, count: Int(fetched.pointee.raw_data_size))
        return try Self.eventBytes(buffer)
    }

    /// The event inside a network packet: the packet starts with the OK byte 0x00, which
    /// Connector/C may or may not have stripped; the event's own size field (offset 9)
    /// says which.
    static func eventBytes(_ packet: UnsafeBufferPointer<UInt8>) throws(CaptureError) -> [UInt8] {
        func declaredSize(at offset: Int) -> Int? {
            guard packet.count >= offset + BinlogEventHeader.length else { return nil }
            let p = offset + 9
            return Int(packet[p]) | Int(packet[p + 1]) << 8 | Int(packet[p + 2]) << 16 | Int(packet[p + 3]) << 24
        }
        if packet.first == 0, declaredSize(at: 1) == packet.count - 1 { return Array(packet[1...]) }
        if declaredSize(at: 0) == packet.count { return Array(packet) }
        throw CaptureError(
            .protocolViolation,
            "a binlog packet of \(packet.count) bytes does not hold one event (first byte \(packet.first ?? 0))",
            hint: "Capture stops so nothing is skipped; report it with the primary's version.")
    }

    /// Turns the connection's error into a capture error. The server's own error (number
    /// and text) is in the `MYSQL` handle; Connector/C's replication layer only adds its
    /// own for packets it could not parse.
    static func failure(
        _ mysql: UnsafeMutablePointer<MYSQL>, rpl: UnsafeMutablePointer<MARIADB_RPL>?, doing what: String,
        start: MariaDBGTIDList
    ) -> CaptureError {
        var code = mysql_errno(mysql)
        var message = mysql_error(mysql).map { String(cString: $0) } ?? ""
        if code == 0, let rpl {
            code = mariadb_rpl_errno(rpl)
            message = mariadb_rpl_error(rpl).map { String(cString: $0) } ?? ""
        }
        message = message.trimmingCharacters(in: .whitespacesAndNewlines)
        switch code {
        case 0:
            return CaptureError(
                .connection, "\(what): the primary ended the binlog dump",
                hint: "Capture reconnects and resumes from the last acknowledged position.")
        case fatalReadingBinlog where message.contains("max_allowed_packet"):
            return CaptureError(
                .sourceSetup, "\(what): the primary refused (\(code)): \(message)",
                hint:
                    "Raise max_allowed_packet on the primary to at least the largest binlog event, then restart the agent."
            )
        case fatalReadingBinlog:
            return CaptureError(
                .reseedRequired, "the primary cannot stream from GTID position '\(start)' (\(code)): \(message)",
                hint:
                    "The binlogs the DR copy needs are gone or the primary's history differs: re-seed the DR site, then remove the capture state file."
            )
        case 1044, 1045, 1227, 1142, 1143:
            return CaptureError(
                .sourceSetup, "\(what): the primary refused (\(code)): \(message)",
                hint: "Grant the capture user REPLICATION SLAVE and BINLOG MONITOR, then restart the agent.")
        default:
            return CaptureError(
                .connection, "\(what) (\(code)): \(message.isEmpty ? "connection lost" : message)",
                hint: "Capture reconnects and resumes from the last acknowledged position.")
        }
    }
}
