import ApplyKit
import CaptureKit
import Logging
import MariaDBApply
import MariaDBCapture
import TandemAgent
import TandemConfig
import TandemCore

/// The MariaDB engine of the agent: a GTID binlog dump for capture, `MariaDBSink` for apply.
struct MariaDBAgentEngine: AgentEngine {
    var engine: DatabaseEngine { .mariadb }

    /// The GTID domain the MariaDB applier writes in, which the capture at the same site
    /// never ships back (loop prevention after a switchover). One value for the pair.
    static let applierDomain: UInt32 = MariaDBTarget.defaultDomainID

    func source(site: SiteConfig, link: AgentLinkSettings, logger: Logger) throws -> any BatchSource {
        let database = site.database
        guard let binlog = database.engineSettings.binlog else {
            throw NotBuiltYet(command: "agent", purpose: "MariaDB capture needs [database] server_id")
        }
        let settings = MariaDBCaptureSettings(
            host: database.host, port: database.port, user: database.user, password: database.password?.reveal(),
            database: database.database, unixSocket: binlog.unixSocket, serverID: binlog.serverID,
            stream: link.stream(shippedBy: link.localSite), stateDirectory: site.spool.directory,
            batching: EngineWiring.batching(site), compressionLevel: Int32(site.batch.compressionLevel),
            applierDomainID: Self.applierDomain, tableFilter: EngineWiring.tableFilter(site))
        return MariaDBSource(settings: settings, logger: logger)
    }

    func sink(site: SiteConfig, stream: StreamID, logger: Logger) throws -> any BatchSink {
        let database = site.database
        return try MariaDBSink(
            host: database.host, port: database.port, user: database.user, password: database.password?.reveal(),
            database: database.database, unixSocket: database.engineSettings.binlog?.unixSocket, stream: stream,
            domainID: Self.applierDomain, logger: logger)
    }
}
