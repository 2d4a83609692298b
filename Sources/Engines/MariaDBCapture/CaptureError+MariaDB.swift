import CaptureKit
import MySQLClient
import TandemCore

extension CaptureError {
    /// A capture error of the MariaDB capture.
    init(_ kind: Kind, _ description: String, hint: String) {
        self.init(.mariadb, kind, description, hint: hint)
    }

    /// A client error, classified: after a lost session retrying may help; a statement the
    /// server refused (privileges, syntax) needs the operator.
    static func database(_ error: MySQLError, doing what: String) -> CaptureError {
        let lost =
            error.kind == .connection || error.kind == .connectionLost || error.kind == .closed
            || (2000..<3000).contains(error.code)
        return CaptureError(
            lost ? .connection : .sourceSetup, "\(what): \(error.description)",
            hint: lost
                ? "Check that the primary is up and [database] host/port/user/password are right; capture retries."
                : "Check the capture user's privileges (SELECT, REPLICATION SLAVE, BINLOG MONITOR, and CREATE/INSERT on the tandem schema)."
        )
    }
}
