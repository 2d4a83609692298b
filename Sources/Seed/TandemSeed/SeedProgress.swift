import Foundation
import TandemCore
import TandemStorage
import TandemVerify

/// What a seed has made durable at the DR site, kept at the primary site's agent (the one that
/// reads the chunks) in `seed.json` beside its capture state. It moves only when a chunk is
/// durable in the DR spool, never when it was merely read or sent, so after a crash of either
/// agent, or of the command, a new run continues after the last durable chunk of each table;
/// what is read again is at most the chunks that were in flight.
public struct SeedProgress: Codable, Hashable, Sendable {
    public enum Phase: String, Codable, Sendable {
        /// Chunks are being copied.
        case copying
        /// Every chunk is durable at the DR site; the schema's second part (`SeedSchema.after`)
        /// waits for the rows to be applied.
        case finishing
        /// The DR copy is complete and replicating.
        case done
    }

    public enum TableState: String, Codable, Sendable {
        case pending, copying, done
    }

    public struct Table: Codable, Hashable, Sendable {
        public var table: SeedTable
        public var state: TableState
        /// The key of the last row durable at the DR site (nil: none yet).
        public var after: KeyValue?
        /// Rows and bytes durable at the DR site.
        public var rows: Int64
        public var bytes: Int64

        public init(table: SeedTable) {
            self.table = table
            state = .pending
            rows = 0
            bytes = 0
        }
    }

    public var format = 1
    /// When the seed was first started (seconds since the epoch, the primary's clock).
    public var startedAt: Double
    public var phase: Phase
    public var tables: [Table]
    /// The schema's second part, run at the DR site once the copied rows are applied; empty when
    /// there is none (every table existed there already).
    public var afterScript: String
    /// The last batch that carried copied rows, once every chunk is durable: the schema's second
    /// part waits until the DR site has applied it.
    public var lastCopyBatch: UInt64 = 0

    public init(tables: [SeedTable], afterScript: String, startedAt: Double) {
        self.startedAt = startedAt
        phase = .copying
        self.tables = tables.map(Table.init)
        self.afterScript = afterScript
    }

    public var rows: Int64 { tables.reduce(0) { $0 + $1.rows } }
    public var bytes: Int64 { tables.reduce(0) { $0 + $1.bytes } }
    public var estimatedRows: Int64 { tables.reduce(0) { $0 + max($1.table.estimatedRows, $1.rows) } }

    /// The tables whose copy is not finished: their changes are marked `duringCopy`.
    public var copying: Set<RelationName> {
        Set(tables.filter { $0.state != .done }.map(\.table.name))
    }

    /// One line per table saying what a resumed run does with it: what is redone is exactly the
    /// rows after the last durable key.
    public var resumeLines: [String] {
        tables.map { entry in
            switch entry.state {
            case .done: "\(entry.table): done (\(entry.rows) rows), not copied again"
            case .pending: "\(entry.table): not started, copied from its first row"
            case .copying:
                "\(entry.table): \(entry.rows) rows durable through key \(entry.after?.display ?? "(none)"); "
                    + "copying continues after that key"
            }
        }
    }
}

/// `seed.json`: the progress, replaced whole (temporary file, fsync, rename, directory fsync)
/// so a crash leaves the old or the new version, never a torn one.
public struct SeedProgressFile: Sendable {
    public let file: DurableFile

    public init(directory: String) {
        file = DurableFile(path: (directory as NSString).appendingPathComponent("seed.json"))
    }

    public func load() throws(SeedError) -> SeedProgress? {
        let bytes: [UInt8]?
        do { bytes = try file.load() } catch {
            throw SeedError(
                "cannot read \(file.path): \(error)", hint: "Check the state directory's permissions and disk.")
        }
        guard let bytes else { return nil }
        do { return try JSONDecoder().decode(SeedProgress.self, from: Data(bytes)) } catch {
            throw SeedError(
                "\(file.path) is damaged (\(error.localizedDescription))",
                hint:
                    "Move it away to start the seed over (`--truncate-target` empties the DR tables it had filled); nothing was changed."
            )
        }
    }

    public func save(_ progress: SeedProgress) throws(SeedError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes: [UInt8]
        do { bytes = Array(try encoder.encode(progress)) + [0x0A] } catch {
            throw SeedError("cannot encode the seed progress: \(error)", hint: "Report it.")
        }
        do { try file.replace(with: bytes) } catch {
            throw SeedError(
                "cannot write \(file.path): \(error)", hint: "Check the state directory's free space and permissions.")
        }
    }

    public func remove() {
        unlink(file.path)
    }
}
