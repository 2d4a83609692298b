import CaptureKit
import PGClient
import TandemCore

extension CaptureError {
    /// A capture error of the PostgreSQL capture.
    init(_ kind: Kind, _ description: String, hint: String) {
        self.init(.postgresql, kind, description, hint: hint)
    }

    /// A libpq error, classified: a lost connection is retried, anything else needs the operator.
    static func database(_ error: PGError, doing what: String) -> CaptureError {
        let kind: Kind = (error.kind == .connection || error.kind == .connectionLost) ? .connection : .sourceSetup
        return CaptureError(
            kind, "\(what): \(error.description)",
            hint: kind == .connection
                ? "Check that the primary is up and [database] host/port/user/password are right; capture retries."
                : "Check the replication user's privileges (REPLICATION, and ownership or CREATE on the database).")
    }
}
