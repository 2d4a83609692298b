import TandemCore

/// The configuration of one site agent (`tandem agent --config site.toml`).
///
/// A value produced by `SiteConfig.parse` / `SiteConfig.load` is complete and
/// validated: optional keys carry their defaults, relative paths are absolute
/// (resolved against the configuration file's directory), and the database
/// password, if any, has been read from its file or environment variable. The
/// public initialisers exist for tests and tools and perform no validation.
///
/// The role of the site (shipper or applier) is deliberately absent: it comes
/// from the pair's journal, so that a switchover swaps roles without editing
/// any file. Likewise `[link].mode` only says which side dials, not which way
/// data flows.
public struct SiteConfig: Sendable, Equatable {
    public var site: SiteSection
    public var database: DatabaseConfig
    public var link: LinkConfig
    public var tables: TableSelection
    public var spool: SpoolConfig
    public var batch: BatchConfig
    public var log: LogConfig

    public init(
        site: SiteSection, database: DatabaseConfig, link: LinkConfig,
        tables: TableSelection = .all, spool: SpoolConfig, batch: BatchConfig = BatchConfig(),
        log: LogConfig = LogConfig()
    ) {
        self.site = site
        self.database = database
        self.link = link
        self.tables = tables
        self.spool = spool
        self.batch = batch
        self.log = log
    }
}

/// `[site]`: who this agent is.
///
/// Both names are restricted to 1–63 ASCII letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit: `name` has to match the CN/SAN of the
/// site's certificate, and both end up in file names, metric labels and the
/// pair journal, where anything fancier causes trouble.
public struct SiteSection: Sendable, Equatable {
    /// This site's name; the peer checks it against our certificate.
    public var name: String
    /// The replication pair this site belongs to; both sites must agree on it.
    public var pair: String

    public init(name: String, pair: String) {
        self.name = name
        self.pair = pair
    }
}

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

/// `[link]`: the TLS connection between the two sites.
///
/// Exactly one side of a pair connects and the other listens; which one is a
/// network decision (usually the primary site dials out through its firewall),
/// independent of which way data flows, so it survives a switchover unchanged.
/// Both sides authenticate with certificates issued by the pair's CA, and each
/// checks that the peer's certificate carries `peerSite`.
public struct LinkConfig: Sendable, Equatable {
    public var mode: LinkMode
    /// The site name the peer's certificate must carry; never this site's own name.
    public var peerSite: String
    /// PEM file of the pair's CA, the only CA trusted on the link.
    public var caFile: String
    /// PEM certificate of this site (CN/SAN = `site.name`), optionally with chain.
    public var certificateFile: String
    /// PEM private key of this site's certificate.
    public var keyFile: String

    public init(mode: LinkMode, peerSite: String, caFile: String, certificateFile: String, keyFile: String) {
        self.mode = mode
        self.peerSite = peerSite
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }
}

/// Which side opens the connection, and the address involved.
public enum LinkMode: Sendable, Equatable {
    /// Dial the peer at `host:port` (TOML: `mode = "connect"`, `peer = "host:port"`).
    case connect(host: String, port: Int)
    /// Accept the peer on `host:port` (TOML: `mode = "listen"`, `listen = "host:port"`).
    case listen(host: String, port: Int)

    public var host: String {
        switch self {
        case .connect(let host, _), .listen(let host, _): host
        }
    }

    public var port: Int {
        switch self {
        case .connect(_, let port), .listen(_, let port): port
        }
    }

    /// `host:port`, with IPv6 addresses bracketed.
    public var address: String { HostPort.format(host: host, port: port) }
}

/// `[spool]`: where received (and, during an outage, outgoing) batches are
/// kept durably.
public struct SpoolConfig: Sendable, Equatable {
    /// Absolute path of the spool directory.
    public var directory: String
    /// Upper bound on spool size; nil means bounded only by free disk space.
    /// When set it is at least `batch.maxBytes`, since a spool that cannot
    /// hold one batch would stall the stream forever.
    public var maxBytes: ByteSize?

    public init(directory: String, maxBytes: ByteSize? = nil) {
        self.directory = directory
        self.maxBytes = maxBytes
    }
}

/// `[batch]`: how the shipper groups transactions into batches. Every key is
/// optional; the defaults suit a WAN link of a few ms to a few tens of ms.
public struct BatchConfig: Sendable, Equatable {
    /// A batch is closed once its raw (uncompressed) size reaches this. The
    /// upper bound keeps frames well inside the batch codec's default decode
    /// limits (64 MiB compressed body, 128 MiB uncompressed).
    public var maxBytes: ByteSize
    /// A non-empty batch is sent at the latest this long after its first
    /// transaction: the price in RPO of batching. Capped at 10 s because a
    /// larger value turns a tuning knob into guaranteed data loss exposure.
    public var maxDelay: Duration
    /// zstd level for batch bodies, 1…19. The default is 1, the level the
    /// batch codec defaults to after its benchmark (faster capture on a busy
    /// primary for a ratio only slightly worse than 3).
    public var compressionLevel: Int

    public static let defaultMaxBytes = ByteSize.mebibytes(8)
    public static let defaultMaxDelay = Duration.milliseconds(50)
    public static let defaultCompressionLevel = 1

    public static let maxBytesRange = ByteSize.kibibytes(4)...ByteSize.mebibytes(64)
    public static let maxDelayMillisecondsRange = 0...10_000
    public static let compressionLevelRange = 1...19

    public init(
        maxBytes: ByteSize = defaultMaxBytes, maxDelay: Duration = defaultMaxDelay,
        compressionLevel: Int = defaultCompressionLevel
    ) {
        self.maxBytes = maxBytes
        self.maxDelay = maxDelay
        self.compressionLevel = compressionLevel
    }
}

/// `[log]`.
public struct LogConfig: Sendable, Equatable {
    public var level: LogLevel

    public init(level: LogLevel = .info) {
        self.level = level
    }
}

/// Log levels, spelled as swift-log spells them so the CLI can map them
/// one-to-one (`Logger.Level(rawValue: level.rawValue)`).
public enum LogLevel: String, Sendable, Equatable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}
