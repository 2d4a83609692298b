import CaptureKit
import Logging
import MariaDBApply
import MariaDBCapture

import PostgreSQLCapture
import TandemAgent
import TandemConfig
import TandemCore

/// Builds the engine side of the agent (capture or apply) from the site's config.
/// The shipper and applier cores only see `BatchSource` / `BatchSink`.
enum EngineWiring {
    /// libpq keyword/value conninfo for `[database]`; values quoted as libpq expects.
    static func postgresConninfo(_ database: DatabaseConfig) -> String {
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

    static func batching(_ site: SiteConfig) -> TransactionBatcher.Limits {
        let delay = site.batch.maxDelay.components
        return TransactionBatcher.Limits(
            maximumBytes: site.batch.maxBytes.bytes,
            maximumDelayNanoseconds: UInt64(delay.seconds) * 1_000_000_000 + UInt64(delay.attoseconds / 1_000_000_000))
    }

    static func tableFilter(_ site: SiteConfig) -> (@Sendable (String, String) -> Bool)? {
        let tables = site.tables
        guard tables != .all else { return nil }
        return { @Sendable schema, table in tables.includes(schema: schema, table: table) }
    }

    /// The GTID domain the MariaDB applier writes in, which the capture at the same site
    /// never ships back (loop prevention after a switchover). One value for the pair.
    static let mariadbApplierDomain: UInt32 = MariaDBSink.defaultDomainID

    static func mariadbSource(site: SiteConfig, link: AgentLinkSettings, logger: Logger) throws -> MariaDBSource {
        let database = site.database
        guard let binlog = database.engineSettings.binlog else {
            throw NotBuiltYet(command: "agent", purpose: "MariaDB capture needs [database] server_id")
        }
        let settings = MariaDBCaptureSettings(
            host: database.host, port: database.port, user: database.user, password: database.password?.reveal(),
            database: database.database, unixSocket: binlog.unixSocket, serverID: binlog.serverID,
            stream: link.stream(shippedBy: link.localSite), stateDirectory: site.spool.directory,
            batching: batching(site), compressionLevel: Int32(site.batch.compressionLevel),
            applierDomainID: mariadbApplierDomain, tableFilter: tableFilter(site))
        return MariaDBSource(settings: settings, logger: logger)
    }

    static func mariadbSink(site: SiteConfig, stream: StreamID, logger: Logger) throws -> MariaDBSink {
        let database = site.database
        return try MariaDBSink(
            host: database.host, port: database.port, user: database.user, password: database.password?.reveal(),
            database: database.database, unixSocket: database.engineSettings.binlog?.unixSocket, stream: stream,
            domainID: mariadbApplierDomain, logger: logger)
    }

    static func postgresSource(site: SiteConfig, link: AgentLinkSettings, logger: Logger) -> PostgreSQLSource {
        let tables = site.tables
        var filter: (@Sendable (String, String) -> Bool)?
        if tables != .all {
            filter = { @Sendable schema, table in tables.includes(schema: schema, table: table) }
        }
        let delay = site.batch.maxDelay.components
        let settings = PostgreSQLCaptureSettings(
            conninfo: postgresConninfo(site.database),
            stream: link.stream(shippedBy: link.localSite),
            slotName: PostgreSQLCaptureSettings.objectName("tandem", site.site.pair, site.site.name),
            publicationName: PostgreSQLCaptureSettings.objectName("tandem", site.site.pair),
            tableFilter: filter,
            stateDirectory: site.spool.directory,
            batching: TransactionBatcher.Limits(
                maximumBytes: site.batch.maxBytes.bytes,
                maximumDelayNanoseconds: UInt64(delay.seconds) * 1_000_000_000 + UInt64(delay.attoseconds / 1_000_000_000)),
            compressionLevel: Int32(site.batch.compressionLevel))
        return PostgreSQLSource(settings: settings, logger: logger)
    }
}
