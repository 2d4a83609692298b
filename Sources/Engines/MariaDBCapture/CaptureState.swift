import Foundation
import TandemCore

#if canImport(Glibc)
    import Glibc
#endif

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
/// - The file is replaced atomically (temporary file, fsync, rename, fsync of the
///   directory): a crash leaves either the old or the new content, never a mix.
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
    static func load(directory: String, stream: StreamID) throws(MariaDBCaptureError) -> CaptureState? {
        let file = path(directory: directory, stream: stream)
        guard FileManager.default.fileExists(atPath: file) else { return nil }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw MariaDBCaptureError(.sourceSetup, "cannot read \(file)", hint: "Check the permissions of [spool] directory.")
        }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { values[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        guard let uuid = values["server_uuid"], let id = values["server_id"].flatMap(UInt32.init),
              let positionText = values["position"], let position = try? MariaDBGTIDList(parsing: positionText)
        else {
            throw MariaDBCaptureError(.sourceSetup, "\(file) is damaged (expected server_uuid=, server_id= and position= lines)",
                                      hint: "Restore it from a backup, or re-seed the DR site and remove the file.")
        }
        return CaptureState(serverUUID: uuid, serverID: id, position: position)
    }

    func save(directory: String, stream: StreamID) throws(MariaDBCaptureError) {
        let target = Self.path(directory: directory, stream: stream)
        let text = """
            # Tandem MariaDB capture: the primary and the GTID position the DR site holds durably.
            # Written by the agent; edit only as a runbook says (e.g. to step over a DDL statement).
            server_uuid=\(serverUUID)
            server_id=\(serverID)
            position=\(position)

            """
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw MariaDBCaptureError(.sourceSetup, "cannot create \(directory): \(error)", hint: "Check [spool] directory and its permissions.")
        }
        let temporary = target + ".tmp"
        func failure(_ doing: String) -> MariaDBCaptureError {
            MariaDBCaptureError(.sourceSetup, "cannot \(doing) \(temporary): \(String(cString: strerror(errno)))",
                                hint: "Check [spool] directory, its permissions and free space.")
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw failure("create") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                close(fd)
                throw failure("write")
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            close(fd)
            throw failure("fsync")
        }
        close(fd)
        guard rename(temporary, target) == 0 else { throw failure("rename") }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }
}
