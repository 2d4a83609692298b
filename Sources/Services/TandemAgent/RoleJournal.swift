import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
/// beside them. The switchover procedure (a later issue) will extend this journal
/// into its step log; for now it holds one line, `role = shipper|applier`.
///
/// Bootstrap: on the very first start `tandem agent --role …` writes it; afterwards
/// the flag may be repeated (must agree) or left out. A disagreeing flag is refused,
/// since changing roles by hand would let both sites ship (or neither).
public struct RoleJournal: Sendable {
    public let path: String

    public init(spoolRoot: String) {
        path = (spoolRoot as NSString).appendingPathComponent("role.journal")
    }

    /// The recorded role, nil if the journal does not exist yet.
    public func read() throws(AgentError) -> AgentRole? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw AgentError("cannot read the role journal \(path)", hint: "Check its permissions.")
        }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, parts[0] == "role", let role = AgentRole(rawValue: parts[1]) { return role }
        }
        throw AgentError("the role journal \(path) names no role",
                         hint: "It should hold `role = shipper` or `role = applier`; restore it from the other site's view of the pair.")
    }

    /// Records `role` durably: written to a temporary file, synced, renamed, and the
    /// directory synced, so a crash leaves either no journal or a whole one.
    public func write(_ role: AgentRole) throws(AgentError) {
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw AgentError("cannot create \(directory): \(error)", hint: "Check [spool] directory and its permissions.")
        }
        let temporary = path + ".new"
        let bytes = Array("# Tandem pair journal: this site's role. Changed only by switchover procedures.\nrole = \(role.rawValue)\n".utf8)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw AgentError("cannot write \(temporary): \(String(cString: strerror(errno)))", hint: "Check permissions.")
        }
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            throw AgentError("cannot write the role journal \(path): \(String(cString: strerror(errno)))",
                             hint: "Check free space and permissions.")
        }
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// The role to run: the journal's, bootstrapped from `requested` on first start.
    public func resolve(requested: AgentRole?) throws(AgentError) -> AgentRole {
        if let recorded = try read() {
            if let requested, requested != recorded {
                throw AgentError(
                    "--role \(requested.rawValue) disagrees with the pair journal (\(path)), which says this site is the \(recorded.rawValue)",
                    hint: "Roles change only through a switchover; leave --role out to run as the \(recorded.rawValue).")
            }
            return recorded
        }
        guard let requested else {
            throw AgentError("this site has no role yet (no pair journal at \(path))",
                             hint: "On the first start give --role shipper (primary site) or --role applier (DR site).")
        }
        try write(requested)
        return requested
    }
}
