import CaptureKit
import TandemCore
import TandemStorage

/// What the capture remembers across restarts, in `capture-mariadb-<stream>.state` in the
/// spool directory: which primary it streams from and how far the DR site has it durably.
///
/// MariaDB has no replication slot, so this file is the slot: `position` is the GTID
/// position up to which the applier reported batches durable, and capture resumes there.
///
/// Invariants:
/// - `position` only moves on `MariaDBSource.acknowledge` (the safety rule in `BatchSource`):
///   on the first start it is the primary's `@@gtid_binlog_pos` at that moment (rows written
///   before it reach the DR site only through a seed), after that only acknowledged
///   positions are written, never a position merely captured or sent.
/// - The file is a `DurableFile`: a crash leaves either the old or the new content, never a
///   mix, and a file that exists but cannot be read or parsed stops capture (`.stateDamaged`)
///   instead of passing for a first start.
/// - `serverUUID`/`serverID` identify the primary the position belongs to; a different
///   primary means the position says nothing about its binlog (re-seed).
struct CaptureState: Equatable, Sendable {
    var serverUUID: String
    var serverID: UInt32
    var position: MariaDBGTIDList

    static func path(directory: String, stream: StreamID) -> String {
        "\(directory)/capture-mariadb-\(stream.rawValue).state"
    }

    /// nil when there is no file (first start); throws when it exists but cannot be used.
    static func load(directory: String, stream: StreamID) throws(CaptureError) -> CaptureState? {
        try CaptureStateFile(engine: .mariadb, path: path(directory: directory, stream: stream)).read(
            expected: "server_uuid=, server_id= and position= lines",
            hint: "Restore it from a backup, or re-seed the DR site and remove the file."
        ) { record throws(StateRecord.Damage) in
            CaptureState(
                serverUUID: try record.require("server_uuid") { $0.isEmpty ? nil : $0 },
                serverID: try record.require("server_id") { UInt32($0) },
                position: try record.require("position") { try? MariaDBGTIDList(parsing: $0) })
        }
    }

    func save(directory: String, stream: StreamID) throws(CaptureError) {
        try CaptureStateFile(engine: .mariadb, path: Self.path(directory: directory, stream: stream)).write(
            StateRecord([
                ("server_uuid", serverUUID), ("server_id", String(serverID)), ("position", position.description),
            ]),
            comment: [
                "Tandem MariaDB capture: the primary and the GTID position the DR site holds durably.",
                "Written by the agent; edit only as a runbook says (e.g. to step over a DDL statement).",
            ])
    }
}
