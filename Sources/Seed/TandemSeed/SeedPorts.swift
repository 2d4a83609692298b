import TandemCore
import TandemVerify

/// Why a seed step failed: one line for the operator and a hint that says what to do.
public struct SeedError: OperatorError, Error, Sendable, Hashable, Codable {
    public var description: String
    public var hint: String

    public init(_ description: String, hint: String) {
        self.description = description
        self.hint = hint
    }
}

/// One table as a seed copies it: described once at the primary, the same description reaches
/// the DR site. Key and columns as verify describes them (primary key columns in key order,
/// every column in the source's order), so `tandem verify` after a seed checks what it copied.
public struct SeedTable: Codable, Hashable, Sendable, CustomStringConvertible {
    public var table: VerifyTable
    /// The planner's estimate of the table's rows and bytes at the primary (for progress and
    /// ETA only; 0 when the engine cannot tell).
    public var estimatedRows: Int64
    public var estimatedBytes: Int64

    public init(table: VerifyTable, estimatedRows: Int64, estimatedBytes: Int64) {
        self.table = table
        self.estimatedRows = estimatedRows
        self.estimatedBytes = estimatedBytes
    }

    public var name: RelationName { RelationName(schema: table.schema, name: table.name) }
    public var description: String { table.description }
}

/// One chunk as the primary read it.
public struct CopyChunk: Sendable {
    /// The rows, as `.copy` changes holding every column, in key order.
    public var rows: [RowChange]
    /// The key of the last row (nil when the chunk is empty): the next chunk starts after it.
    public var last: KeyValue?
    /// The rows' size as the engine measured them (for progress).
    public var bytes: Int
    /// Fewer rows than asked for: the table has no rows after this chunk.
    public var exhausted: Bool

    public init(rows: [RowChange], last: KeyValue?, bytes: Int, exhausted: Bool) {
        self.rows = rows
        self.last = last
        self.bytes = bytes
        self.exhausted = exhausted
    }
}

/// The schema a seed creates at the DR site for the tables missing there, in two scripts of the
/// engine's SQL: `before` the copy (tables, keys, types, sequences) and `after` it (secondary
/// indexes, constraints, where the engine can separate them: building them once over the copied
/// rows is faster than maintaining them row by row).
public struct SeedSchema: Codable, Hashable, Sendable {
    public var before: String
    public var after: String

    public init(before: String, after: String) {
        self.before = before
        self.after = after
    }
}

/// The primary site's side of a seed, one database connection: the engine's catalog, schema
/// dump, and the chunk read that writes its watermark.
public protocol SeedSource: AnyObject {
    /// The tables to copy: `names` (`schema.table`), or every table the capture replicates when
    /// nil. A table without a primary key, or a name that is not a replicated table, is refused
    /// with the whole list in one error (nothing has been done yet).
    func tables(_ names: [String]?) throws(SeedError) -> [SeedTable]

    /// The DDL that creates `tables` at a DR site of the same engine.
    func schema(for tables: [SeedTable]) throws(SeedError) -> SeedSchema

    /// Reads up to `rows` rows of `table` after the key `after` (from the start when nil), in key
    /// order, and writes `mark` into the source's log in the same transaction, under share locks
    /// on the rows read: no change to them can commit between the read and the mark, so the
    /// mark's place in the log is where these rows are current. `offer` receives the rows after
    /// the read and before the commit (see `CopyFeed.offer`). A failure after `offer` must
    /// leave the transaction rolled back or its outcome unknown; the caller withdraws the rows
    /// only when it is known to be rolled back (`SeedError` from before the commit).
    func readChunk(
        _ table: SeedTable, after: KeyValue?, rows: Int, mark: SeedMark, offer: ([RowChange]) -> Void
    ) throws(SeedError) -> CopyChunk

    func close()
}

/// What a DR table holds before a seed writes into it.
public enum TargetTableState: String, Codable, Sendable, Hashable {
    /// Not there: the seed creates it from the primary's schema.
    case missing
    /// There and without rows: the seed copies into it as it is.
    case empty
    /// There with rows: the seed stops unless told to empty it (`--truncate-target`).
    case holdsRows = "holds_rows"
}

/// The DR site's side of a seed, one database connection.
public protocol SeedTarget: AnyObject {
    /// The state of each table at the DR database.
    func inspect(_ tables: [RelationName]) throws(SeedError) -> [RelationName: TargetTableState]

    /// Empties `tables` (`--truncate-target`).
    func truncate(_ tables: [RelationName]) throws(SeedError)

    /// Runs a script of `SeedSchema` (several statements).
    func run(script: String) throws(SeedError)

    func close()
}
