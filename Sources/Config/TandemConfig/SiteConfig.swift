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
    public var control: ControlConfig
    public var metrics: MetricsConfig
    public var alerts: AlertsConfig

    public init(
        site: SiteSection, database: DatabaseConfig, link: LinkConfig,
        tables: TableSelection = .all, spool: SpoolConfig, batch: BatchConfig = BatchConfig(),
        log: LogConfig = LogConfig(), control: ControlConfig? = nil, metrics: MetricsConfig = MetricsConfig(),
        alerts: AlertsConfig = AlertsConfig()
    ) {
        self.site = site
        self.database = database
        self.link = link
        self.tables = tables
        self.spool = spool
        self.batch = batch
        self.log = log
        self.control = control ?? .defaults(spoolDirectory: spool.directory)
        self.metrics = metrics
        self.alerts = alerts
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
