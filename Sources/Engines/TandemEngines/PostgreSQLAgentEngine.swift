import ApplyKit
import CaptureKit
import Logging
import PGClient
import PostgreSQLApply
import PostgreSQLCapture
import PostgreSQLSeed
import PostgreSQLVerify
import TandemAgent
import TandemConfig
import TandemCore
import TandemSeed
import TandemVerify

/// The PostgreSQL engine of the agent: a `pgoutput` slot for capture, `PostgreSQLSink` for apply.
struct PostgreSQLAgentEngine: AgentEngine {
    var engine: DatabaseEngine { .postgresql }

    func source(site: SiteConfig, link: AgentLinkSettings, logger: Logger) throws -> any BatchSource {
        PostgreSQLSource(settings: captureSettings(site: site, link: link), logger: logger)
    }

    private func captureSettings(site: SiteConfig, link: AgentLinkSettings) -> PostgreSQLCaptureSettings {
        PostgreSQLCaptureSettings(
            conninfo: Self.conninfo(site.database),
            stream: link.stream(shippedBy: link.localSite),
            slotName: PostgreSQLCaptureSettings.objectName("tandem", site.site.pair, site.site.name),
            publicationName: PostgreSQLCaptureSettings.objectName("tandem", site.site.pair),
            tableFilter: EngineWiring.tableFilter(site),
            stateDirectory: site.spool.directory,
            batching: EngineWiring.batching(site),
            compressionLevel: Int32(site.batch.compressionLevel))
    }

    func sink(site: SiteConfig, stream: StreamID, logger: Logger) throws -> any BatchSink {
        try PostgreSQLSink(conninfo: Self.conninfo(site.database), stream: stream, logger: logger)
    }

    /// Capture: `PostgreSQLSource.check` (wal_level, REPLICATION, the publication and slot
    /// creatable, a replication connection). Apply: the sink's own session setup, opened and
    /// closed (log in, session settings, the checkpoint schema and table, the origin); a
    /// connection failure is an outage only when no server answers (`PGConnection.ping`).
    func check(site: SiteConfig, link: AgentLinkSettings, for use: DatabaseUse, logger: Logger) -> [DatabaseProblem] {
        switch use {
        case .capture:
            return PostgreSQLSource.check(settings: captureSettings(site: site, link: link)).map(DatabaseProblem.init)
        case .apply:
            let conninfo = Self.conninfo(site.database)
            return EngineWiring.checkSink(logger: logger) { quiet throws(ApplyError) in
                try PostgreSQLSink(conninfo: conninfo, stream: link.stream(shippedBy: link.peerSite), logger: quiet)
            } answered: {
                [.accepting, .noAttempt].contains(PGConnection.ping(conninfo: conninfo))
            }
        }
    }

    /// libpq keyword/value conninfo for `[database]`; values quoted as libpq expects.
    static func conninfo(_ database: DatabaseConfig) -> String {
        func quoted(_ value: String) -> String {
            "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        }
        var parts: [String] = []
        if let host = database.host { parts.append("host=\(quoted(host))") }
        parts.append("port=\(database.port)")
        parts.append("user=\(quoted(database.user))")
        if let name = database.database { parts.append("dbname=\(quoted(name))") }
        if let password = database.password { parts.append("password=\(quoted(password.reveal()))") }
        if let pg = database.engineSettings.postgresql {
            parts.append("sslmode=\(pg.sslMode.rawValue)")
            parts.append("application_name=\(quoted(pg.applicationName))")
        }
        parts.append("connect_timeout=10")
        return parts.joined(separator: " ")
    }

    /// Verify's side: a connection of its own, the same table selection as capture.
    func verifySide(site: SiteConfig) throws -> any VerifySide {
        try PostgreSQLVerifySide(conninfo: Self.conninfo(site.database), filter: EngineWiring.tableFilter(site))
    }

    func seedSource(site: SiteConfig) throws -> any SeedSource {
        var database = site.database
        let password = database.password?.reveal()
        database.password = nil
        return try PostgreSQLSeedSource(
            conninfo: Self.conninfo(database), password: password, filter: EngineWiring.tableFilter(site))
    }

    func seedTarget(site: SiteConfig) throws -> any SeedTarget {
        try PostgreSQLSeedTarget(conninfo: Self.conninfo(site.database))
    }
}
