/// A schema-qualified table name. For MariaDB/MySQL the schema is the database.
public struct RelationName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var schema: String
    public var name: String

    public init(schema: String, name: String) {
        self.schema = schema
        self.name = name
    }

    public var description: String { "\(schema).\(name)" }

    public static func < (lhs: RelationName, rhs: RelationName) -> Bool {
        (lhs.schema, lhs.name) < (rhs.schema, rhs.name)
    }
}

/// What kind of value a column holds, engine-neutral, for choosing how to encode,
/// compare and apply it. The engine's exact type travels next to it in `Column`.
public indirect enum LogicalType: Hashable, Sendable {
    case boolean
    case integer(bits: Int, signed: Bool)
    case decimal(precision: Int?, scale: Int?)
    case float32
    case float64
    case text
    case binary
    case date
    case time
    case timeWithZone
    case timestamp
    case timestampWithZone
    case interval
    case json
    case uuid
    case bits
    case enumeration
    case set
    case year
    case array(LogicalType)
    /// Types carried in their native text form (`Value.native`).
    case other
}

/// One column of a relation, as the source described it.
public struct Column: Hashable, Sendable {
    public var name: String
    public var type: LogicalType
    /// The engine's own type name with modifiers (`numeric(40,2)`, `varchar(255)`,
    /// `enum('a','b')`), which DDL and type-checks at the target need.
    public var nativeType: String
    /// Engine-specific type identifier, for PostgreSQL the type OID; 0 if none.
    public var nativeTypeID: UInt32
    public var isKey: Bool
    public var isNullable: Bool

    public init(
        name: String, type: LogicalType, nativeType: String, nativeTypeID: UInt32 = 0,
        isKey: Bool = false, isNullable: Bool = true
    ) {
        self.name = name
        self.type = type
        self.nativeType = nativeType
        self.nativeTypeID = nativeTypeID
        self.isKey = isKey
        self.isNullable = isNullable
    }
}

/// A table's shape as the source sent it: enough for the applier to build its
/// statements without asking the source, and to notice when the target differs.
public struct Relation: Hashable, Sendable {
    public var name: RelationName
    public var columns: [Column]

    public init(name: RelationName, columns: [Column]) {
        self.name = name
        self.columns = columns
    }

    /// Indices of the columns that identify a row (primary key or replica identity).
    public var keyColumnIndices: [Int] { columns.indices.filter { columns[$0].isKey } }

    /// A relation without key columns cannot be replicated by key: updates and
    /// deletes could hit the wrong rows. Capture refuses such tables up front.
    public var hasKey: Bool { columns.contains { $0.isKey } }
}
