import ApplyKit
import CaptureKit
import Logging
import TandemConfig
import TandemCore
import TandemSeed
import TandemVerify

/// What the agent needs of a database engine: its capture (for the shipper) and its apply (for
/// the applier), built from the site's configuration. Each engine provides one conformance; the
/// agent finds it in an `EngineRegistry` by the `[database] engine` of the site, so adding an
/// engine adds a conformance and a registry entry, and changes no service and no dispatch.
public protocol AgentEngine: Sendable {
    /// The engine this entry serves.
    var engine: DatabaseEngine { get }

    /// The shipper's capture from this site's database (not started: the shipper restarts it
    /// at the point the applier's HELLO gives).
    func source(site: SiteConfig, link: AgentLinkSettings, logger: Logger) throws -> any BatchSource

    /// The applier's sink into this site's database, for `stream`.
    func sink(site: SiteConfig, stream: StreamID, logger: Logger) throws -> any BatchSink

    /// The start-up check of this site's database for `use`, before the agent dials or
    /// listens: reachable, the credentials accepted, and the settings and privileges the role
    /// needs. Every problem found, each one line plus a hint naming the setting or privilege;
    /// empty when the database is ready. What the agent does with them is `StartupCheck`'s.
    func check(site: SiteConfig, link: AgentLinkSettings, for use: DatabaseUse, logger: Logger) -> [DatabaseProblem]

    /// Verify's access to this site's database (`tandem verify`): a new connection each call.
    func verifySide(site: SiteConfig) throws -> any VerifySide

    /// The seed's access to this site's database as the primary (chunks, schema): a new
    /// connection each call.
    func seedSource(site: SiteConfig) throws -> any SeedSource

    /// The seed's access to this site's database as the DR site: a new connection each call.
    func seedTarget(site: SiteConfig) throws -> any SeedTarget
}

extension AgentEngine {
    public func seedSource(site: SiteConfig) throws -> any SeedSource {
        throw SeedError(
            "\(engine.displayName) cannot be seeded by this build of Tandem",
            hint: "Copy the data by the database's own tools before the agents start.")
    }

    public func seedTarget(site: SiteConfig) throws -> any SeedTarget {
        throw SeedError(
            "\(engine.displayName) cannot be seeded by this build of Tandem",
            hint: "Copy the data by the database's own tools before the agents start.")
    }
}

/// What an agent uses its database for.
public enum DatabaseUse: String, Sendable {
    /// The shipper captures from it.
    case capture
    /// The applier applies to it.
    case apply
}

/// A problem the start-up check found with this site's database.
public struct DatabaseProblem: OperatorError, Sendable, Equatable {
    public var kind: Kind
    public var description: String
    public var hint: String

    public enum Kind: Sendable, Equatable {
        /// The database did not answer (down, still starting, or a wrong host or port).
        case unreachable
        /// It answered and refused (credentials), or lacks a setting or privilege.
        case setup
    }

    public init(_ kind: Kind, _ description: String, hint: String) {
        self.kind = kind
        self.description = description
        self.hint = hint
    }
}

/// The engines an agent binary was built with.
public struct EngineRegistry: Sendable {
    public let engines: [any AgentEngine]

    public init(_ engines: [any AgentEngine]) {
        self.engines = engines
    }

    /// The entry for `engine`, or an error that names the engines this build has.
    public func entry(for engine: DatabaseEngine) throws(AgentError) -> any AgentEngine {
        if let entry = engines.first(where: { $0.engine == engine }) { return entry }
        throw AgentError(
            "this build of Tandem cannot capture from or apply to \(engine.displayName)",
            hint: "[database] engine must be one of: \(engines.map(\.engine.rawValue).joined(separator: ", ")).")
    }
}
