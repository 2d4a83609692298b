import TandemCore

/// `[database]`: how the agent reaches its local database, both to capture
/// from it (as primary) and to apply to it (as DR site).
///
/// Invariants after parsing: `port` is set (engine default when omitted);
/// `host` is nil only for MariaDB/MySQL reached through `unix_socket`;
/// `engineSettings` matches `engine`; `password` is set exactly when
/// `passwordSource` is.
public struct DatabaseConfig: Sendable, Equatable {
    public var engine: DatabaseEngine
    /// Host name or address. For PostgreSQL an absolute path names the
    /// directory of the server's Unix socket, as in libpq.
    public var host: String?
    public var port: Int
    public var user: String
    /// PostgreSQL: the database to connect to (logical decoding is per
    /// database, so it is required). MariaDB/MySQL: the default schema, optional
    /// because binlog capture is server-wide.
    public var database: String?
    /// Where the password came from; shown by `renderedForDisplay()` in place
    /// of the value.
    public var passwordSource: PasswordSource?
    /// The resolved password; nil means no password (trust, peer or socket
    /// authentication).
    public var password: Secret?
    public var engineSettings: EngineSettings

    public init(
        engine: DatabaseEngine, host: String?, port: Int? = nil, user: String, database: String?,
        passwordSource: PasswordSource? = nil, password: Secret? = nil,
        engineSettings: EngineSettings? = nil
    ) {
        self.engine = engine
        self.host = host
        self.port = port ?? DatabaseConfig.defaultPort(for: engine)
        self.user = user
        self.database = database
        self.passwordSource = passwordSource
        self.password = password
        self.engineSettings = engineSettings ?? .defaults(for: engine)
    }

    public static func defaultPort(for engine: DatabaseEngine) -> Int {
        switch engine {
        case .postgresql: 5432
        case .mariadb, .mysql: 3306
        }
    }
}

/// Where a database password is read from. There is intentionally no case for
/// a literal value: the configuration file is copied around, pasted into
/// tickets and printed by `tandem config check`, so it must never hold one.
public enum PasswordSource: Sendable, Equatable {
    /// A file holding only the password (a trailing newline is ignored). It
    /// must not be accessible to other users; see `SiteConfig.load`.
    case file(path: String)
    /// An environment variable of the agent process, e.g. set by systemd's
    /// `EnvironmentFile=`.
    case environment(variable: String)
}

/// Settings that only make sense for one family of engines. Keeping them in an
/// enum rather than as optional fields means code handling PostgreSQL cannot
/// accidentally read a MariaDB setting, and vice versa.
public enum EngineSettings: Sendable, Equatable {
    case postgresql(PostgreSQLSettings)
    /// MariaDB and MySQL, which are both captured from the binlog.
    case binlog(BinlogSettings)

    public var postgresql: PostgreSQLSettings? {
        if case .postgresql(let settings) = self { settings } else { nil }
    }

    public var binlog: BinlogSettings? {
        if case .binlog(let settings) = self { settings } else { nil }
    }

    /// Defaults for an engine. For MariaDB/MySQL the parser never uses this,
    /// because `server_id` has no sensible default; it is here so that tools
    /// and tests can build a config in code.
    public static func defaults(for engine: DatabaseEngine) -> EngineSettings {
        switch engine {
        case .postgresql: .postgresql(PostgreSQLSettings())
        case .mariadb, .mysql: .binlog(BinlogSettings(serverID: 1))
        }
    }
}

public struct PostgreSQLSettings: Sendable, Equatable {
    /// libpq `sslmode` for the local database connection. Defaults to libpq's
    /// own default, `prefer`: the agent normally talks to a database on the
    /// same host or LAN, and the WAN link has its own mutual TLS.
    public var sslMode: PostgreSQLSSLMode
    /// Shown in `pg_stat_activity` and `pg_stat_replication`, so DBAs can tell
    /// Tandem's sessions apart. PostgreSQL truncates it at 63 bytes, so longer
    /// values are rejected rather than silently cut.
    public var applicationName: String

    public static let defaultApplicationName = "tandem"

    public init(sslMode: PostgreSQLSSLMode = .prefer, applicationName: String = defaultApplicationName) {
        self.sslMode = sslMode
        self.applicationName = applicationName
    }
}

public enum PostgreSQLSSLMode: String, Sendable, Equatable, CaseIterable {
    case disable, allow, prefer, require
    case verifyCA = "verify-ca"
    case verifyFull = "verify-full"
}

public struct BinlogSettings: Sendable, Equatable {
    /// The replica server id the agent presents when it reads the binlog. It
    /// must be unique among all replicas of the server (a duplicate silently
    /// disconnects the other replica), so there is no default.
    public var serverID: UInt32
    /// Absolute path of the server's Unix socket, used instead of host/port.
    public var unixSocket: String?

    public init(serverID: UInt32, unixSocket: String? = nil) {
        self.serverID = serverID
        self.unixSocket = unixSocket
    }
}
