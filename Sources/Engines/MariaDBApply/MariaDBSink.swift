import ApplyKit
import Logging
import TandemCore

/// The applier's sink for a MariaDB DR server: the shared `SinkDriver` on a `MariaDBTarget`.
public typealias MariaDBSink = SinkDriver<MariaDBTarget>

extension SinkDriver where Session == MariaDBTarget {
    /// Connects, prepares the session, creates the checkpoint table if it is missing and reads
    /// the checkpoint. The parameters are `MariaDBTarget`'s.
    public convenience init(
        host: String? = "127.0.0.1", port: Int = 3306, user: String, password: String?, database: String? = nil,
        unixSocket: String? = nil, stream: StreamID, domainID: UInt32 = MariaDBTarget.defaultDomainID,
        foreignKeyChecks: Bool = true, allowTriggers: Bool = false, logger: Logger
    ) throws(ApplyError) {
        try self.init(
            session: MariaDBTarget(
                host: host, port: port, user: user, password: password, database: database, unixSocket: unixSocket,
                stream: stream, domainID: domainID, foreignKeyChecks: foreignKeyChecks, allowTriggers: allowTriggers,
                logger: logger),
            stream: stream, logger: logger)
    }

    /// See `MariaDBTarget.defaultDomainID`.
    public static var defaultDomainID: UInt32 { MariaDBTarget.defaultDomainID }

    /// The server-side id of the apply session (for `KILL` in tests and operator diagnostics);
    /// nil while disconnected.
    public var connectionID: UInt? { session.connectionID }
}
