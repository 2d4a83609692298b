import CLibPQ
import CaptureKit
import Foundation
import PGClient
import PostgreSQLEngine
import TandemCore

#if canImport(Glibc)
    import Glibc
#endif

/// A `replication=database` connection in COPY BOTH mode: the I/O edge of capture.
///
/// Confined to the capture thread. Reads never block longer than the poll timeout, so
/// the thread can still send status updates while it holds back (memory bound) or
/// while the server is quiet.
final class ReplicationStream {
    let connection: PGConnection
    private(set) var identity: CaptureState

    /// pgoutput sends values in the walsender's text output, which depends on session
    /// settings: fixed here so that values read back the same at the DR site whatever
    /// the primary's defaults (ISO dates, UTC offsets, hex bytea, round-trip floats).
    static let outputSettings =
        "-c datestyle=ISO -c intervalstyle=postgres -c timezone=UTC -c bytea_output=hex -c extra_float_digits=3"

    init(conninfo: String) throws(CaptureError) {
        do {
            connection = try PGConnection(
                conninfo: conninfo,
                extraKeywords: [
                    ("replication", "database"), ("options", Self.outputSettings),
                ])
        } catch {
            throw CaptureError.database(error, doing: "opening the replication connection")
        }
        let result: PGResult
        do { result = try connection.exec("IDENTIFY_SYSTEM") } catch {
            throw CaptureError.database(error, doing: "IDENTIFY_SYSTEM")
        }
        guard result.rowCount == 1, let system = result.value(row: 0, column: 0),
            let timeline = result.value(row: 0, column: 1).flatMap(Int.init)
        else {
            throw CaptureError(
                .protocolViolation, "IDENTIFY_SYSTEM returned an unexpected result",
                hint: "Check that the server is PostgreSQL 15 or later.")
        }
        identity = CaptureState(systemIdentifier: system, timeline: timeline)
    }

    /// `START_REPLICATION` from the slot's confirmed position (0/0 means "where the slot is").
    func start(slot: String, publication: String) throws(CaptureError) {
        let slotName: String
        let pubLiteral: String
        do {
            slotName = try connection.escapeIdentifier(slot)
            pubLiteral = try connection.escapeLiteral(try connection.escapeIdentifier(publication))
        } catch {
            throw CaptureError.database(error, doing: "quoting slot and publication names")
        }
        let command =
            "START_REPLICATION SLOT \(slotName) LOGICAL 0/0 (proto_version '2', publication_names \(pubLiteral), streaming 'on', messages 'true')"
        let result: PGResult
        do { result = try connection.exec(command) } catch {
            if error.sqlState == "42704" || error.message.contains("does not exist") {
                throw CaptureError(
                    .reseedRequired, "replication slot \(slot) disappeared: \(error.message)",
                    hint: "Re-seed the DR site; the slot is recreated on the next start.")
            }
            if error.sqlState == "55000", error.message.contains("invalidated") || error.message.contains("removed") {
                throw CaptureError(
                    .reseedRequired, "replication slot \(slot) cannot be used: \(error.message)",
                    hint: "Re-seed the DR site and recreate the slot.")
            }
            throw CaptureError.database(error, doing: "START_REPLICATION")
        }
        guard result.status == .copyBoth else {
            throw CaptureError(
                .protocolViolation, "START_REPLICATION did not switch to COPY BOTH (\(result.status))",
                hint: "Check the primary's log.")
        }
    }

    /// Whether a read would find input at once: the last read stopped at its limit with messages
    /// left in libpq's buffer, or the socket has data.
    var hasPendingInput: Bool {
        if leftOver { return true }
        var descriptor = pollfd(fd: connection.socket, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) > 0
    }

    private var leftOver = false

    /// Waits up to `timeoutMilliseconds` for data, then returns every message already
    /// received (possibly none). `limit` bounds how many are taken per call.
    func read(timeoutMilliseconds: Int32, limit: Int = 4096) throws(CaptureError) -> [ReplicationMessage] {
        var messages: [ReplicationMessage] = []
        if let first = try take() {
            messages.append(first)
        } else {
            var descriptor = pollfd(fd: connection.socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, timeoutMilliseconds)
            if ready < 0, errno != EINTR {
                throw CaptureError(
                    .connection, "poll on the replication connection failed: errno \(errno)", hint: "Capture retries.")
            }
            if ready > 0, PQconsumeInput(connection.handle) == 0 {
                throw lost("reading from the replication connection")
            }
        }
        while messages.count < limit, let message = try take() { messages.append(message) }
        leftOver = messages.count >= limit
        return messages
    }

    /// The bytes of one message libpq has already buffered, or nil.
    private func take() throws(CaptureError) -> ReplicationMessage? {
        var buffer: UnsafeMutablePointer<CChar>?
        let length = PQgetCopyData(connection.handle, &buffer, 1)
        if length > 0, let buffer {
            defer { PQfreemem(buffer) }
            let bytes = Array(UnsafeRawBufferPointer(start: buffer, count: Int(length)))
            do { return try ReplicationMessage.parse(bytes) } catch {
                throw CaptureError(.protocolViolation, "\(error.description)", hint: "Capture restarts from the slot.")
            }
        }
        if length == 0 { return nil }
        if length == -1 {
            // The server ended COPY: fetch the final result to say why.
            var reason = "the server ended the replication stream"
            while let result = PQgetResult(connection.handle) {
                if let message = PQresultErrorMessage(result), message.pointee != 0 {
                    reason = String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
                }
                PQclear(result)
            }
            throw CaptureError(.connection, reason, hint: "Capture reconnects and resumes from the slot.")
        }
        throw lost("reading from the replication connection")
    }

    func send(_ bytes: [UInt8]) throws(CaptureError) {
        let sent = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) {
                PQputCopyData(connection.handle, $0.baseAddress, Int32($0.count))
            }
        }
        guard sent == 1, PQflush(connection.handle) >= 0 else { throw lost("sending a status update") }
    }

    func close() { connection.close() }

    private func lost(_ doing: String) -> CaptureError {
        let message = String(cString: PQerrorMessage(connection.handle)).trimmingCharacters(in: .whitespacesAndNewlines)
        return CaptureError(
            .connection, "\(doing): \(message.isEmpty ? "connection lost" : message)",
            hint: "Capture reconnects and resumes from the slot.")
    }
}
