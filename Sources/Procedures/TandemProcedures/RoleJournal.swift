import Foundation
import TandemCore
import TandemStorage

/// Which data role this site plays in the pair: the shipper (primary) or the applier (DR).
public enum AgentRole: String, Sendable, CaseIterable {
    case shipper
    case applier
}

/// The pair's journal, minimal form: the file `role.journal` in the spool root
/// (`[spool] directory`), holding this site's current role.
///
/// Why a file and not a config key: the role is state, not configuration. A
/// switchover swaps the roles of both sites without anyone editing a config, and a
/// crash in the middle must be resumable, so the role lives with the site's other
/// durable state. The spool root is the directory the agent already owns and keeps
/// on durable storage; stream spools are subdirectories of it, so the file sits
/// beside them. The switchover procedures extend this journal into their step log;
/// for now it holds one line, `role=shipper|applier`, written as a `DurableFile`.
///
/// Bootstrap: on the very first start `tandem agent --role …` writes it; afterwards
/// the flag may be repeated (must agree) or left out. A disagreeing flag is refused,
/// since changing roles by hand would let both sites ship (or neither). A journal that
/// exists but cannot be read or parsed is refused too, never taken for a first start.
public struct RoleJournal: Sendable {
    public let file: DurableFile
    public var path: String { file.path }

    public init(spoolRoot: String) {
        file = DurableFile(path: (spoolRoot as NSString).appendingPathComponent("role.journal"))
    }

    /// The recorded role, nil if the journal does not exist yet.
    public func read() throws(JournalError) -> AgentRole? {
        let bytes: [UInt8]?
        do { bytes = try file.load() } catch {
            throw JournalError("cannot read the pair journal: \(error.description)", hint: error.hint)
        }
        guard let bytes else { return nil }
        do {
            return try StateRecord(parsing: bytes).require("role", AgentRole.init(rawValue:))
        } catch {
            throw JournalError(
                "the pair journal \(path) is damaged: \(error.reason)",
                hint:
                    "It should hold `role=shipper` or `role=applier`; restore it from the other site's view of the pair."
            )
        }
    }

    /// Records `role` durably (a crash leaves either no journal or a whole one).
    public func write(_ role: AgentRole) throws(JournalError) {
        let record = StateRecord([("role", role.rawValue)])
        do {
            try file.replace(
                with: record.rendered(comment: [
                    "Tandem pair journal: this site's role. Changed only by switchover procedures."
                ]),
                permissions: 0o644)
        } catch {
            throw JournalError("cannot write the pair journal: \(error.description)", hint: error.hint)
        }
    }

    /// The role to run: the journal's, bootstrapped from `requested` on first start.
    public func resolve(requested: AgentRole?) throws(JournalError) -> AgentRole {
        if let recorded = try read() {
            if let requested, requested != recorded {
                throw JournalError(
                    "--role \(requested.rawValue) disagrees with the pair journal (\(path)), which says this site is the \(recorded.rawValue)",
                    hint: "Roles change only through a switchover; leave --role out to run as the \(recorded.rawValue)."
                )
            }
            return recorded
        }
        guard let requested else {
            throw JournalError(
                "this site has no role yet (no pair journal at \(path))",
                hint: "On the first start give --role shipper (primary site) or --role applier (DR site).")
        }
        try write(requested)
        return requested
    }
}

/// The pair journal cannot be used as it is: one line for the operator, plus what to do.
public struct JournalError: Error, Sendable, CustomStringConvertible, OperatorError {
    public var description: String
    public var hint: String

    public init(_ description: String, hint: String) {
        self.description = description
        self.hint = hint
    }
}
