import CaptureKit
import MySQLClient
import TandemCore

/// What the MariaDB capture needs to know, independent of the TOML config.
public struct MariaDBCaptureSettings: Sendable {
    /// The primary, and the capture's user there.
    public var primary: MySQLLogin
    /// The replica server id the binlog dump announces. Must differ from every server id
    /// in the replication topology (the primary kills an older dump with the same id).
    public var serverID: UInt32
    public var stream: StreamID
    /// The spool directory: the capture keeps its acknowledged position and the identity
    /// of the primary here (`capture-mariadb-<stream>.state`).
    public var stateDirectory: String
    public var batching: TransactionBatcher.Limits
    public var compressionLevel: Int32
    /// A `REPLACE INTO tandem.heartbeat` this often keeps lag measurable on an idle
    /// primary (it ships as an empty transaction); 0 turns it off.
    public var heartbeatIntervalNanoseconds: UInt64
    /// Finished batches waiting for the shipper; past this, capture stops reading the
    /// binlog stream (the primary keeps its binlogs) so memory stays bounded.
    public var maximumReadyBytes: Int
    /// The GTID domain Tandem's applier writes with at this site (`gtid_domain_id` of its
    /// sessions). Transactions in this domain are Tandem's own writes and are never shipped
    /// back, so a pair that switched over cannot loop.
    public var applierDomainID: UInt32
    /// Which tables are captured (`schema` is the MariaDB database); nil means all. Row
    /// changes of other tables are dropped, their transactions still ship (possibly empty)
    /// so positions progress.
    public var tableFilter: (@Sendable (_ schema: String, _ table: String) -> Bool)?

    public init(
        host: String? = "127.0.0.1", port: Int = 3306, user: String, password: String? = nil,
        database: String? = nil, unixSocket: String? = nil, serverID: UInt32, stream: StreamID,
        stateDirectory: String, batching: TransactionBatcher.Limits = .init(), compressionLevel: Int32 = 1,
        heartbeatIntervalNanoseconds: UInt64 = 5_000_000_000, maximumReadyBytes: Int = 64 << 20,
        applierDomainID: UInt32, tableFilter: (@Sendable (String, String) -> Bool)? = nil
    ) {
        self.primary = MySQLLogin(
            host: host, port: port, user: user, password: password, database: database, unixSocket: unixSocket)
        self.serverID = serverID
        self.stream = stream
        self.stateDirectory = stateDirectory
        self.batching = batching
        self.compressionLevel = compressionLevel
        self.heartbeatIntervalNanoseconds = heartbeatIntervalNanoseconds
        self.maximumReadyBytes = maximumReadyBytes
        self.applierDomainID = applierDomainID
        self.tableFilter = tableFilter
    }

    /// Whether row changes of `schema.table` are shipped: never for the server's own
    /// schemas and Tandem's `tandem` schema, otherwise as the filter says.
    public func captures(schema: String, table: String) -> Bool {
        if MariaDBCaptureSettings.internalSchemas.contains(schema.lowercased()) { return false }
        return tableFilter?(schema, table) ?? true
    }

    /// Schemas never captured nor checked for keys: the server's own and Tandem's.
    public static let internalSchemas: Set<String> = [
        "mysql", "sys", "information_schema", "performance_schema", tandemSchema,
    ]

    /// The schema holding Tandem's objects on the primary (the heartbeat table).
    public static let tandemSchema = "tandem"
}

extension MariaDBCaptureSettings {
    /// A control connection to the primary (queries, not the binlog dump), as the capture
    /// session and the start-up check open it.
    func controlConnection() throws(MySQLError) -> MySQLConnection {
        try MySQLConnection(primary, connectTimeout: 5, readTimeout: 30, writeTimeout: 30)
    }
}
