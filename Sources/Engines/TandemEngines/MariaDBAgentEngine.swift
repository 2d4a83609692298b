import ApplyKit
import CaptureKit
import Logging
import MariaDBApply
import MariaDBCapture
import MariaDBSeed
import MariaDBVerify
import MySQLClient
import TandemAgent
import TandemConfig
import TandemCore
import TandemSeed
import TandemVerify

/// The MariaDB engine of the agent: a GTID binlog dump for capture, `MariaDBSink` for apply.
struct MariaDBAgentEngine: AgentEngine {
    var engine: DatabaseEngine { .mariadb }

    /// The GTID domain the MariaDB applier writes in, which the capture at the same site
    /// never ships back (loop prevention after a switchover). One value for the pair.
    static let applierDomain: UInt32 = MariaDBTarget.defaultDomainID

    func source(site: SiteConfig, link: AgentLinkSettings, logger: Logger) throws -> any BatchSource {
        MariaDBSource(settings: try captureSettings(site: site, link: link), logger: logger)
    }

    private func captureSettings(site: SiteConfig, link: AgentLinkSettings) throws(AgentError)
        -> MariaDBCaptureSettings
    {
        let database = site.database
        guard let binlog = database.engineSettings.binlog else {
            throw AgentError(
                "MariaDB capture needs [database] server_id: the shipper reads the binlog as a replica does",
                hint: "Set [database] server_id to a number no other server or replica of this primary uses.")
        }
        return MariaDBCaptureSettings(
            host: database.host, port: database.port, user: database.user, password: database.password?.reveal(),
            database: database.database, unixSocket: binlog.unixSocket, serverID: binlog.serverID,
            stream: link.stream(shippedBy: link.localSite), stateDirectory: site.spool.directory,
            batching: EngineWiring.batching(site), compressionLevel: Int32(site.batch.compressionLevel),
            applierDomainID: Self.applierDomain, tableFilter: EngineWiring.tableFilter(site))
    }

    func sink(site: SiteConfig, stream: StreamID, logger: Logger) throws -> any BatchSink {
        let database = site.database
        return try MariaDBSink(
            host: database.host, port: database.port, user: database.user, password: database.password?.reveal(),
            database: database.database, unixSocket: database.engineSettings.binlog?.unixSocket, stream: stream,
            domainID: Self.applierDomain, logger: logger)
    }

    /// Capture: `MariaDBSource.check` (log_bin, binlog_format=ROW, binlog_row_image and
    /// binlog_row_metadata FULL, binlog_checksum, REPLICATION SLAVE and BINLOG MONITOR). Apply:
    /// the sink's own session setup, opened and closed (log in, session settings, the
    /// checkpoint schema and table); a connection failure is an outage only when no server
    /// answered (`MySQLError.serverDidNotAnswer`).
    func check(site: SiteConfig, link: AgentLinkSettings, for use: DatabaseUse, logger: Logger) -> [DatabaseProblem] {
        switch use {
        case .capture:
            do {
                return MariaDBSource.check(settings: try captureSettings(site: site, link: link))
                    .map(DatabaseProblem.init)
            } catch {
                return [DatabaseProblem(.setup, error.description, hint: error.hint)]
            }
        case .apply:
            var number: UInt32?
            let problems = EngineWiring.checkSink(logger: logger) { quiet throws(ApplyError) in
                do {
                    return try sink(site: site, stream: link.stream(shippedBy: link.peerSite), logger: quiet)
                } catch let error as ApplyError {
                    number = error.errorNumber
                    throw error
                } catch {
                    throw ApplyError(.mariadb, .connection, "\(error)")
                }
            } answered: {
                number.map { !MySQLError.serverDidNotAnswer(code: $0) } ?? false
            }
            return problems
        }
    }

    /// Verify's side: a connection of its own, the same table selection as capture.
    func verifySide(site: SiteConfig) throws -> any VerifySide {
        let database = site.database
        return try MariaDBVerifySide(
            login: MySQLLogin(
                host: database.host, port: database.port, user: database.user, password: database.password?.reveal(),
                database: database.database, unixSocket: database.engineSettings.binlog?.unixSocket),
            filter: EngineWiring.tableFilter(site))
    }

    /// A seed's primary side: a connection of its own, the same table selection as capture.
    func seedSource(site: SiteConfig) throws -> any SeedSource {
        try MariaDBSeedSource(login: login(site), filter: EngineWiring.tableFilter(site))
    }

    /// A seed's DR side: a connection of its own, writing in the applier's GTID domain so that
    /// this site's capture never ships the seed's DDL back after a switchover.
    func seedTarget(site: SiteConfig) throws -> any SeedTarget {
        try MariaDBSeedTarget(login: login(site), domainID: Self.applierDomain)
    }

    private func login(_ site: SiteConfig) -> MySQLLogin {
        let database = site.database
        return MySQLLogin(
            host: database.host, port: database.port, user: database.user, password: database.password?.reveal(),
            database: database.database, unixSocket: database.engineSettings.binlog?.unixSocket)
    }
}
