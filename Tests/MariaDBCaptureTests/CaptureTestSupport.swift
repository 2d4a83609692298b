import CaptureKit
import Foundation
import Logging
import MariaDBCapture
import MySQLClient
import TandemCodec
import TandemCore
import TandemTestSupport
import Testing

/// Shared pieces of the capture tests: settings for a test server, collecting batches,
/// reading the state file, waiting for conditions.
enum Capture {
    static let stream = StreamID("pair-dc1")!
    /// The replica id the capture announces; test servers draw theirs from 1000…999999.
    static let replicaID: UInt32 = 42
    static let applierDomain: UInt32 = 9

    static func settings(
        _ server: MariaDBServer, state: String, maximumBytes: Int = 1 << 20,
        heartbeatNanoseconds: UInt64 = 0,
        filter: (@Sendable (String, String) -> Bool)? = nil
    ) -> MariaDBCaptureSettings {
        MariaDBCaptureSettings(
            host: server.host, port: server.port, user: server.user, password: server.password,
            serverID: replicaID, stream: stream, stateDirectory: state,
            batching: TransactionBatcher.Limits(maximumBytes: maximumBytes, maximumDelayNanoseconds: 5_000_000),
            heartbeatIntervalNanoseconds: heartbeatNanoseconds, applierDomainID: applierDomain, tableFilter: filter)
    }

    static func source(
        _ server: MariaDBServer, state: String, maximumBytes: Int = 1 << 20,
        heartbeatNanoseconds: UInt64 = 0,
        filter: (@Sendable (String, String) -> Bool)? = nil
    ) -> MariaDBSource {
        MariaDBSource(
            settings: settings(
                server, state: state, maximumBytes: maximumBytes,
                heartbeatNanoseconds: heartbeatNanoseconds, filter: filter),
            logger: Logger(label: "capture-test"))
    }

    static func temporaryDirectory() throws -> String { try makeTemporaryDirectory(prefix: "tandem-mcapture") }

    /// Collects batches until `enough` says so (or 60 s pass, which fails the test).
    static func collect(_ source: MariaDBSource, until enough: ([Batch]) -> Bool) throws -> ([SourceBatch], [Batch]) {
        try collectBatches(from: source, seconds: 60, until: enough)
    }

    static func rowCount(_ batches: [Batch]) -> Int { batches.reduce(0) { $0 + $1.rowCount } }

    /// The first column of every inserted or updated row, in order.
    static func ids(_ batches: [Batch]) -> [Value] {
        batches.flatMap(\.transactions).flatMap(\.changes).compactMap { $0.new?.first }
    }

    static func contains(_ batches: [Batch], id: Int64) -> Bool { ids(batches).contains(.int(id)) }

    static func waitFor(_ what: String, seconds: Double = 30, _ condition: () throws -> Bool) throws {
        try TandemTestSupport.waitFor(what, seconds: seconds, condition)
    }

    /// Waits for the source to fail and returns the error `next()` throws.
    static func failure(of source: MariaDBSource, seconds: Double = 30) throws -> CaptureError? {
        var shipped: [SourceBatch] = []
        return try failure(of: source, seconds: seconds, shipped: &shipped)
    }

    /// `failure(of:)`, keeping the batches `next()` returned before it threw (a test that
    /// means "nothing more is shipped" asserts that `shipped` stays empty).
    static func failure(of source: MariaDBSource, seconds: Double = 30, shipped: inout [SourceBatch]) throws
        -> CaptureError?
    {
        var failure: CaptureError?
        var batches: [SourceBatch] = []
        try waitFor("capture to fail", seconds: seconds) {
            do {
                if let batch = try source.next() { batches.append(batch) }
            } catch let error as CaptureError { failure = error }
            return failure != nil
        }
        shipped += batches
        return failure
    }

    static func stateFile(_ directory: String) -> String { "\(directory)/capture-mariadb-\(stream.rawValue).state" }

    /// The `key=` line of the state file, nil without a file.
    static func stateValue(_ directory: String, _ key: String) -> String? {
        guard let text = try? String(contentsOfFile: stateFile(directory), encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + "=") {
            return String(line.dropFirst(key.count + 1))
        }
        return nil
    }

    static func statePosition(_ directory: String) throws -> MariaDBGTIDList? {
        try stateValue(directory, "position").map { try MariaDBGTIDList(parsing: $0) }
    }

    /// Replaces the state file's `key=` line, as an operator following a runbook would.
    static func editState(_ directory: String, _ key: String, to value: String) throws {
        let text = try String(contentsOfFile: stateFile(directory), encoding: .utf8)
        let edited = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix(key + "=") ? "\(key)=\(value)" : String($0) }.joined(separator: "\n")
        try edited.write(toFile: stateFile(directory), atomically: true, encoding: .utf8)
    }

    static func binlogPosition(_ connection: MySQLConnection) throws -> MariaDBGTIDList {
        try MariaDBGTIDList(parsing: connection.query("SELECT @@gtid_binlog_pos").value(row: 0, column: 0) ?? "")
    }

    /// Starts `source` at `sequence` and waits until it recorded its start position (so
    /// that what the test writes next is after it).
    static func start(_ source: MariaDBSource, at sequence: UInt64 = 1, state: String) throws {
        try source.restart(at: sequence)
        try waitFor("the capture to record its start position") { stateValue(state, "position") != nil }
    }
}
