import TandemCore

/// One table as verify compares it: the same description goes to both sites, so both hash the
/// same columns in the same order and split by the same key.
public struct VerifyTable: Codable, Hashable, Sendable, CustomStringConvertible {
    public var schema: String
    public var name: String
    /// The primary key's columns, in key order: chunks are ranges of it.
    public var key: [String]
    /// Every column compared, in the order the row hash takes them (the source's order).
    public var columns: [String]

    public init(schema: String, name: String, key: [String], columns: [String]) {
        self.schema = schema
        self.name = name
        self.key = key
        self.columns = columns
    }

    public var description: String { "\(schema).\(name)" }
}

/// A primary key value as its engine writes it: one text per key column, which the same engine
/// reads back exactly (both sites run the same engine). `display` is for people.
public struct KeyValue: Codable, Hashable, Sendable, CustomStringConvertible {
    public var parts: [String?]
    public var display: String

    public init(parts: [String?], display: String? = nil) {
        self.parts = parts
        self.display = display ?? "(" + parts.map { $0 ?? "NULL" }.joined(separator: ", ") + ")"
    }

    public var description: String { display }
}

/// Rows whose key is after `lower` (exclusive) and up to `upper` (inclusive); nil is unbounded.
/// Key order is the engine's order of the key columns, identical at both sites (PostgreSQL text
/// keys compare under `COLLATE "C"`; MariaDB keys compare under the column's collation, which
/// the DR table shares because its schema is the primary's).
public struct KeyRange: Codable, Hashable, Sendable, CustomStringConvertible {
    public var lower: KeyValue?
    public var upper: KeyValue?

    public init(after lower: KeyValue?, through upper: KeyValue?) {
        self.lower = lower
        self.upper = upper
    }

    public static let all = KeyRange(after: nil, through: nil)

    public var description: String {
        "(\(lower?.display ?? "start") … \(upper?.display ?? "end")]"
    }
}

/// A chunk as one database sees it: its row count and an order-independent digest of its rows,
/// both computed inside the database so rows never cross the link. Both sites run the same
/// engine, so equal data gives equal text.
public struct ChunkSum: Codable, Hashable, Sendable {
    public var rows: UInt64
    public var digest: String

    public init(rows: UInt64, digest: String) {
        self.rows = rows
        self.digest = digest
    }
}

/// One row as fetched to name a difference: its key and one digest per compared column (nil
/// for SQL NULL), in `VerifyTable.columns` order. Digests, not values: a row may hold megabytes.
public struct VerifyRow: Codable, Hashable, Sendable {
    public var key: KeyValue
    public var columns: [String?]

    public init(key: KeyValue, columns: [String?]) {
        self.key = key
        self.columns = columns
    }
}

/// Why a site could not answer a verify request: one line and what to do.
public struct VerifyError: Error, Codable, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public var hint: String

    public init(_ message: String, hint: String) {
        self.message = message
        self.hint = hint
    }

    public var description: String { message }
}

/// What verify needs of one site's database: the engine's port, implemented once per engine
/// (`PostgreSQLVerify`, `MariaDBVerify`) and run by each site's agent on its own database. Calls
/// block (run them off the agent's event loop) and each may be retried.
///
/// The row digest is the engine's choice but must be a function of every compared column's
/// exact value, never of its formatting or of the session (time zone, float output, collation),
/// and must change when any one value changes; the chunk digest must combine row digests so
/// that it changes when any row is added, removed or changed, whatever the order of the rows.
public protocol VerifySide: AnyObject {
    /// The tables to compare: every replicated table that has a primary key (nil), or the
    /// tables named (`schema.table`). A named table that does not exist or has no primary key
    /// is an error naming it.
    func describe(_ names: [String]?) throws(VerifyError) -> [VerifyTable]

    /// The key of the `rows`-th row after `after` in key order (nil after: from the start); nil
    /// when fewer rows remain. Chunk boundaries come from one site and are used at both.
    func boundary(_ table: VerifyTable, after: KeyValue?, rows: Int) throws(VerifyError) -> KeyValue?

    /// The chunk's count and digest.
    func checksum(_ table: VerifyTable, _ range: KeyRange) throws(VerifyError) -> ChunkSum

    /// The chunk's rows in key order, at most `limit`.
    func rows(_ table: VerifyTable, _ range: KeyRange, limit: Int) throws(VerifyError) -> [VerifyRow]

    /// The database's current log position (PostgreSQL: `pg_current_wal_lsn()`; MariaDB:
    /// `@@gtid_binlog_pos`): at the primary, what the DR site must have applied before a
    /// difference found now may be called confirmed.
    func currentPosition() throws(VerifyError) -> Position?

    func close()
}
