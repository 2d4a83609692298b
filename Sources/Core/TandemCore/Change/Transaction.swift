/// One row-level change inside a source transaction.
public struct RowChange: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case insert
        case update
        case delete
        /// Removes every row of the relation. `cascade` and `restartIdentity` mirror
        /// PostgreSQL's TRUNCATE options so the target does what the source did.
        case truncate(cascade: Bool, restartIdentity: Bool)
        /// A row of the initial copy (`tandem seed`), as it was when this transaction committed:
        /// inserted, or written over the row with its key. `new` holds every column.
        case copy
    }

    public var relation: Relation
    public var kind: Kind
    /// Row image before the change (update, delete). It may hold only the key
    /// columns, the others `.unchanged`, when the source logs just the key.
    public var old: [Value]?
    /// Row image after the change (insert, update). Columns the source did not send
    /// are `.unchanged`.
    public var new: [Value]?

    /// An update or delete made while its table is being copied to the DR site: the row may
    /// not be there yet, and then finding no row is expected — its copy comes later and carries
    /// this change (the copy reads the row after this commit). Outside a copy, finding no row
    /// means the DR copy has diverged, and applying stops.
    public var duringCopy: Bool

    public init(
        relation: Relation, kind: Kind, old: [Value]? = nil, new: [Value]? = nil, duringCopy: Bool = false
    ) {
        self.relation = relation
        self.kind = kind
        self.old = old
        self.new = new
        self.duringCopy = duringCopy
    }

    /// The key values that identify the row this change acts on: the old key for
    /// update and delete (a key update moves the row), the new key for insert.
    public var key: [Value]? {
        let image: [Value]?
        switch kind {
        case .insert, .copy: image = new
        case .update: image = (old ?? new)
        case .delete: image = old
        case .truncate: return nil
        }
        guard let image else { return nil }
        return relation.keyColumnIndices.map { $0 < image.count ? image[$0] : .unchanged }
    }

    /// Number of row images carried, the unit of "rows" in batch headers and lag.
    public var rowCount: Int { isTruncate ? 0 : 1 }

    public var isTruncate: Bool { if case .truncate = kind { true } else { false } }
}

/// Which piece of a split transaction a `Transaction` value carries.
///
/// A transaction too large for one batch is shipped as numbered chunks in
/// consecutive batches; the applier keeps one target transaction open across them
/// and commits only at the final chunk, so it is still applied as one unit.
public struct TransactionChunk: Hashable, Sendable {
    public var index: UInt32
    public var isFinal: Bool

    public init(index: UInt32, isFinal: Bool) {
        self.index = index
        self.isFinal = isFinal
    }

    public static let whole = TransactionChunk(index: 0, isFinal: true)
}

/// A committed source transaction, in commit order.
public struct Transaction: Hashable, Sendable {
    /// Position of the commit record: acknowledging it to the source means this
    /// transaction and everything before it will never be asked for again.
    public var commitPosition: Position
    /// Commit time from the source's clock, the reference point of every lag figure.
    public var commitTime: Timestamp
    /// Replication origin of the change, when the source recorded one (PostgreSQL
    /// origin name, MariaDB `domain-server`). Used to stop a switched-over pair from
    /// shipping the applier's own writes back.
    public var origin: String?
    public var chunk: TransactionChunk
    public var changes: [RowChange]
    /// Seed watermarks this transaction wrote (`tandem seed`): each stands for a chunk of copied
    /// rows read inside this very transaction, which the capture driver puts in their place.
    /// Never shipped as such: a batch holds the rows, not the marks.
    public var seedMarks: [SeedMark]

    public init(
        commitPosition: Position, commitTime: Timestamp, origin: String? = nil,
        chunk: TransactionChunk = .whole, changes: [RowChange], seedMarks: [SeedMark] = []
    ) {
        self.commitPosition = commitPosition
        self.commitTime = commitTime
        self.origin = origin
        self.chunk = chunk
        self.changes = changes
        self.seedMarks = seedMarks
    }

    public var rowCount: Int { changes.reduce(0) { $0 + $1.rowCount } }
}
